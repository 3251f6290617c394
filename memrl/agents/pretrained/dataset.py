"""Offline data for the multi-domain Decision Transformer: many Minari datasets, one sampler.

:func:`load_pretraining_data` finds every memrl Minari dataset under some directories (Meta-World
scripted episodes from ``memrl data collect``, dm_control SAC replay buffers, anything memrl
wrote), takes each dataset's task and domain from its metadata (``metadata["memrl"]``), and
reads the chosen tasks into flat arrays in the shared layout
(:mod:`memrl.agents.pretrained.layout`): states and actions zero-padded, an action mask per
task, returns-to-go per episode divided by the domain's reward scale
(:mod:`memrl.agents.pretrained.tasks`), timesteps within the episode. Datasets of one task (a
scripted and a replay dataset, say) pool into that task. Episodes whose metadata says
``complete: False`` (a replay buffer's unfinished last episode, or its first one when older
transitions were overwritten: :mod:`memrl.agents.continual.replay_export`) are left out, since
their returns-to-go (and, for the first, their timesteps) are not known.

:class:`ContextSampler` draws training contexts of ``K`` consecutive steps. A context is chosen
by its *last* step: a task uniformly (every task equally likely, so a task with ten times the
data is not ten times as common, and small datasets mix with big ones), then a step uniformly
among that task's steps; the context holds that step and the ``K - 1`` before it in the same
episode, padded at the front (``step_mask`` False) where the episode began less than ``K`` steps
earlier, exactly as :class:`~memrl.agents.pretrained.inference.RollingContext` pads the start of
an episode when acting. Every step of the data is thus the last step of a context equally often
within its task. A batch is one vectorised gather (no Python loop per sample) and is
reproducible from the sampler's seed and its saved state.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memrl.agents.pretrained.inputs import TrajectoryContext
from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM, action_mask
from memrl.agents.pretrained.tasks import DOMAINS, PretrainTask, reward_scale

PRETRAIN_SPLIT = "pretrain"
"""The split trained on when no tasks are named."""
MIN_STATE_STD = 1e-2
"""The smallest standard deviation a state dimension is divided by (a dimension that barely
varies is not blown up); dimensions that never vary keep 1."""


def _field(name: str) -> str:
    return name


@dataclass(frozen=True)
class DatasetSource:
    """A memrl Minari dataset found on disk.

    Attributes:
        path: The dataset directory (``<root>/<dataset_id>``).
        task: ``metadata["memrl"]["task"]``.
        domain: ``metadata["memrl"]["domain"]``.
        split: ``metadata["memrl"]["split"]``, else the catalogue's split of the task, else
            ``"unknown"``.
    """

    path: Path
    task: str
    domain: str
    split: str


def find_datasets(
    directories: Sequence[str | os.PathLike[str]], name: Callable[[str], str] = _field
) -> list[DatasetSource]:
    """Every memrl Minari dataset under ``directories`` (each may itself be a dataset).

    Args:
        directories: Where to look (recursively).
        name: How messages name a setting: ``"data"`` by default; the CLI passes its options.

    Returns:
        The datasets, sorted by path, each once.

    Raises:
        FileNotFoundError: A directory does not exist.
        ValueError: No directories, a directory holding no Minari dataset, or a dataset without
            memrl's metadata (task and domain); the message names it.
    """
    from memrl.data.minari_io import completed_metadata
    from memrl.streams.catalogue import CATALOGUE

    if not directories:
        raise ValueError(f"{name('data')} needs at least one datasets directory")
    found: dict[Path, DatasetSource] = {}
    for directory in directories:
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"{name('data')} {directory}: no such directory")
        metadata_files = root.rglob("metadata.json")
        dataset_dirs = sorted({f.parent.parent for f in metadata_files if f.parent.name == "data"})
        if not dataset_dirs:
            raise ValueError(
                f"{name('data')} {directory} holds no Minari dataset (none of its folders has "
                "data/metadata.json); collect one with `memrl data collect --out DIR`"
            )
        for dataset_dir in dataset_dirs:
            entry = completed_metadata(dataset_dir)
            if entry is None or not entry.get("task") or not entry.get("domain"):
                raise ValueError(
                    f"{dataset_dir} is not a complete memrl dataset: its metadata has no memrl "
                    "task and domain (a collection killed while writing it, or data memrl did "
                    "not write); collect it again or move it out of the data directory"
                )
            task = str(entry["task"])
            catalogue = CATALOGUE.get(task)
            split = entry.get("split") or (catalogue.split if catalogue else "unknown")
            key = dataset_dir.resolve()
            found[key] = DatasetSource(key, task, str(entry["domain"]), str(split))
    return [found[path] for path in sorted(found)]


def select_datasets(
    sources: Sequence[DatasetSource],
    tasks: Iterable[str] | None,
    name: Callable[[str], str] = _field,
) -> list[DatasetSource]:
    """The datasets of the chosen tasks: ``tasks``, or the pretraining split if None.

    Args:
        sources: The datasets found (:func:`find_datasets`).
        tasks: Task names, or list names of ``memrl.streams.catalogue.TASK_LISTS`` (``MT40``,
            ``DMC-pretrain``, ``L2M-pretrain``) standing for those of their tasks that have data
            (a warning names the others); None or empty: every task of the ``pretrain`` split.
        name: How messages name a setting.

    Raises:
        ValueError: A task named on its own without data, a list none of whose tasks has data,
            or no pretraining-split data; the message lists the tasks that have data.
    """
    from memrl.streams.catalogue import TASK_LISTS

    have = {s.task for s in sources}
    listed = ", ".join(
        f"{task} ({split})" for task, split in sorted({(s.task, s.split) for s in sources})
    )
    wanted: set[str] = set()
    missing: list[str] = []
    for item in tasks or ():
        if item in TASK_LISTS:
            found = [task for task in TASK_LISTS[item] if task in have]
            if not found:
                missing.append(item)
            elif len(found) < len(TASK_LISTS[item]):
                absent = [task for task in TASK_LISTS[item] if task not in have]
                warnings.warn(
                    f"{name('tasks')}: {item} has no data for {absent}; training on the "
                    f"{len(found)} of its tasks that have data",
                    stacklevel=2,
                )
            wanted.update(found)
        elif item in have:
            wanted.add(item)
        else:
            missing.append(item)
    if missing:
        raise ValueError(
            f"{name('tasks')} asks for {missing}, which no dataset in {name('data')} holds; "
            f"found {listed}"
        )
    if not wanted:
        chosen = [s for s in sources if s.split == PRETRAIN_SPLIT]
        if not chosen:
            raise ValueError(
                f"no dataset of the {PRETRAIN_SPLIT!r} split in {name('data')}; found {listed}: "
                f"name the tasks to train on with {name('tasks')}"
            )
        return chosen
    return [s for s in sources if s.task in wanted]


@dataclass(frozen=True)
class PretrainingData:
    """Every step of every chosen task in flat arrays (``N`` steps; tasks contiguous).

    Attributes:
        tasks: The task table, in index order (sorted by domain, then name).
        states: ``[N, state_dim]`` float32, zero-padded.
        actions: ``[N, action_dim]`` float32, zero-padded.
        returns_to_go: ``[N]`` float32: the rest of the episode's return from each step on,
            divided by the domain's reward scale.
        timesteps: ``[N]`` int64, the step within the episode.
        episode_starts: ``[N]`` int64, the index of the first step of each step's episode.
        task_starts: ``[num_tasks]`` int64, the index of each task's first step.
        task_steps: ``[num_tasks]`` int64, each task's number of steps.
        action_masks: ``[num_tasks, action_dim]`` bool, each task's real action dimensions.
    """

    tasks: tuple[PretrainTask, ...]
    states: np.ndarray
    actions: np.ndarray
    returns_to_go: np.ndarray
    timesteps: np.ndarray
    episode_starts: np.ndarray
    task_starts: np.ndarray
    task_steps: np.ndarray
    action_masks: np.ndarray


@dataclass
class _TaskArrays:
    """One task's steps, before the tasks are joined."""

    states: list[np.ndarray]
    actions: list[np.ndarray]
    returns_to_go: list[np.ndarray]
    returns: list[float]
    state_dim: int | None = None
    action_dim: int | None = None


