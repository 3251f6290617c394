"""Episodes to and from Minari datasets (Farama's format for offline RL), with memrl's metadata.

Writing goes through Minari's own ``create_dataset_from_buffers`` (which needs no JAX, unlike
``DataCollector``), into ``<root>/<dataset_id>/data/`` (``metadata.json`` and
``main_data.hdf5``): Minari's local layout, so with ``MINARI_DATASETS_PATH=<root>`` a user's
``minari.load_dataset(dataset_id)`` and ``minari list local`` see memrl's datasets. Nothing is
written outside ``root``: ``MINARI_DATASETS_PATH`` is pointed at ``root`` while Minari writes and
restored afterwards (so do not write from two threads at once).

memrl's own metadata is one key, ``"memrl"``, of the dataset's metadata, written after every
episode: its presence marks a complete dataset. It holds ``format_version``
(:data:`DATA_FORMAT_VERSION`), ``memrl_version`` and whatever the collector records (task,
domain, split, settings, per-quality success). Per-episode metadata (quality, success) is
Minari's episode metadata.

:func:`load_episodes` reads any Minari dataset, memrl's or a user's, into numpy arrays, with
errors that name the file: a missing path, a directory that is no dataset, an unreadable
``metadata.json``, a truncated or corrupt ``main_data.hdf5``, an unsupported memrl data format.

Minari and h5py are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memrl.data.episodes import Episode, OfflineDataset

if TYPE_CHECKING:
    import gymnasium
    from gymnasium import spaces

DATA_FORMAT_VERSION = 1
"""Version of the layout of memrl's metadata and episodes; a reader refuses any other."""

MEMRL_KEY = "memrl"
"""The dataset-metadata key that holds memrl's own metadata."""

_METADATA_FILE = "metadata.json"
_HDF5_FILE = "main_data.hdf5"
_MINARI_ROOT_VARIABLE = "MINARI_DATASETS_PATH"

# Minari warns when these are missing; memrl has no address or permalink to give.
_IGNORED_MINARI_WARNINGS = r"`(author_email|code_permalink)` is set to None"


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point Minari's ``MINARI_DATASETS_PATH`` at ``root`` for the duration."""
    previous = os.environ.get(_MINARI_ROOT_VARIABLE)
    os.environ[_MINARI_ROOT_VARIABLE] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_MINARI_ROOT_VARIABLE]
        else:
            os.environ[_MINARI_ROOT_VARIABLE] = previous


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python ones (for JSON and HDF5)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_dataset(
    root: str | os.PathLike[str],
    dataset_id: str,
    episodes: Sequence[Episode],
    env: gymnasium.Env[Any, Any],
    *,
    algorithm_name: str,
    description: str,
    requirements: Sequence[str],
    memrl_metadata: Mapping[str, Any],
) -> Path:
    """Write episodes as a new Minari dataset under ``root``.

    Args:
        root: The datasets directory (Minari's ``MINARI_DATASETS_PATH``); created if needed.
        dataset_id: Minari's id, ``namespace/name-v<version>``; the dataset goes to
            ``root / dataset_id``, which must not exist.
        episodes: The episodes (observation and action arrays matching ``env``'s spaces).
        env: The environment the episodes come from (its spaces are the dataset's); its
            ``spec`` must be set, so that ``recover_environment()`` rebuilds it.
        algorithm_name: How the data was made (Minari's ``algorithm_name``).
        description: Minari's ``description``.
        requirements: pip requirements to rebuild the environment (Minari's ``requirements``).
        memrl_metadata: Stored under ``metadata["memrl"]`` with ``format_version`` and
            ``memrl_version`` added; written last, as the mark of a complete dataset.

    Returns:
        The dataset's directory, ``root / dataset_id``.

    Raises:
        ValueError: ``root / dataset_id`` exists already (Minari refuses to overwrite), or
            ``env`` has no spec.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    import memrl

    # Absolute: Minari's size bookkeeping breaks on a relative datasets directory.
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    buffers = [
        EpisodeBuffer(
            seed=episode.seed,
            observations=episode.observations,
            actions=episode.actions,
            rewards=episode.rewards,
            terminations=episode.terminations,
            truncations=episode.truncations,
            infos=dict(episode.infos) or None,
        )
        for episode in episodes
    ]
    if env.spec is None:
        raise ValueError(f"env must have a spec (to rebuild it from the dataset), got {env}")
    with _minari_root(root), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_IGNORED_MINARI_WARNINGS)
        dataset = minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            eval_env=env.spec,
            algorithm_name=algorithm_name,
            author="memrl",
            description=description,
            requirements=list(requirements),
            data_format="hdf5",
        )
    dataset.storage.update_episode_metadata(
        [_plain(dict(episode.metadata)) for episode in episodes]
    )
    memrl_entry = {
        "format_version": DATA_FORMAT_VERSION,
        "memrl_version": memrl.__version__,
        **_plain(dict(memrl_metadata)),
    }
    dataset.storage.update_metadata({MEMRL_KEY: memrl_entry})
    return root / dataset_id


def package_requirement(name: str) -> str:
    """``"name==<installed version>"`` for Minari's ``requirements``."""
    return f"{name}=={importlib.metadata.version(name)}"


