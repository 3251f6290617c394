"""A single-task continual-SAC run's whole replay buffer as a Minari dataset (L2M's SAC data).

L2M (Schmied et al. 2023) pre-trained on the replay buffers of single-task SAC agents: every
transition from the first random action to the trained policy. ``export_sac_replay(run_dir,
out_dir)`` writes the buffer of a memrl run (``memrl train --stream DMC6 --tasks cartpole-balance
--method finetune ...``) as the dataset ``memrl/<domain>/<task>/sac-replay-v0`` under ``out_dir``
(the domain from :mod:`memrl.streams.catalogue`: ``dm_control`` or ``metaworld``), one episode
after another in the order they were played.

**What the buffer stores** (:mod:`memrl.agents.continual.buffers`): one row per env step,
``(observation, action, reward, next_observation, terminated)`` as float32, in FIFO slots
(``position`` is the next slot, ``seen`` counts every transition ever added). Observations are in
the run's stream layout (:mod:`memrl.streams.layout`): the task's own vector, zero padding up to
the stream's longest task, then the task one-hot. Time limits and stage ends are *not* stored
(the critic bootstraps through them), nor are episode ids. So the buffer alone cannot say where a
time-limited episode ends.

**How episodes are rebuilt.** From the fixed episode length of the task (dm_control: 1000 steps,
Meta-World's protocol: 200), the stage ends of the stream (where ``ContinualEnv`` truncates an
episode) and the stored ``terminated`` flags: the run resets at step 0, and an episode ends at a
termination, after the episode length or at a stage end. No task of either domain terminates
(memrl's Meta-World protocol never does, nor do L2M's 16 dm_control tasks), so this also places
the episodes of a buffer whose oldest rows were overwritten. The result is then checked
against the data both ways: within an episode every ``next_observation`` must equal the next
row's ``observation``, and across a boundary it must not (the env was reset); and the length of
the last, unfinished episode must be the one the checkpoint records. A mismatch is an error that
names the step, never a silently wrong dataset.

**What is written.** Every stored transition exactly once, oldest first. Observations and actions
in the task's own spaces (padding and one-hot stripped, after checking that they are exactly what
the layout adds), observations cast to the task's dtype (float64 for both domains: the values
keep the buffer's float32 precision). Each episode's last step is a truncation unless it
terminated, the checkpoint's unfinished episode included (its metadata says ``complete: False``);
when the buffer's capacity was exceeded the oldest transitions were overwritten, the first
episode then starts mid-episode (also ``complete: False``) and ``metadata["memrl"]["overwritten"]``
counts what was lost. Per-episode metadata: ``first_step`` (the run's env step of its first
transition), ``return`` and ``complete``. Dataset metadata (``metadata["memrl"]``): task, domain,
split, the run's config, its evaluations up to the exported checkpoint (``evaluations.json`` as
that checkpoint saved it), steps, transitions, the source run and checkpoint, memrl's version and
the data format version.

The run's newest intact checkpoint is read as the trainer reads it (:mod:`memrl.agents.checkpoints`:
``latest.pt``, or ``previous.pt`` with a warning if ``latest.pt`` or a buffer part it needs is
damaged). Nothing is written into the run directory, nothing outside ``out_dir``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memrl.data.episodes import Episode
from memrl.data.minari_io import (
    completed_metadata,
    package_requirement,
    remove_partial_dataset,
    write_dataset,
)

if TYPE_CHECKING:
    import gymnasium

    from memrl.agents.continual.buffers import ReplayBuffer
    from memrl.agents.continual.config import ContinualConfig
    from memrl.streams import Task

DATASET_NAME = "sac-replay-v0"
"""Minari's dataset name and version of a run's replay buffer."""

EXPORTED_DOMAINS: tuple[str, ...] = ("dm_control", "metaworld")
"""Domains whose runs can be exported (fixed-length episodes, no termination in their tasks)."""

_REQUIREMENTS = {"dm_control": ("dm-control", "mujoco"), "metaworld": ("metaworld", "mujoco")}
_ENV_ID_PREFIX = {"dm_control": "DMControl", "metaworld": "MetaWorld"}


def sac_replay_dataset_id(task: str) -> str:
    """Minari's id of a task's replay dataset: ``memrl/<domain>/<task>/sac-replay-v0``.

    Raises:
        ValueError: ``task`` is no catalogue task of an exported domain.
    """
    from memrl.streams.catalogue import get_task

    return f"memrl/{_exported_domain(get_task(task))}/{task}/{DATASET_NAME}"


def _exported_domain(task: Task) -> str:
    """The task's domain, if its runs can be exported."""
    if task.domain not in EXPORTED_DOMAINS:
        raise ValueError(
            f"only runs on tasks of the domains {list(EXPORTED_DOMAINS)} can be exported, got "
            f"{task.name!r} of the domain {task.domain!r}"
        )
    return task.domain