def _check_episode(
    source: DatasetSource, observations: np.ndarray, actions: np.ndarray, limits: dict[str, int]
) -> None:
    """Raise ValueError naming the dataset if an episode does not fit the layout."""
    steps = len(actions)
    if observations.ndim != 2 or actions.ndim != 2:
        raise ValueError(
            f"{source.path}: observations and actions must be vectors (Box spaces); got "
            f"observations of shape {observations.shape[1:]} and actions of shape "
            f"{actions.shape[1:]}"
        )
    if observations.shape[1] > limits["state_dim"]:
        raise ValueError(
            f"{source.path}: observations have {observations.shape[1]} features; the model's "
            f"state layout holds 1..{limits['state_dim']}"
        )
    if actions.shape[1] > limits["action_dim"]:
        raise ValueError(
            f"{source.path}: actions have {actions.shape[1]} dimensions; the model's action "
            f"layout holds 1..{limits['action_dim']}"
        )
    if steps > limits["max_timestep"]:
        raise ValueError(
            f"{source.path}: an episode of {steps} steps; the model's timesteps run "
            f"0..{limits['max_timestep'] - 1} (raise max_timestep)"
        )
    if not (np.isfinite(observations).all() and np.isfinite(actions).all()):
        raise ValueError(f"{source.path}: observations or actions hold NaN or infinite values")
    if steps and np.abs(actions).max() > 1.0 + 1e-6:
        raise ValueError(
            f"{source.path}: actions reach {np.abs(actions).max():.3g}; the model's action bins "
            "cover [-1, 1] (rescale the actions into it)"
        )


