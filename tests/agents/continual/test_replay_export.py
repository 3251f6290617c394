"""export_sac_replay: a single-task continual-SAC run's whole replay buffer as a Minari dataset."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from memrl.agents.continual import ContinualConfig
from memrl.agents.continual.replay_export import (
    episode_spans,
    export_sac_replay,
    sac_replay_dataset_id,
)
from memrl.agents.continual.trainer import ContinualTrainer
from memrl.data import DATA_FORMAT_VERSION, load_episodes

TINY = dict(hidden_size=16, num_layers=2, batch_size=32, eval_episodes=1, update_every=50,
            log_every=500, tensorboard=False)  # fmt: skip
"""Small nets, one evaluation episode: the run is about the buffer, not the policy."""

CARTPOLE = ContinualConfig(
    stream="DMC6", tasks="cartpole-balance", steps_per_task=2200, eval_every=2200,
    start_steps=2100, update_after=2100, checkpoint_every=2000, buffer_size=5000, **TINY,
)  # fmt: skip
"""Two whole 1000-step episodes and 200 steps of a third; checkpoints at 2000 and 2200."""

REACH = ContinualConfig(
    stream="CW10", tasks="reach-v3", steps_per_task=700, eval_every=700, start_steps=600,
    update_after=600, checkpoint_every=700, buffer_size=450, **TINY,
)  # fmt: skip
"""Meta-World's 200-step episodes; the buffer keeps the last 450 of 700 transitions."""


def _train(config: ContinualConfig, run_dir: Path) -> dict[str, np.ndarray]:
    """Train ``config`` into ``run_dir``; every transition the trainer stored, in order."""
    trainer = ContinualTrainer(config, run_dir, progress=False)
    stored: list[tuple] = []
    add = trainer.buffer.add

    def record(*transition) -> None:
        stored.append(tuple(np.array(x, dtype=np.float32) for x in transition))
        add(*transition)

    trainer.buffer.add = record
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    trainer.close()
    names = ("observations", "actions", "rewards", "next_observations", "terminated")
    return {
        name: np.stack(column)
        for name, column in zip(names, zip(*stored, strict=True), strict=True)
    }


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory``: (size, modification time)."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    """(run directory, stored transitions) of CARTPOLE (treat as read-only)."""
    run_dir = tmp_path_factory.mktemp("cartpole") / "run"
    return run_dir, _train(CARTPOLE, run_dir)


@pytest.fixture(scope="module")
def exported(cartpole, tmp_path_factory):
    """(datasets directory, dataset path, run files before, run files after) of the export."""
    run_dir, _ = cartpole
    out_dir = tmp_path_factory.mktemp("datasets")
    before = _files(run_dir)
    path = export_sac_replay(run_dir, out_dir)
    return out_dir, path, before, _files(run_dir)


def _assert_holds(episodes, stored: dict[str, np.ndarray], observation_dim: int) -> None:
    """The episodes, end to end, are exactly ``stored`` (stripped to the task's dimensions)."""
    own = {key: value[:, :observation_dim] for key, value in stored.items()
           if key.endswith("observations")}  # fmt: skip
    assert np.array_equal(np.concatenate([e.observations[:-1] for e in episodes]),
                          own["observations"])  # fmt: skip
    # Each observation after a step is the stored next observation of that step: so within an
    # episode next_obs[t] == obs[t + 1], and episodes end exactly where the env was reset.
    assert np.array_equal(np.concatenate([e.observations[1:] for e in episodes]),
                          own["next_observations"])  # fmt: skip
    assert np.array_equal(np.concatenate([e.actions for e in episodes]), stored["actions"])
    assert np.array_equal(np.concatenate([e.rewards for e in episodes]), stored["rewards"])
    assert not np.concatenate([e.terminations for e in episodes]).any()


def test_every_stored_transition_once_in_order(cartpole, exported):
    _, stored = cartpole
    episodes = load_episodes(exported[1]).episodes
    assert len(stored["rewards"]) == 2200
    _assert_holds(episodes, stored, observation_dim=5)  # cartpole's 5 of 5 + one-hot 1
    assert stored["observations"].shape[1] == 6


def test_episodes_are_the_runs_episodes(exported):
    episodes = load_episodes(exported[1]).episodes
    assert [len(e) for e in episodes] == [1000, 1000, 200]
    assert [e.metadata["first_step"] for e in episodes] == [0, 1000, 2000]
    # The run ended 200 steps into its third episode: that one is incomplete.
    assert [e.metadata["complete"] for e in episodes] == [True, True, False]
    for episode in episodes:
        assert episode.truncations.tolist() == [False] * (len(episode) - 1) + [True]
        assert episode.metadata["return"] == pytest.approx(episode.rewards.sum())
        # Consecutive observations inside an episode are one physics step apart, never a reset.
        assert np.abs(np.diff(episode.observations, axis=0)).max() < 1.0


def test_minari_and_memrl_load_it(exported, monkeypatch):
    import minari

    out_dir, path, _, _ = exported
    dataset_id = sac_replay_dataset_id("cartpole-balance")
    assert dataset_id == "memrl/dm_control/cartpole-balance/sac-replay-v0"
    assert path == out_dir / dataset_id
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out_dir))
    dataset = minari.load_dataset(dataset_id)
    assert dataset.total_episodes == 3 and dataset.total_steps == 2200
    assert dataset.observation_space.shape == (5,) and dataset.action_space.shape == (1,)
    ours = load_episodes(path).episodes
    for theirs, mine in zip(dataset.iterate_episodes(), ours, strict=True):
        assert np.array_equal(theirs.observations, mine.observations)
        assert np.array_equal(theirs.actions, mine.actions)
        assert np.array_equal(theirs.rewards, mine.rewards)
    env = dataset.recover_environment()
    assert env.unwrapped.name == "cartpole-balance" and env.observation_space.shape == (5,)
    env.close()