@dataclass(frozen=True)
class StoredReplay:
    """A run's replay buffer in insertion order and in the task's own spaces.

    Attributes:
        observations: ``[n, task observation dim]`` float32, oldest first.
        actions: ``[n, task action dim]`` float32.
        rewards: ``[n]`` float32.
        next_observations: ``[n, task observation dim]`` float32.
        terminated: ``[n]`` bool.
        first_step: The run's env step of the first row: as the run stored one transition per
            step from step 0, the number of transitions the buffer overwrote (capacity exceeded).
        capacity: The buffer's capacity.
        global_step: Env steps the run had taken at the checkpoint.
        unfinished_length: Steps of the episode in progress at the checkpoint (0: none).
        checkpoint: The checkpoint file read.
        config: The run's config.
        evaluations: The run's evaluation log as the checkpoint saved it.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    first_step: int
    capacity: int
    global_step: int
    unfinished_length: int
    checkpoint: Path
    config: ContinualConfig
    evaluations: Mapping[str, Any]

    @property
    def stop_step(self) -> int:
        """One past the run's env step of the last row."""
        return self.first_step + len(self.rewards)


def read_replay(run_dir: str | os.PathLike[str]) -> StoredReplay:
    """The replay buffer of a run's newest intact checkpoint, oldest transition first.

    Observations and actions are cut back from the run's stream layout to the task's own
    dimensions, after checking that what is cut off is exactly the layout's padding and one-hot.

    Raises:
        FileNotFoundError: ``run_dir`` holds no checkpoint (names the directory).
        NoIntactCheckpointError: Both checkpoints are damaged (a ``ValueError`` naming both).
        ValueError: A run of several tasks, a buffer whose insertion order is lost (a reservoir
            that dropped transitions), counters that disagree with the run's step, or rows that
            are not in the run's layout.
    """
    from memrl.agents.checkpoints import CheckpointStore
    from memrl.agents.continual.buffers import ReplayBuffer, ReservoirBuffer, check_parts
    from memrl.agents.continual.trainer import CHECKPOINT_KEYS, saved_run_config
    from memrl.streams import ContinualEnv
    from memrl.streams.layout import task_spaces

    run_dir = Path(run_dir)
    store = CheckpointStore(run_dir / "checkpoints")
    if not store.exists():
        where = "does not exist" if not run_dir.exists() else f"has no {store.latest.name}"
        raise FileNotFoundError(
            f"{run_dir} holds no continual-SAC checkpoint ({store.directory} {where}): give the "
            "directory of a run trained with `memrl train --stream ... --tasks TASK --out DIR`"
        )
    buffer_dir = run_dir / "checkpoints" / "buffer"
    checkpoint, payload = store.load(
        required=CHECKPOINT_KEYS, check=lambda p: check_parts(p["buffer"], buffer_dir)
    )
    config = saved_run_config(payload["config"])
    stream = config.build_stream()
    if len(stream.task_names) != 1:
        raise ValueError(
            f"{run_dir} trains {len(stream.task_names)} tasks {list(stream.task_names)}; only "
            "the replay buffer of a single-task run can be exported (one task, one dataset: "
            "train it with `memrl train --tasks TASK ...`)"
        )
    with ContinualEnv(stream, task_one_hot=True) as env:  # the trainer's layout
        layout = env.layout
    own = task_spaces(stream.tasks[0])
    own_observation_dim = own.observation_space.shape[0]
    layout_suffix = layout.observation(0, np.zeros(own_observation_dim))[own_observation_dim:]

    state = payload["buffer"]
    kinds = {ReplayBuffer.kind: ReplayBuffer, ReservoirBuffer.kind: ReservoirBuffer}
    buffer = kinds[state["kind"]](
        state["capacity"], layout.observation_space.shape[0], layout.action_space.shape[0]
    )
    buffer.load_state_dict(state, buffer_dir)
    global_step = int(payload["global_step"])
    if buffer.seen != global_step:
        raise ValueError(
            f"{checkpoint}: its buffer holds {buffer.seen} transitions since its last reset, the "
            f"run has taken {global_step} steps: a single-task run stores one per step and is "
            "never reset, so this buffer cannot be laid out in time"
        )
    rows = _insertion_order(buffer, run_dir)

    def observations(stored: np.ndarray) -> np.ndarray:
        if not np.array_equal(
            stored[:, own_observation_dim:], np.tile(layout_suffix, (len(rows), 1))
        ):
            raise ValueError(
                f"{checkpoint}: the stored observations do not end with the layout's padding and "
                f"one-hot {layout_suffix.tolist()}: they are not in the run's stream layout"
            )
        return stored[:, :own_observation_dim]

    return StoredReplay(
        observations=observations(buffer.observations[rows]),
        actions=buffer.actions[rows, : own.action_space.shape[0]],
        rewards=buffer.rewards[rows],
        next_observations=observations(buffer.next_observations[rows]),
        terminated=buffer.terminated[rows].astype(bool),
        first_step=buffer.seen - len(rows),
        capacity=buffer.capacity,
        global_step=global_step,
        unfinished_length=int(payload["episode"][1]),
        checkpoint=checkpoint,
        config=config,
        evaluations=payload["evaluations"],
    )