def _read_task(
    sources: Sequence[DatasetSource], limits: dict[str, int]
) -> tuple[_TaskArrays, list[str]]:
    """Load one task's datasets into per-episode arrays; also the datasets' Minari ids."""
    from memrl.data import load_episodes

    arrays = _TaskArrays([], [], [], [])
    dataset_ids = []
    for source in sources:
        dataset = load_episodes(source.path)
        dataset_ids.append(dataset.dataset_id)
        scale = reward_scale(source.domain)
        source_steps = 0
        for episode in dataset.episodes:
            steps = len(episode)
            observations = np.asarray(episode.observations)[:steps]
            actions = np.asarray(episode.actions)
            _check_episode(source, observations, actions, limits)
            if steps == 0:
                continue
            widths = (observations.shape[1], actions.shape[1])
            if arrays.state_dim is None:
                arrays.state_dim, arrays.action_dim = widths
            elif widths != (arrays.state_dim, arrays.action_dim):
                raise ValueError(
                    f"{source.path}: task {source.task} has observations x actions of "
                    f"{widths[0]} x {widths[1]} here and {arrays.state_dim} x "
                    f"{arrays.action_dim} in its other datasets"
                )
            if episode.metadata.get("complete") is False:
                continue  # a replay buffer's cut-off episode: its returns-to-go are unknown
            rewards = np.asarray(episode.rewards, dtype=np.float64)
            returns_to_go = np.cumsum(rewards[::-1])[::-1]
            arrays.states.append(observations.astype(np.float32))
            arrays.actions.append(actions.astype(np.float32))
            arrays.returns_to_go.append((returns_to_go / scale).astype(np.float32))
            arrays.returns.append(float(returns_to_go[0]))
            source_steps += steps
        if source_steps == 0:
            raise ValueError(f"{source.path}: the dataset holds no complete episode with steps")
    return arrays, dataset_ids


def load_pretraining_data(
    directories: Sequence[str | os.PathLike[str]],
    tasks: Iterable[str] | None = None,
    *,
    state_dim: int = STATE_DIM,
    action_dim: int = ACTION_DIM,
    max_timestep: int = 1000,
    name: Callable[[str], str] = _field,
) -> PretrainingData:
    """Read the chosen tasks' datasets under ``directories`` into the shared layout.

    Args:
        directories: Datasets directories, searched recursively (see :func:`find_datasets`).
        tasks: Task names or list names to train on; None: the ``pretrain`` split.
        state_dim: Width of the state layout (the model's).
        action_dim: Width of the action layout (the model's).
        max_timestep: Episodes must be at most this long (the model's timestep embedding).
        name: How messages name a setting: ``"data"``/``"tasks"`` by default; the CLI passes
            its options.

    Returns:
        The data, tasks numbered in (domain, name) order.

    Raises:
        FileNotFoundError: A directory does not exist.
        ValueError: No dataset, a task without data, a dataset of an unknown domain, or one whose
            observations, actions or episode lengths do not fit the layout (named).
    """
    sources = select_datasets(find_datasets(directories, name), tasks, name)
    for source in sources:
        try:
            reward_scale(source.domain)
        except ValueError as error:
            raise ValueError(f"{source.path}: {error}") from None
    by_task: dict[str, list[DatasetSource]] = {}
    for source in sources:
        by_task.setdefault(source.task, []).append(source)
    for task, task_sources in by_task.items():
        domains = sorted({source.domain for source in task_sources})
        if len(domains) > 1:
            raise ValueError(f"task {task} has datasets of several domains: {domains}")
    limits = {"state_dim": state_dim, "action_dim": action_dim, "max_timestep": max_timestep}
    table: list[PretrainTask] = []
    states: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    returns_to_go: list[np.ndarray] = []
    lengths: list[int] = []
    order = sorted(by_task, key=lambda task: (by_task[task][0].domain, task))
    for index, task in enumerate(order):
        task_sources = by_task[task]
        domain = task_sources[0].domain
        arrays, dataset_ids = _read_task(task_sources, limits)
        assert arrays.state_dim is not None and arrays.action_dim is not None
        table.append(
            PretrainTask(
                name=task,
                domain=domain,
                index=index,
                split=task_sources[0].split,
                state_dim=arrays.state_dim,
                action_dim=arrays.action_dim,
                episodes=len(arrays.returns),
                steps=sum(len(a) for a in arrays.actions),
                best_return=max(arrays.returns),
                mean_return=float(np.mean(arrays.returns)),
                datasets=tuple(dataset_ids),
            )
        )
        states.extend(arrays.states)
        actions.extend(arrays.actions)
        returns_to_go.extend(arrays.returns_to_go)
        lengths.extend(len(a) for a in arrays.actions)
    return _join(tuple(table), states, actions, returns_to_go, lengths, state_dim, action_dim)


