"""Collect Meta-World scripted-expert trajectories into Minari datasets, one dataset per task.

``collect_metaworld(["MT40", "CW10"], out_dir)`` writes, for every task, the Minari dataset
``memrl/metaworld/<task>/scripted-v0`` under ``out_dir`` (see :mod:`memrl.data.minari_io`):
``episodes_per_task`` full 200-step episodes of memrl's Meta-World protocol, a spread of quality
(:mod:`memrl.data.metaworld_experts`), with the per-level success of what was collected in the
dataset's metadata. Load one with ``memrl.data.load_episodes(path)`` or, with
``MINARI_DATASETS_PATH=<out_dir>``,
``minari.load_dataset("memrl/metaworld/hammer-v3/scripted-v0")``.

Defaults (the spread and why, the cost here; measured in ``docs/metaworld_experts.json``): the
scripted experts succeed in 97% of episodes on average over MT50, so the spread comes from
Gaussian action noise. On average noise of standard deviation 0.1 succeeds in 96%, 0.3 in 89%,
0.5 in 77%, 1.0 in 51%, and random actions (10% of the episodes) in 1%: a spread from expert to
random, as in L2M's data, replay buffers of single-task SAC agents that run from random actions
to a trained policy. 100 episodes per task is 20,000 steps per task, 1M steps for MT50: about
27 minutes at the 620 steps/s measured here (one process on a shared 2-core machine) and about
450 MB on disk (float64 observations).

A run resumes at task granularity: a task whose complete dataset is on disk with the same
settings is skipped, a half-written one (a run killed while writing it) is deleted and redone, and
a complete one with other settings is an error (delete it or choose another directory).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memrl.data.episodes import Episode
from memrl.data.metaworld_experts import (
    QualityLevel,
    check_noise_levels,
    check_positive_int,
    collect_task_episodes,
    episode_plan,
    resolve_metaworld_tasks,
)
from memrl.data.minari_io import (
    DATA_FORMAT_VERSION,
    completed_metadata,
    package_requirement,
    remove_partial_dataset,
    write_dataset,
)
from memrl.envs.metaworld import EPISODE_LENGTH
from memrl.streams.catalogue import get_task

DEFAULT_EPISODES_PER_TASK = 100
"""Episodes per task: 20,000 steps per task, 1M for all 50 tasks (see the module docstring)."""

DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 1.0)
"""Standard deviations of the Gaussian action noise of the scripted episodes (0 = expert)."""

DEFAULT_RANDOM_FRACTION = 0.1
"""Fraction of each task's episodes with uniformly random actions."""

DATASET_NAME = "scripted-v0"
"""Minari's dataset name and version of memrl's scripted-expert data for a task."""


def metaworld_dataset_id(task: str) -> str:
    """Minari's id of a task's scripted dataset: ``memrl/metaworld/<task>/scripted-v0``."""
    return f"memrl/metaworld/{task}/{DATASET_NAME}"


def _env_spec(task: str, episode_length: int) -> Any:
    """A Gymnasium spec that rebuilds the task's protocol env (``recover_environment()``)."""
    from gymnasium.envs.registration import EnvSpec

    catalogue_task = get_task(task)
    return EnvSpec(
        id=f"memrl/MetaWorld-{task}-v0",
        entry_point=catalogue_task.entry_point,
        kwargs={**catalogue_task.kwargs, "episode_length": episode_length},
        max_episode_steps=episode_length,
    )


def _level_summary(plan: list[QualityLevel], successes: list[bool]) -> list[dict[str, Any]]:
    """Per quality level, in plan order: policy, noise, episode count and success rate."""
    outcomes: dict[QualityLevel, list[bool]] = {}
    for level, success in zip(plan, successes, strict=True):
        outcomes.setdefault(level, []).append(success)
    return [
        {
            "quality": level.name,
            "policy": level.policy,
            "noise_std": level.noise_std,
            "episodes": len(level_outcomes),
            "success": float(np.mean(level_outcomes)),
        }
        for level, level_outcomes in outcomes.items()
    ]


