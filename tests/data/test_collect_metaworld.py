"""collect_metaworld: Minari round trip, metadata, determinism, resume, where it writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from memrl.data import collect_metaworld, load_episodes, metaworld_dataset_id
from memrl.streams import get_task

from .conftest import SETTINGS, TASK


def _arrays(path: Path) -> list[tuple[np.ndarray, ...]]:
    return [
        (e.observations, e.actions, e.rewards, e.truncations) for e in load_episodes(path).episodes
    ]


def _same(a: list[tuple[np.ndarray, ...]], b: list[tuple[np.ndarray, ...]]) -> bool:
    return len(a) == len(b) and all(
        all(np.array_equal(x, y) for x, y in zip(ea, eb, strict=True))
        for ea, eb in zip(a, b, strict=True)
    )


def test_minari_load_dataset_sees_what_the_env_did(collected, monkeypatch):
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(collected.parents[3]))
    dataset = minari.load_dataset(metaworld_dataset_id(TASK))
    assert dataset.total_episodes == 3 and dataset.total_steps == 3 * 40
    ours = load_episodes(collected).episodes
    env = get_task(TASK).make(episode_length=40)
    for minari_episode, episode in zip(dataset.iterate_episodes(), ours, strict=True):
        # memrl's loader gives exactly what Minari gives...
        assert np.array_equal(minari_episode.observations, episode.observations)
        assert np.array_equal(minari_episode.actions, episode.actions)
        assert np.array_equal(minari_episode.rewards, episode.rewards)
        # ...and that is what happened: replaying the actions from the seed gives it again.
        observation, _ = env.reset(seed=episode.seed)
        replayed, rewards = [observation], []
        for action in episode.actions:
            observation, reward, terminated, truncated, _ = env.step(action)
            replayed.append(observation)
            rewards.append(reward)
        assert np.array_equal(np.array(replayed), episode.observations)
        assert np.array_equal(np.array(rewards), episode.rewards)
        assert episode.observations.shape == (41, 39) and episode.actions.shape == (40, 4)
        assert episode.truncations.tolist() == [False] * 39 + [True]
        assert not episode.terminations.any()
    # The dataset rebuilds its environment.
    assert dataset.recover_environment().unwrapped.task == TASK


def test_metadata_holds_settings_and_per_level_success(collected):
    dataset = load_episodes(collected)
    memrl_metadata = dataset.metadata["memrl"]
    assert memrl_metadata["task"] == TASK
    assert (memrl_metadata["domain"], memrl_metadata["split"]) == ("metaworld", "pretrain")
    assert memrl_metadata["settings"] == {**SETTINGS, "format_version": 1}
    episodes = dataset.episodes
    assert [e.metadata["policy"] for e in episodes] == ["scripted", "scripted", "random"]
    assert [e.metadata.get("noise_std") for e in episodes] == [0.0, 0.5, None]
    # An episode's success is whether Meta-World's success flag was ever 1.
    outcomes = [bool(e.infos["success"].any()) for e in episodes]
    assert [e.metadata["success"] for e in episodes] == outcomes
    levels = {level["quality"]: level for level in memrl_metadata["quality_levels"]}
    assert list(levels) == ["expert", "noise-0.5", "random"]
    assert [levels[q]["success"] for q in levels] == [float(o) for o in outcomes]
    assert levels["expert"]["success"] == 1.0 and levels["random"]["success"] == 0.0
    assert memrl_metadata["success"] == pytest.approx(np.mean(outcomes))


@pytest.mark.filterwarnings("ignore:Constant")
def test_quality_levels_act_as_named(collected):
    from metaworld.policies import ENV_POLICY_MAP

    expert = ENV_POLICY_MAP[TASK]()
    episodes = load_episodes(collected).episodes
    deviation = []
    for episode in episodes:
        scripted = np.clip([expert.get_action(o) for o in episode.observations[:-1]], -1, 1)
        deviation.append(np.abs(episode.actions - scripted.astype(np.float32)).mean())
    expert_deviation, noisy_deviation, random_deviation = deviation
    assert expert_deviation == 0.0
    assert 0.1 < noisy_deviation < random_deviation


def test_same_seed_same_data_whatever_the_other_tasks(collected, tmp_path):
    reach, again = collect_metaworld(["reach-v3", TASK], tmp_path / "a", progress=False, **SETTINGS)
    assert _same(_arrays(again), _arrays(collected))
    # Tasks draw their own layouts and noise: no two tasks share episode seeds.
    reach_seeds = {e.seed for e in load_episodes(reach).episodes}
    assert reach_seeds.isdisjoint(e.seed for e in load_episodes(again).episodes)
    other_settings = {**SETTINGS, "seed": 1}
    (other_seed,) = collect_metaworld(TASK, tmp_path / "b", progress=False, **other_settings)
    assert not _same(_arrays(other_seed), _arrays(collected))


def test_resume_skips_complete_tasks_and_redoes_a_half_written_one(collected, tmp_path):
    out_dir = tmp_path / "out"
    done, half = collect_metaworld(["reach-v3", TASK], out_dir, progress=False, **SETTINGS)
    expected = _arrays(half)
    done_file = done / "data" / "main_data.hdf5"
    done_stamp = done_file.stat().st_mtime_ns
    # What a run killed while writing leaves: episodes cut short, no memrl metadata yet.
    metadata_file = half / "data" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["memrl"]
    metadata_file.write_text(json.dumps(metadata))
    hdf5 = half / "data" / "main_data.hdf5"
    os.truncate(hdf5, hdf5.stat().st_size // 2)

    paths = collect_metaworld(["reach-v3", TASK], out_dir, progress=False, **SETTINGS)
    assert paths == [done, half]
    assert done_file.stat().st_mtime_ns == done_stamp  # not rewritten
    assert _same(_arrays(half), expected)  # redone, identically


def test_complete_dataset_with_other_settings_is_an_error(collected):
    out_dir = collected.parents[3]
    with pytest.raises(ValueError, match=r"other settings \(seed: 0 -> 1\)") as error:
        collect_metaworld(TASK, out_dir, progress=False, **{**SETTINGS, "seed": 1})
    assert str(collected) in str(error.value)


def test_half_written_directory_with_foreign_files_is_not_deleted(tmp_path):
    path = tmp_path / metaworld_dataset_id(TASK)
    (path / "data").mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"other files \['notes.txt'\]"):
        collect_metaworld(TASK, tmp_path, progress=False, **SETTINGS)
    assert (path / "notes.txt").exists()


def test_writes_only_under_out_dir(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(elsewhere))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (path,) = collect_metaworld(TASK, "relative/out", progress=False, **SETTINGS)
    assert path == tmp_path / "relative" / "out" / metaworld_dataset_id(TASK)
    assert len(load_episodes(path)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relative"]
    assert os.environ["MINARI_DATASETS_PATH"] == str(elsewhere)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tasks": "hamer-v3"}, r"unknown Meta-World task 'hamer-v3'. Did you mean \['hammer-v3'"),
        ({"tasks": ["CW10", "cheetah-run"]}, r"Allowed: the lists \['MT50', 'MT40', 'CW10'\]"),
        ({"episodes_per_task": 0}, "episodes_per_task must be an integer >= 1, got 0"),
        ({"noise_levels": [0.1, -0.2]}, "noise_levels must be finite numbers >= 0.*got -0.2"),
        ({"noise_levels": [0.1, 0.1]}, r"noise_levels must be distinct, got \[0.1, 0.1\]"),
        ({"noise_levels": []}, "noise_levels must hold at least one level"),
        ({"random_fraction": 1.5}, r"random_fraction must be a number in \[0, 1\], got 1.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"episode_length": 0}, "episode_length must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, arguments, message):
    arguments = {"tasks": TASK, **arguments}
    with pytest.raises(ValueError, match=message):
        collect_metaworld(out_dir=tmp_path, progress=False, **arguments)
    assert not any(tmp_path.iterdir())


def test_only_random_episodes_need_no_noise_levels(tmp_path):
    (path,) = collect_metaworld(
        TASK,
        tmp_path,
        episodes_per_task=1,
        noise_levels=[],
        random_fraction=1.0,
        episode_length=5,
        progress=False,
    )
    (episode,) = load_episodes(path).episodes
    assert episode.metadata == {"policy": "random", "success": False}