def _join(
    tasks: tuple[PretrainTask, ...],
    states: list[np.ndarray],
    actions: list[np.ndarray],
    returns_to_go: list[np.ndarray],
    lengths: list[int],
    state_dim: int,
    action_dim: int,
) -> PretrainingData:
    """Episodes (in task order) into padded flat arrays."""
    total = sum(lengths)
    flat_states = np.zeros((total, state_dim), dtype=np.float32)
    flat_actions = np.zeros((total, action_dim), dtype=np.float32)
    episode_lengths = np.asarray(lengths, dtype=np.int64)
    episode_offsets = np.concatenate(([0], np.cumsum(episode_lengths)[:-1]))
    for offset, episode_states, episode_actions in zip(
        episode_offsets, states, actions, strict=True
    ):
        flat_states[offset : offset + len(episode_states), : episode_states.shape[1]] = (
            episode_states
        )
        flat_actions[offset : offset + len(episode_actions), : episode_actions.shape[1]] = (
            episode_actions
        )
    task_steps = np.asarray([task.steps for task in tasks], dtype=np.int64)
    return PretrainingData(
        tasks=tasks,
        states=flat_states,
        actions=flat_actions,
        returns_to_go=np.concatenate(returns_to_go),
        timesteps=np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]),
        episode_starts=np.repeat(episode_offsets, episode_lengths),
        task_starts=np.concatenate(([0], np.cumsum(task_steps)[:-1])).astype(np.int64),
        task_steps=task_steps,
        action_masks=np.stack([action_mask(task.action_dim, action_dim) for task in tasks]),
    )