def _differences(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``key: found -> wanted`` for every setting that differs."""
    return [
        f"{key}: {found.get(key)!r} -> {wanted.get(key)!r}"
        for key in sorted(set(found) | set(wanted))
        if found.get(key) != wanted.get(key)
    ]


def _collect_task(
    task: str,
    out_dir: Path,
    plan: list[QualityLevel],
    settings: Mapping[str, Any],
    on_episode: Callable[[Episode], None],
) -> None:
    """Collect one task's episodes and write its dataset under ``out_dir``."""
    episode_length = settings["episode_length"]
    with get_task(task).make(episode_length=episode_length) as env:
        env.spec = _env_spec(task, episode_length)  # as gymnasium.make sets it
        episodes = collect_task_episodes(env, plan, settings["seed"], on_episode=on_episode)
        successes = [bool(episode.metadata["success"]) for episode in episodes]
        write_dataset(
            out_dir,
            metaworld_dataset_id(task),
            episodes,
            env,
            algorithm_name="Meta-World scripted policies (metaworld.policies) with Gaussian "
            "action noise, and random actions",
            description=(
                f"{task} under memrl's Meta-World protocol (Continual World's: {episode_length}-"
                "step episodes, positions re-sampled at every reset): scripted-expert episodes at "
                "several action-noise levels plus random episodes; per-level success in "
                "metadata['memrl']['quality_levels']"
            ),
            requirements=[package_requirement("metaworld"), package_requirement("mujoco")],
            memrl_metadata={
                "task": task,
                "domain": "metaworld",
                "split": get_task(task).split,
                "source": "scripted",
                "settings": dict(settings),
                "success": float(np.mean(successes)),
                "quality_levels": _level_summary(plan, successes),
            },
        )


def collect_metaworld(
    tasks: str | Iterable[str],
    out_dir: str | os.PathLike[str],
    *,
    episodes_per_task: int = DEFAULT_EPISODES_PER_TASK,
    noise_levels: Iterable[float] = DEFAULT_NOISE_LEVELS,
    random_fraction: float = DEFAULT_RANDOM_FRACTION,
    seed: int = 0,
    episode_length: int = EPISODE_LENGTH,
    progress: bool = True,
) -> list[Path]:
    """Collect scripted-expert episodes of Meta-World tasks into Minari datasets under ``out_dir``.

    Args:
        tasks: ``"MT50"``, ``"MT40"``, ``"CW10"``, a v3 task name, or a sequence of these.
        out_dir: The datasets directory; each task's dataset goes to
            ``out_dir / memrl/metaworld/<task>/scripted-v0``. Nothing is written elsewhere.
        episodes_per_task: Episodes per task (each ``episode_length`` steps).
        noise_levels: Gaussian action-noise standard deviations of the scripted episodes
            (0 = the expert); the scripted episodes are shared among them evenly.
        random_fraction: Fraction of each task's episodes with uniformly random actions.
        seed: Seed of everything random (layouts, noise, random actions): the same arguments give
            the same datasets.
        episode_length: Steps per episode (memrl's Meta-World protocol: 200).
        progress: Show a progress bar over episodes.

    Returns:
        The dataset directories (absolute), one per task in the order of ``tasks`` (skipped ones
        included).

    Raises:
        ValueError: An unknown task (the message lists the allowed names), a bad setting, or a
            complete dataset in ``out_dir`` collected with other settings (named, with the
            differences).
    """
    from tqdm import tqdm

    names = resolve_metaworld_tasks(tasks)
    episode_length = check_positive_int("episode_length", episode_length)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    levels = check_noise_levels(noise_levels)
    plan = episode_plan(episodes_per_task, levels, random_fraction)
    settings = {
        "episodes_per_task": int(episodes_per_task),
        "noise_levels": list(levels),
        "random_fraction": float(random_fraction),
        "seed": int(seed),
        "episode_length": episode_length,
        "format_version": DATA_FORMAT_VERSION,
    }
    out_dir = Path(out_dir).absolute()
    paths = {task: out_dir / metaworld_dataset_id(task) for task in names}
    todo = []
    for task, path in paths.items():
        found = completed_metadata(path)
        if found is None:
            if path.exists():
                remove_partial_dataset(path)
            todo.append(task)
        elif found.get("settings") != settings:
            changes = "; ".join(_differences(found.get("settings") or {}, settings))
            raise ValueError(
                f"{path} already holds a complete {task} dataset collected with other settings "
                f"({changes}); delete it or choose another out_dir"
            )
    bar = tqdm(
        total=len(todo) * len(plan), unit="episode", desc="collect metaworld", disable=not progress
    )
    for task in todo:
        bar.set_postfix_str(task)
        _collect_task(task, out_dir, plan, settings, on_episode=lambda _: bar.update())
    bar.close()
    return list(paths.values())