def _insertion_order(buffer: ReplayBuffer, run_dir: Path) -> np.ndarray:
    """The buffer's filled slots, oldest transition first."""
    if buffer.seen <= buffer.capacity:
        return np.arange(buffer.size)
    if buffer.kind != "fifo":
        raise ValueError(
            f"{run_dir}: its {buffer.kind} buffer has seen {buffer.seen} transitions but holds "
            f"{buffer.capacity}, a random subset whose order is lost; only a FIFO buffer (or a "
            "reservoir that never dropped one) can be exported episode by episode"
        )
    return np.concatenate([np.arange(buffer.position, buffer.capacity), np.arange(buffer.position)])


def episode_spans(
    first_step: int,
    stop_step: int,
    episode_length: int,
    stage_ends: Sequence[int],
    terminated: np.ndarray,
) -> list[tuple[int, int]]:
    """The episodes that overlap env steps ``[first_step, stop_step)``, as ``(start, end)``.

    The run resets at step 0; an episode ends after ``episode_length`` steps, at a stage end
    (``ContinualEnv`` truncates there), or after a termination (``terminated[step -
    first_step]``; none is known before ``first_step``). The spans are not clipped: the first
    one may start before ``first_step`` (its start was overwritten) and the last one end after
    ``stop_step`` (it was still running).

    Args:
        first_step: The run's step of the first stored transition.
        stop_step: One past the step of the last one.
        episode_length: The task's fixed episode length.
        stage_ends: Steps at which the stream's stages end.
        terminated: ``[stop_step - first_step]`` termination flags.

    Returns:
        ``(start, end)`` run steps of each episode, in order.
    """
    spans = []
    start = 0
    while start < stop_step:
        end = min([start + episode_length, *(e for e in stage_ends if e > start)])
        stored_from = max(start, first_step)
        if end > stored_from:
            ended = np.flatnonzero(terminated[stored_from - first_step : end - first_step])
            if ended.size:
                end = stored_from + int(ended[0]) + 1
            spans.append((start, end))
        start = end
    return spans