def completed_metadata(dataset_dir: str | os.PathLike[str]) -> Mapping[str, Any] | None:
    """The memrl metadata of a complete dataset at ``dataset_dir``, or None if it is not one.

    A dataset is complete when its ``metadata.json`` reads and holds memrl's key (written after
    every episode). A directory that is missing, half-written (a collection killed mid-write)
    or not memrl's gives None.
    """
    try:
        metadata = _read_metadata(Path(dataset_dir) / "data")
    except (FileNotFoundError, ValueError):
        return None
    entry = metadata.get(MEMRL_KEY)
    return entry if isinstance(entry, Mapping) else None


def remove_partial_dataset(dataset_dir: str | os.PathLike[str]) -> None:
    """Delete a half-written dataset directory (what an interrupted :func:`write_dataset` left).

    Raises:
        ValueError: The directory holds anything but Minari's ``data/metadata.json`` and
            ``data/main_data.hdf5`` (it is refused rather than deleted).
    """
    dataset_dir = Path(dataset_dir)
    data_dir = dataset_dir / "data"
    extra = [p.name for p in dataset_dir.iterdir() if p != data_dir]
    if data_dir.is_dir():
        extra += [p.name for p in data_dir.iterdir() if p.name not in (_METADATA_FILE, _HDF5_FILE)]
    if extra:
        raise ValueError(
            f"{dataset_dir} holds an incomplete dataset and other files {sorted(extra)}; "
            "memrl will not delete it: remove it yourself or choose another output directory"
        )
    shutil.rmtree(dataset_dir)


def _default_minari_root() -> Path:
    """Minari's datasets directory: ``MINARI_DATASETS_PATH``, else ``~/.minari/datasets``.

    (Minari's ``get_dataset_path`` says the same but creates the directory; reading must not.)
    """
    root = os.environ.get(_MINARI_ROOT_VARIABLE)
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def _find_data_dir(path_or_id: str | os.PathLike[str], datasets_path: Path | None) -> Path:
    """The ``data`` directory of a dataset given by path (existing) or by Minari id."""
    given = Path(path_or_id)
    if not given.exists():
        root = datasets_path if datasets_path is not None else _default_minari_root()
        as_id = root / str(path_or_id)
        if not as_id.exists():
            raise FileNotFoundError(
                f"no Minari dataset {str(path_or_id)!r}: no such file or directory, and no "
                f"dataset with that id under {root} ({as_id} does not exist)"
            )
        given = as_id
    data_dir = given
    if data_dir.is_file():
        data_dir = data_dir.parent  # metadata.json or main_data.hdf5
    elif (data_dir / "data").is_dir():
        data_dir = data_dir / "data"
    if not (data_dir / _METADATA_FILE).is_file():
        raise ValueError(
            f"{given} is not a Minari dataset: found no {_METADATA_FILE} in it or in its data/ "
            f"(a dataset is a directory with data/{_METADATA_FILE} and data/{_HDF5_FILE})"
        )
    return data_dir


def _read_metadata(data_dir: Path) -> dict[str, Any]:
    """The raw ``metadata.json`` of a dataset, or an error naming the file."""
    file = data_dir / _METADATA_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    try:
        with open(file) as handle:
            metadata = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file} is not readable JSON (truncated or corrupt): {err}") from err
    if not isinstance(metadata, dict):
        raise ValueError(f"{file} is not a Minari metadata object (got {type(metadata).__name__})")
    return metadata


def _check_memrl_format(metadata: Mapping[str, Any], file: Path) -> None:
    """Refuse memrl metadata of another data format version (user datasets have none)."""
    entry = metadata.get(MEMRL_KEY)
    if entry is None:
        return
    version = entry.get("format_version") if isinstance(entry, Mapping) else None
    if version != DATA_FORMAT_VERSION:
        written_by = entry.get("memrl_version", "unknown") if isinstance(entry, Mapping) else "?"
        raise ValueError(
            f"{file} holds memrl data format version {version!r} (written by memrl {written_by}); "
            f"this memrl reads version {DATA_FORMAT_VERSION}: collect the data again with this "
            "memrl, or read it with the memrl that wrote it"
        )