def test_metadata_names_task_domain_and_the_runs_returns(cartpole, exported):
    run_dir, _ = cartpole
    metadata = load_episodes(exported[1]).metadata["memrl"]
    log = json.loads((run_dir / "evaluations.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert metadata["task"] == "cartpole-balance" and metadata["domain"] == "dm_control"
    assert metadata["split"] == "pretrain" and metadata["source"] == "sac-replay"
    assert metadata["evaluations"]["steps"] == log["steps"] == [2200]
    assert metadata["evaluations"]["returns"] == [row[0] for row in log["returns"]]
    assert metadata["evaluations"]["initial_return"] == log["initial_returns"][0]
    assert metadata["config"] == {k: v for k, v in config.items() if k != "agent"}
    assert metadata["steps"] == metadata["transitions"] == metadata["total_steps"] == 2200
    assert metadata["finished"] and metadata["overwritten"] == 0 and metadata["episodes"] == 3
    assert metadata["source_run"] == str(run_dir) and metadata["checkpoint"] == "latest.pt"
    assert metadata["format_version"] == DATA_FORMAT_VERSION and metadata["memrl_version"]


def test_reads_the_run_and_writes_only_under_out_dir(exported):
    out_dir, _, before, after = exported
    assert before == after  # the run directory is only read
    assert sorted(p.name for p in out_dir.iterdir()) == ["memrl"]


def test_a_full_buffer_loses_its_oldest_transitions_and_says_so(tmp_path):
    stored = _train(REACH, tmp_path / "run")
    path = export_sac_replay(tmp_path / "run", tmp_path / "datasets")
    assert path == tmp_path / "datasets" / "memrl" / "metaworld" / "reach-v3" / "sac-replay-v0"
    dataset = load_episodes(path)
    metadata = dataset.metadata["memrl"]
    assert metadata["domain"] == "metaworld" and metadata["overwritten"] == 700 - 450
    assert metadata["transitions"] == 450 and metadata["buffer_capacity"] == 450
    kept = {key: value[250:] for key, value in stored.items()}  # the newest 450, oldest first
    _assert_holds(dataset.episodes, kept, observation_dim=39)
    # Steps 250..699: the end of the second 200-step episode, the third, half the fourth.
    assert [len(e) for e in dataset.episodes] == [150, 200, 100]
    assert [e.metadata["first_step"] for e in dataset.episodes] == [250, 400, 600]
    assert [e.metadata["complete"] for e in dataset.episodes] == [False, True, False]


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(cartpole, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(cartpole[0], run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match="damaged checkpoint .*latest.pt"):
        path = export_sac_replay(run_dir, tmp_path / "datasets")
    dataset = load_episodes(path)
    assert dataset.metadata["memrl"]["checkpoint"] == "previous.pt"
    assert dataset.metadata["memrl"]["steps"] == 2000  # previous.pt: two whole episodes
    assert [len(e) for e in dataset.episodes] == [1000, 1000]
    assert all(e.metadata["complete"] for e in dataset.episodes)
    stored = {key: value[:2000] for key, value in cartpole[1].items()}
    _assert_holds(dataset.episodes, stored, observation_dim=5)


def _edit_row(run_dir: Path, field: str, slot: int, change) -> None:
    """Replace one stored row by ``change(row, rows of the run's buffer parts)``.

    The part file is rewritten whole, so it stays an intact archive of its row count.
    """
    parts = sorted((run_dir / "checkpoints" / "buffer").glob("part-*.npz"))
    arrays = {}
    for part in parts:
        with np.load(part) as stored:
            arrays[part] = dict(stored)

    def row(name: str, wanted: int) -> np.ndarray:
        for stored in arrays.values():
            if wanted in stored["slots"]:
                return stored[name][list(stored["slots"]).index(wanted)]
        raise AssertionError(f"slot {wanted} is in no part")

    for part, stored in arrays.items():
        if slot in stored["slots"]:
            stored[field][list(stored["slots"]).index(slot)] = change(row)
            with part.open("wb") as file:
                np.savez(file, **stored)


def _plus(row: np.ndarray, column: int) -> np.ndarray:
    changed = row.copy()
    changed[column] += 0.5
    return changed


def _break_episode(run_dir: Path) -> None:  # step 10 no longer leads to step 11
    _edit_row(run_dir, "next_observations", 10, lambda row: _plus(row("next_observations", 10), 0))


def _break_layout(run_dir: Path) -> None:  # step 10's one-hot (column 5) is no longer one
    _edit_row(run_dir, "observations", 10, lambda row: _plus(row("observations", 10), 5))


def _join_episodes(run_dir: Path) -> None:  # step 1000 continues step 999: no reset between
    _edit_row(run_dir, "observations", 1000, lambda row: row("next_observations", 999))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_break_episode, "next observation of step 10 is not the observation of step 11"),
        (_join_episodes, r"step 1000 continues step 999 \(no reset\)"),
        (_break_layout, r"observations do not end with the layout's padding and one-hot \[1.0\]"),
    ],
)
def test_episodes_that_do_not_match_the_data_are_an_error(cartpole, tmp_path, change, message):
    run_dir = tmp_path / "run"
    shutil.copytree(cartpole[0], run_dir)
    change(run_dir)
    with pytest.raises(ValueError, match=message):
        export_sac_replay(run_dir, tmp_path / "datasets")
    assert not (tmp_path / "datasets").exists()