def _check_spans(replay: StoredReplay, spans: list[tuple[int, int]], length: int) -> None:
    """Every episode continuous within, reset across its end; the last one as recorded."""
    continues = np.all(replay.next_observations[:-1] == replay.observations[1:], axis=1)
    boundary = np.zeros(len(continues), dtype=bool)
    boundary[[end - replay.first_step - 1 for _, end in spans if end < replay.stop_step]] = True
    broken = np.flatnonzero(~continues & ~boundary)
    if broken.size:
        step = replay.first_step + int(broken[0])
        raise ValueError(
            f"{replay.checkpoint}: the next observation of step {step} is not the observation of "
            f"step {step + 1}, inside an episode of {length} steps: the episodes cannot be "
            "rebuilt from the task's episode length (was the buffer written another way?)"
        )
    joined = np.flatnonzero(continues & boundary)
    if joined.size:
        step = replay.first_step + int(joined[0])
        raise ValueError(
            f"{replay.checkpoint}: step {step + 1} continues step {step} (no reset), but an "
            f"episode of the task ({length} steps) ends at step {step}: the episodes are longer"
        )
    start, end = spans[-1]
    unfinished = replay.stop_step - start if end > replay.stop_step else 0
    if unfinished != replay.unfinished_length:
        raise ValueError(
            f"{replay.checkpoint}: the episode in progress at the checkpoint is "
            f"{replay.unfinished_length} steps long, the rebuilt one {unfinished}"
        )


def _episodes(
    replay: StoredReplay, spans: list[tuple[int, int]], env: gymnasium.Env
) -> list[Episode]:
    """The stored part of each span as an episode, in the dtypes of the task's spaces."""
    episodes = []
    for start, end in spans:
        rows = slice(max(start, replay.first_step) - replay.first_step,
                     min(end, replay.stop_step) - replay.first_step)  # fmt: skip
        terminations = replay.terminated[rows]
        truncations = np.zeros_like(terminations)
        truncations[-1] = not terminations[-1]
        rewards = replay.rewards[rows].astype(np.float64)
        observations = np.concatenate(
            [replay.observations[rows], replay.next_observations[rows][-1:]]
        )
        episodes.append(
            Episode(
                observations=observations.astype(env.observation_space.dtype),
                actions=replay.actions[rows].astype(env.action_space.dtype),
                rewards=rewards,
                terminations=terminations,
                truncations=truncations,
                metadata={
                    "first_step": max(start, replay.first_step),
                    "return": float(rewards.sum()),
                    "complete": start >= replay.first_step and end <= replay.stop_step,
                },
            )
        )
    return episodes


def _episode_length(task: Task, env: gymnasium.Env) -> int:
    """The task's fixed episode length."""
    if task.domain == "dm_control":
        from memrl.streams.dm_control_env import EPISODE_LENGTH

        return EPISODE_LENGTH
    return int(env.unwrapped.episode_length)  # memrl's Meta-World protocol env


def _check_dataset_id(dataset_id: str) -> None:
    """Refuse an id that is no Minari id with a version.

    Minari's ids are letters, digits, ``-``, ``_`` and ``/`` (no ``.``, no leading ``/``), so a
    valid one cannot lead out of ``out_dir``.
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):  # TypeError: Minari's parser on an id without a version
        raise ValueError(
            "dataset_id must be a Minari id NAMESPACE/NAME-v<version> of letters, digits, '-', "
            f"'_' and '/' (e.g. 'memrl/dm_control/cartpole-balance/{DATASET_NAME}'), got "
            f"{dataset_id!r}"
        ) from None


def _evaluation_summary(evaluations: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The task's column of the run's evaluation log."""
    column = list(evaluations["task_names"]).index(task)
    initial = evaluations.get("initial_returns")
    by_return = task in evaluations.get("return_scored", ())
    return {
        "steps": list(evaluations["steps"]),
        "returns": [row[column] for row in evaluations["returns"]],
        "scores": [row[column] for row in evaluations["success"]],
        "score": "normalised return (return / 1000)" if by_return else "success rate",
        "initial_return": None if initial is None else initial[column],
        "episodes": evaluations["eval_episodes"],
        "deterministic": evaluations["deterministic"],
    }