def _check_hdf5(data_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Open ``main_data.hdf5`` and find every episode, or raise an error naming the file."""
    if metadata.get("data_format", "hdf5") != "hdf5":
        return
    import h5py

    file = data_dir / _HDF5_FILE
    if not file.is_file():
        raise ValueError(f"{file} is missing: the dataset in {data_dir} is incomplete")
    try:
        with h5py.File(file, "r") as handle:
            groups = set(handle.keys())
    except OSError as err:
        raise ValueError(
            f"{file} is not a readable HDF5 file (truncated or corrupt): {err}"
        ) from err
    expected = int(metadata.get("total_episodes", 0))
    missing = [i for i in range(expected) if f"episode_{i}" not in groups]
    if missing:
        raise ValueError(
            f"{file} is truncated: {_METADATA_FILE} counts {expected} episodes, "
            f"{len(missing)} of them are missing (first: episode_{missing[0]})"
        )


def _as_array(value: Any, space: spaces.Space[Any], what: str, file: Path) -> np.ndarray:
    """Steps of a space as one array: arrays as stored, Dict/Tuple leaves flattened and joined."""
    from gymnasium import spaces

    if isinstance(value, np.ndarray):
        return value
    if isinstance(space, spaces.Dict | spaces.Tuple) and isinstance(value, dict | tuple):
        keys = list(space.spaces.keys()) if isinstance(space, spaces.Dict) else range(len(value))
        leaves = [_as_array(value[k], space[k], what, file) for k in keys]  # type: ignore[index]
        return np.concatenate([leaf.reshape(len(leaf), -1) for leaf in leaves], axis=1)
    raise ValueError(
        f"{file}: the {what} space {space} cannot be read as numpy arrays "
        "(supported: Box, Discrete, MultiDiscrete, MultiBinary, and Dict/Tuple of them)"
    )


def load_episodes(
    path_or_id: str | os.PathLike[str],
    *,
    datasets_path: str | os.PathLike[str] | None = None,
) -> OfflineDataset:
    """Read a Minari dataset (memrl's or any other) into numpy arrays of episodes.

    Observations and actions come as Minari stores them (``[T + 1, ...]`` and ``[T, ...]``);
    those of Dict or Tuple spaces are flattened per step and joined in the space's order into
    ``[T + 1, D]`` (``[T, D]``), ready for a sequence model.

    Args:
        path_or_id: A dataset directory (``<root>/<dataset_id>``), its ``data`` directory or a
            file in it; or a Minari dataset id, looked up under ``datasets_path``.
        datasets_path: Where to look a dataset id up; default ``MINARI_DATASETS_PATH``, else
            ``~/.minari/datasets`` (Minari's own default).

    Returns:
        The dataset's path, id, metadata and episodes (with Minari's per-episode metadata).

    Raises:
        FileNotFoundError: Neither a path nor a dataset id under the datasets directory.
        ValueError: Not a Minari dataset, an unreadable ``metadata.json``, a truncated or corrupt
            ``main_data.hdf5``, or memrl metadata of another data format version; the message
            names the file.
    """
    import minari

    root = Path(datasets_path) if datasets_path is not None else None
    data_dir = _find_data_dir(path_or_id, root)
    metadata = _read_metadata(data_dir)
    _check_memrl_format(metadata, data_dir / _METADATA_FILE)
    _check_hdf5(data_dir, metadata)
    try:
        dataset = minari.MinariDataset(data_dir)
        indices = dataset.episode_indices
        episode_metadata = list(dataset.storage.get_episode_metadata(indices))
        raw_episodes = list(dataset.iterate_episodes(indices))
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{data_dir}: Minari cannot read this dataset: {err}") from err
    episodes = []
    for raw, extra in zip(raw_episodes, episode_metadata, strict=True):
        seed = extra.get("seed")
        episodes.append(
            Episode(
                observations=_as_array(
                    raw.observations, dataset.observation_space, "observation", data_dir
                ),
                actions=_as_array(raw.actions, dataset.action_space, "action", data_dir),
                rewards=np.asarray(raw.rewards),
                terminations=np.asarray(raw.terminations, dtype=bool),
                truncations=np.asarray(raw.truncations, dtype=bool),
                infos=raw.infos or {},
                seed=None if seed is None else int(seed),
                metadata={
                    k: _plain(v) for k, v in extra.items() if k not in ("id", "seed", "total_steps")
                },
            )
        )
    return OfflineDataset(
        path=data_dir,
        dataset_id=dataset.id,
        metadata=dataset.storage.metadata,
        episodes=episodes,
    )