def state_statistics(
    data: PretrainingData, min_std: float = MIN_STATE_STD
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every domain's state mean and standard deviation, for the model's normalisation.

    Per domain of :data:`~memrl.agents.pretrained.tasks.DOMAINS`, over every step of that
    domain's tasks in the shared layout: a narrower task's zero padding counts as zeros, so
    padding normalises to values within the domain's range. A dimension that never varies
    within its domain (padding no task of the domain uses, a constant feature) keeps mean 0 and
    std 1, so it passes unchanged; any other std is clamped to at least ``min_std``. A domain
    without data keeps mean 0 and std 1.

    Args:
        data: The pretraining data.
        min_std: The smallest std divided by.

    Returns:
        ``(mean, std)``, each ``[len(DOMAINS), state_dim]`` float32.
    """
    state_dim = data.states.shape[1]
    mean = np.zeros((len(DOMAINS), state_dim))
    std = np.ones((len(DOMAINS), state_dim))
    for row, domain in enumerate(DOMAINS):
        steps = [
            data.states[start : start + count]
            for task, start, count in zip(
                data.tasks, data.task_starts, data.task_steps, strict=True
            )
            if task.domain == domain
        ]
        if not steps:
            continue
        count = sum(len(chunk) for chunk in steps)
        domain_mean = sum(chunk.sum(axis=0, dtype=np.float64) for chunk in steps) / count
        squares = sum(np.square(chunk - domain_mean).sum(axis=0) for chunk in steps)
        domain_std = np.sqrt(squares / count)  # two passes, one task at a time: no big copy
        low = np.min([chunk.min(axis=0) for chunk in steps], axis=0)
        high = np.max([chunk.max(axis=0) for chunk in steps], axis=0)
        varies = high > low  # exact, unlike a std computed in floating point
        mean[row] = np.where(varies, domain_mean, 0.0)
        std[row] = np.where(varies, np.maximum(domain_std, min_std), 1.0)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def task_data(data: PretrainingData, task: str) -> PretrainingData:
    """One task's steps as data of their own (the task numbered 0), sharing ``data``'s arrays.

    For training on one task of several loaded together (continual fine-tuning, task by task).

    Raises:
        ValueError: ``task`` is not in ``data``; the message lists the tasks that are.
    """
    names = [t.name for t in data.tasks]
    if task not in names:
        raise ValueError(f"no data for task {task!r}; the data hold {names}")
    row = names.index(task)
    start, steps = int(data.task_starts[row]), int(data.task_steps[row])
    window = slice(start, start + steps)
    return PretrainingData(
        tasks=(dataclasses.replace(data.tasks[row], index=0),),
        states=data.states[window],
        actions=data.actions[window],
        returns_to_go=data.returns_to_go[window],
        timesteps=data.timesteps[window],
        episode_starts=data.episode_starts[window] - start,
        task_starts=np.zeros(1, dtype=np.int64),
        task_steps=np.asarray([steps], dtype=np.int64),
        action_masks=data.action_masks[row : row + 1],
    )


@dataclass(frozen=True)
class ContextBatch:
    """A batch of ``B`` contexts of ``K`` steps, as numpy arrays.

    Attributes:
        states: ``[B, K, state_dim]`` float32 (zero on padding steps).
        actions: ``[B, K, action_dim]`` float32 (zero on padding steps).
        returns_to_go: ``[B, K]`` float32, scaled (zero on padding steps).
        timesteps: ``[B, K]`` int64 (zero on padding steps).
        action_mask: ``[B, action_dim]`` bool, the task's real action dimensions.
        step_mask: ``[B, K]`` bool, False on padding steps.
        task_index: ``[B]`` int64, each context's row in the task table.
        domain: ``[B]`` int64, each context's task's domain index
            (:data:`~memrl.agents.pretrained.tasks.DOMAINS`).
    """

    states: np.ndarray
    actions: np.ndarray
    returns_to_go: np.ndarray
    timesteps: np.ndarray
    action_mask: np.ndarray
    step_mask: np.ndarray
    task_index: np.ndarray
    domain: np.ndarray

    def to_context(self) -> TrajectoryContext:
        """The batch as the model's input (tensors share the arrays' memory)."""
        return TrajectoryContext(
            states=torch.from_numpy(self.states),
            actions=torch.from_numpy(self.actions),
            returns_to_go=torch.from_numpy(self.returns_to_go),
            timesteps=torch.from_numpy(self.timesteps),
            action_mask=torch.from_numpy(self.action_mask),
            domain=torch.from_numpy(self.domain),
            step_mask=torch.from_numpy(self.step_mask),
        )


class ContextSampler:
    """Task-balanced contexts of ``context_steps`` steps from :class:`PretrainingData`.

    Args:
        data: The data.
        context_steps: ``K``, steps per context.
        seed: Seed of the sampler's own generator.
    """

    def __init__(self, data: PretrainingData, context_steps: int, seed: int) -> None:
        if context_steps < 1:
            raise ValueError(f"context_steps must be >= 1, got {context_steps}")
        self.data = data
        self.context_steps = context_steps
        self.rng = np.random.default_rng(seed)
        self._offsets = np.arange(1 - context_steps, 1, dtype=np.int64)  # [K]: -(K-1) .. 0
        self._domains = np.asarray([t.domain_index for t in data.tasks], dtype=np.int64)  # [tasks]

    def sample(self, batch_size: int) -> ContextBatch:
        """``batch_size`` contexts: task uniform, then last step uniform within the task."""
        data = self.data
        task = self.rng.integers(0, len(data.tasks), size=batch_size)  # [B]
        last = data.task_starts[task] + self.rng.integers(0, data.task_steps[task])  # [B]
        index = last[:, None] + self._offsets  # [B, K]
        real = index >= data.episode_starts[last][:, None]  # [B, K]
        index = np.where(real, index, last[:, None])
        padding = ~real
        states = data.states[index]
        states[padding] = 0.0
        actions = data.actions[index]
        actions[padding] = 0.0
        returns_to_go = np.where(real, data.returns_to_go[index], np.float32(0.0))
        timesteps = np.where(real, data.timesteps[index], 0)
        return ContextBatch(
            states=states,
            actions=actions,
            returns_to_go=returns_to_go,
            timesteps=timesteps,
            action_mask=data.action_masks[task],
            step_mask=real,
            task_index=task,
            domain=self._domains[task],
        )

    def state_dict(self) -> dict[str, Any]:
        """The generator's state (to resume sampling exactly)."""
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output."""
        self.rng.bit_generator.state = state["bit_generator"]