def export_sac_replay(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    dataset_id: str | None = None,
) -> Path:
    """Write a single-task continual-SAC run's whole replay buffer as a Minari dataset.

    Args:
        run_dir: The run directory (``checkpoints/latest.pt`` and ``checkpoints/buffer/``), read
            only; any checkpoint of the run will do, finished or not.
        out_dir: The datasets directory; the dataset goes to ``out_dir / dataset_id`` and
            nothing is written elsewhere.
        dataset_id: Minari's id; default ``memrl/<domain>/<task>/sac-replay-v0``.

    Returns:
        The dataset's directory (absolute).

    Raises:
        FileNotFoundError: ``run_dir`` holds no checkpoint.
        FileExistsError: ``out_dir / dataset_id`` already holds a complete dataset (a
            half-written one, left by an interrupted export, is deleted and written again).
        ValueError: A run of several tasks or of a domain other than ``EXPORTED_DOMAINS``, a
            malformed ``dataset_id``, both checkpoints damaged, or a buffer whose episodes cannot
            be rebuilt (see the module docstring); the message names the value or the step.
    """
    from gymnasium.envs.registration import EnvSpec

    from memrl.agents.continual.methods import make_method

    replay = read_replay(run_dir)
    stream = replay.config.build_stream()
    task = stream.tasks[0]
    domain = _exported_domain(task)
    dataset_id = f"memrl/{domain}/{task.name}/{DATASET_NAME}" if dataset_id is None else dataset_id
    _check_dataset_id(dataset_id)
    root = Path(out_dir).absolute()
    path = root / dataset_id
    found = completed_metadata(path)
    if found is not None:
        raise FileExistsError(
            f"{path} already holds a complete dataset (of {found.get('source_run')} at step "
            f"{found.get('steps')}); delete it or choose another out_dir"
        )
    if not len(replay.rewards):
        raise ValueError(f"{replay.checkpoint} holds no transitions yet (step 0): train first")

    with task.make() as env:
        length = _episode_length(task, env)
        env.spec = EnvSpec(  # recover_environment() rebuilds the task's own env from it
            id=f"memrl/{_ENV_ID_PREFIX[domain]}-{task.name}-v0",
            entry_point=task.entry_point,
            kwargs=dict(task.kwargs),
            max_episode_steps=length,
        )
        interleaved = make_method(replay.config, stream).interleaves_tasks  # no stage ends
        stage_ends = [] if interleaved else [s.end for s in stream.timeline.stages[:-1]]
        spans = episode_spans(
            replay.first_step, replay.stop_step, length, stage_ends, replay.terminated
        )
        _check_spans(replay, spans, length)
        episodes = _episodes(replay, spans, env)
        if path.exists():
            remove_partial_dataset(path)
        finished = replay.global_step >= stream.timeline.total_steps
        state = "a finished" if finished else "an unfinished"
        return write_dataset(
            root,
            dataset_id,
            episodes,
            env,
            algorithm_name="memrl continual SAC (Continual World's recipe) on one task: its "
            "whole replay buffer",
            description=(
                f"{task.name}: every transition in the replay buffer of {state} single-task SAC "
                f"run after {replay.global_step:,} env steps, in the order played, from uniformly "
                "random actions to the trained policy; the run's evaluations are in "
                "metadata['memrl']['evaluations']"
            ),
            requirements=[package_requirement(name) for name in _REQUIREMENTS[domain]],
            memrl_metadata={
                "task": task.name,
                "domain": domain,
                "split": task.split,
                "source": "sac-replay",
                "source_run": str(Path(run_dir).absolute()),
                "checkpoint": replay.checkpoint.name,
                "config": asdict(replay.config),
                "steps": replay.global_step,
                "total_steps": stream.timeline.total_steps,
                "finished": finished,
                "transitions": len(replay.rewards),
                "episodes": len(episodes),
                "episode_length": length,
                "buffer_capacity": replay.capacity,
                "overwritten": replay.first_step,
                "evaluations": _evaluation_summary(replay.evaluations, task.name),
            },
        )