def _edit_checkpoint(run_dir: Path, key: str, value) -> None:
    """Rewrite the run's latest checkpoint with ``key`` replaced (an intact file still)."""
    import torch

    latest = run_dir / "checkpoints" / "latest.pt"
    payload = torch.load(latest, weights_only=False)
    payload[key] = value
    torch.save(payload, latest)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "episode",
            (0.0, 150),
            "in progress at the checkpoint is 150 steps long, the rebuilt one 200",
        ),
        (
            "global_step",
            2300,
            "holds 2200 transitions since its last reset, the run has taken 2300",
        ),
    ],
)
def test_a_checkpoint_that_disagrees_with_its_buffer_is_an_error(
    cartpole, tmp_path, key, value, message
):
    run_dir = tmp_path / "run"
    shutil.copytree(cartpole[0], run_dir)
    _edit_checkpoint(run_dir, key, value)
    with pytest.raises(ValueError, match=message):
        export_sac_replay(run_dir, tmp_path / "datasets")


def test_insertion_order_of_fifo_and_reservoir_buffers():
    from memrl.agents.continual.buffers import ReplayBuffer, ReservoirBuffer
    from memrl.agents.continual.replay_export import _insertion_order

    fifo, reservoir = ReplayBuffer(5, 1, 1), ReservoirBuffer(5, 1, 1)
    for step in range(8):
        for buffer in (fifo, reservoir):
            buffer.add(np.array([step]), np.zeros(1), 0.0, np.array([step + 1]), False)
    assert fifo.observations[_insertion_order(fifo, Path("run")), 0].tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="run: its reservoir buffer has seen 8 transitions but"):
        _insertion_order(reservoir, Path("run"))


