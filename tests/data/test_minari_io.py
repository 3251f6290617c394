"""load_episodes: memrl's datasets and users', by path or id, and errors that name the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memrl.data import load_episodes, metaworld_dataset_id

from .conftest import TASK


@pytest.fixture
def damaged(collected: Path, tmp_path: Path) -> Path:
    """A private copy of the collected dataset (directory), free to damage."""
    copy = tmp_path / "copy"
    shutil.copytree(collected, copy)
    return copy


def _edit_metadata(dataset_dir: Path, edit) -> None:
    file = dataset_dir / "data" / "metadata.json"
    metadata = json.loads(file.read_text())
    edit(metadata)
    file.write_text(json.dumps(metadata))


def test_a_dataset_is_found_by_directory_data_directory_file_or_id(collected, monkeypatch):
    root = collected.parents[3]
    dataset_id = metaworld_dataset_id(TASK)
    given = [
        collected,
        collected / "data",
        collected / "data" / "main_data.hdf5",
        str(collected / "data" / "metadata.json"),
    ]
    loaded = [load_episodes(path) for path in given]
    loaded.append(load_episodes(dataset_id, datasets_path=root))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    monkeypatch.chdir(root.parent)  # the id is no path from here
    loaded.append(load_episodes(dataset_id))
    for dataset in loaded:
        assert dataset.dataset_id == dataset_id and dataset.path == collected / "data"
        assert len(dataset) == 3


def test_missing_path_names_it_and_where_ids_were_looked_up(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Minari dataset 'memrl/nothing-v0'") as error:
        load_episodes("memrl/nothing-v0", datasets_path=tmp_path)
    assert str(tmp_path / "memrl/nothing-v0") in str(error.value)


@pytest.mark.parametrize("given", [".", "notes.txt"])
def test_a_directory_that_is_no_dataset_is_named(tmp_path, given):
    (tmp_path / "notes.txt").write_text("not a dataset")
    path = (tmp_path / given).resolve()
    with pytest.raises(ValueError, match="is not a Minari dataset: found no metadata.json") as err:
        load_episodes(path)
    assert str(path) in str(err.value)


def test_truncated_hdf5_is_an_error_naming_the_file(damaged):
    hdf5 = damaged / "data" / "main_data.hdf5"
    os.truncate(hdf5, hdf5.stat().st_size // 2)
    with pytest.raises(ValueError, match="not a readable HDF5 file") as error:
        load_episodes(damaged)
    assert str(hdf5) in str(error.value)


def test_missing_episodes_are_an_error_naming_the_file(damaged):
    import h5py

    hdf5 = damaged / "data" / "main_data.hdf5"
    with h5py.File(hdf5, "a") as handle:
        del handle["episode_2"]
    with pytest.raises(ValueError, match="counts 3 episodes, 1 of them are missing") as error:
        load_episodes(damaged)
    assert str(hdf5) in str(error.value)


def test_corrupt_metadata_is_an_error_naming_the_file(damaged):
    metadata = damaged / "data" / "metadata.json"
    metadata.write_text(metadata.read_text()[:50])
    with pytest.raises(ValueError, match="is not readable JSON") as error:
        load_episodes(damaged)
    assert str(metadata) in str(error.value)


def test_other_memrl_format_version_is_an_error_naming_the_file(damaged):
    _edit_metadata(damaged, lambda m: m["memrl"].update(format_version=99))
    with pytest.raises(ValueError, match="memrl data format version 99.*reads version 1") as error:
        load_episodes(damaged)
    assert str(damaged / "data" / "metadata.json") in str(error.value)


def test_minaris_own_refusal_names_the_dataset(damaged):
    _edit_metadata(damaged, lambda m: m.update(minari_version="0.1.0"))
    with pytest.raises(ValueError, match="Minari cannot read this dataset") as error:
        load_episodes(damaged)
    assert str(damaged / "data") in str(error.value)


def test_a_users_dataset_with_dict_observations_loads_as_arrays(tmp_path, monkeypatch):
    import minari
    from gymnasium import spaces
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    observation_space = spaces.Dict(
        {"position": spaces.Box(-1, 1, (2,)), "velocity": spaces.Box(-1, 1, (3,))}
    )
    rng = np.random.default_rng(0)
    steps = 4
    observations = {
        "position": rng.uniform(-1, 1, (steps + 1, 2)).astype(np.float32),
        "velocity": rng.uniform(-1, 1, (steps + 1, 3)).astype(np.float32),
    }
    buffer = EpisodeBuffer(
        observations=observations,
        actions=np.array([0, 2, 1, 1]),
        rewards=np.arange(steps, dtype=np.float64),
        terminations=np.array([False, False, False, True]),
        truncations=np.zeros(steps, dtype=bool),
    )
    with pytest.warns(UserWarning):  # Minari asks for an author, a description, ...
        minari.create_dataset_from_buffers(
            "someone/point/random-v1",
            [buffer],
            observation_space=observation_space,
            action_space=spaces.Discrete(3),
        )
    dataset = load_episodes("someone/point/random-v1")
    (episode,) = dataset.episodes
    assert "memrl" not in dataset.metadata
    expected = np.concatenate([observations["position"], observations["velocity"]], axis=1)
    assert np.array_equal(episode.observations, expected)
    assert episode.actions.tolist() == [0, 2, 1, 1]
    assert episode.terminations.tolist() == [False, False, False, True]
    assert episode.seed is None and episode.metadata == {}


def test_importing_memrl_data_imports_neither_minari_nor_metaworld():
    code = (
        "import sys, memrl.data; "
        "print([m for m in ('minari', 'h5py', 'metaworld', 'mujoco') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_write_dataset_round_trips_any_env_under_a_relative_root(tmp_path, monkeypatch):
    import gymnasium

    from memrl.data import Episode
    from memrl.data.minari_io import write_dataset

    monkeypatch.chdir(tmp_path)
    env = gymnasium.make("Pendulum-v1")
    observation, _ = env.reset(seed=3)
    observations, actions, rewards = [observation], [], []
    for _ in range(5):
        action = env.action_space.sample()
        observation, reward, _, _, _ = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
    episode = Episode(
        observations=np.array(observations),
        actions=np.array(actions),
        rewards=np.array(rewards),
        terminations=np.zeros(5, dtype=bool),
        truncations=np.array([False] * 4 + [True]),
        seed=3,
        metadata={"policy": "random", "success": False},
    )
    path = write_dataset(
        "relative",
        "test/pendulum/random-v0",
        [episode],
        env,
        algorithm_name="random",
        description="five random steps",
        requirements=[],
        memrl_metadata={"note": np.float32(0.5)},
    )
    assert path == tmp_path / "relative" / "test" / "pendulum" / "random-v0"
    dataset = load_episodes(path)
    (loaded,) = dataset.episodes
    for name in ("observations", "actions", "rewards", "terminations", "truncations"):
        assert np.array_equal(getattr(loaded, name), getattr(episode, name)), name
    assert loaded.seed == 3 and loaded.metadata == {"policy": "random", "success": False}
    assert dataset.metadata["memrl"] == {
        "format_version": 1,
        "memrl_version": __import__("memrl").__version__,
        "note": 0.5,
    }