def test_a_multi_task_run_is_refused(tmp_path):
    config = ContinualConfig(stream="DMC6", tasks="cartpole-balance,point_mass-easy",
                             steps_per_task=1000, eval_every=1000, update_after=100,
                             start_steps=100, **TINY)  # fmt: skip
    trainer = ContinualTrainer(config, tmp_path / "run", progress=False)
    trainer.save_checkpoint()
    trainer.close()
    expected = r"trains 2 tasks \['cartpole-balance', 'point_mass-easy'\]; only the replay"
    with pytest.raises(ValueError, match=expected):
        export_sac_replay(tmp_path / "run", tmp_path / "datasets")


@pytest.mark.parametrize("made", [False, True])
def test_a_run_without_a_checkpoint_is_an_error_naming_it(tmp_path, made):
    run_dir = tmp_path / "not-a-run"
    if made:
        (run_dir / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=f"{run_dir} holds no continual-SAC checkpoint"):
        export_sac_replay(run_dir, tmp_path / "datasets")


def test_an_existing_dataset_and_a_bad_id_are_refused(cartpole, exported, tmp_path):
    run_dir, _ = cartpole
    out_dir, path, _, _ = exported
    with pytest.raises(FileExistsError, match=f"{path} already holds a complete dataset"):
        export_sac_replay(run_dir, out_dir)
    for bad in ("../escape-v0", "no-version", "/abs/x-v0"):
        with pytest.raises(
            ValueError, match=f"dataset_id must be a Minari id NAMESPACE/NAME-v<version>.*{bad!r}"
        ):
            export_sac_replay(run_dir, tmp_path / "datasets", dataset_id=bad)
    assert not (tmp_path / "datasets").exists() and not (tmp_path.parent / "escape-v0").exists()


def test_episode_spans_follow_resets_stage_ends_and_terminations():
    terminated = np.zeros(25, dtype=bool)
    terminated[3] = True  # step 3 ends its episode early
    assert episode_spans(0, 25, 10, [15], terminated) == [(0, 4), (4, 14), (14, 15), (15, 25)]
    # Overwritten steps before step 12: the first stored step is in the middle of an episode.
    assert episode_spans(12, 30, 10, [], np.zeros(18, dtype=bool)) == [(10, 20), (20, 30)]
    assert episode_spans(12, 31, 10, [], np.zeros(19, dtype=bool))[-1] == (30, 40)


def test_only_dm_control_and_metaworld_runs_are_exported():
    assert sac_replay_dataset_id("hammer-v3") == "memrl/metaworld/hammer-v3/sac-replay-v0"
    expected = r"domains \['dm_control', 'metaworld'\] can be exported, got 'memrl/KeyToDoor-v0'"
    with pytest.raises(ValueError, match=expected):
        sac_replay_dataset_id("memrl/KeyToDoor-v0")


def test_memrl_data_export_sac_writes_what_the_function_writes(
    cartpole, exported, tmp_path, capsys
):
    from memrl.cli import main

    run_dir, _ = cartpole
    assert main(["data", "export-sac", str(run_dir), "--out", str(tmp_path)]) == 0
    path = tmp_path / sac_replay_dataset_id("cartpole-balance")
    assert f"wrote {path}" in capsys.readouterr().out
    by_cli, by_function = load_episodes(path), load_episodes(exported[1])
    assert len(by_cli) == len(by_function)
    for a, b in zip(by_cli.episodes, by_function.episodes, strict=True):
        assert np.array_equal(a.observations, b.observations)
        assert np.array_equal(a.actions, b.actions)
