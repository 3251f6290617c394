"""Meta-World's scripted experts under memrl's Meta-World protocol, at several levels of quality.

Meta-World 3.1.1 ships a scripted policy for each of its 50 v3 tasks (``metaworld.policies``,
``ENV_POLICY_MAP``). Here they act in memrl's protocol environment
(:class:`~memrl.streams.metaworld_protocol.MetaWorldTaskEnv`: 200-step episodes, positions
re-sampled at every reset from the env's seeded generator, success if ``info["success"]`` is
ever 1). L2M's data were replay buffers of single-task SAC agents, a spread of quality; the spread
here comes from :class:`QualityLevel`:

- ``expert``: the scripted action, clipped to the action space ``[-1, 1]``;
- ``noise-<std>``: the clipped scripted action plus Gaussian noise of that standard deviation
  per dimension, clipped again;
- ``random``: actions uniform in ``[-1, 1]``.

The stored action is the one the environment applied (after clipping). Every episode starts from
``reset(seed=s)`` with its own seed, so any episode can be replayed from its seed and actions.
Seeds derive from the run's seed and the task's place in MT50, so a task's episodes do not depend
on which other tasks are collected with it.

:func:`scripted_success` measures the experts (the table in ``docs/metaworld_experts.json``);
:func:`collect_task_episodes` collects one task's episodes for a dataset.

Meta-World is imported when episodes run, not when this module is imported.
"""

from __future__ import annotations

import difflib
import math
import operator
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memrl.data.episodes import Episode
from memrl.envs.metaworld import EPISODE_LENGTH
from memrl.streams.catalogue import CW10, MT40, MT50, get_task

METAWORLD_LISTS: dict[str, tuple[str, ...]] = {"MT50": MT50, "MT40": MT40, "CW10": CW10}
"""Named lists of Meta-World tasks that :func:`resolve_metaworld_tasks` accepts."""

WEAK_EXPERT_THRESHOLD = 0.8
"""A scripted expert whose noise-free success is below this is called weak."""

_MOVE_WARNING = r"Constant\(s\) may be too high"
"""Meta-World's policies warn on every step whose raw action leaves [-1, 1]; the env clips it."""


@dataclass(frozen=True)
class QualityLevel:
    """How the actions of an episode are chosen.

    Attributes:
        noise_std: Standard deviation of the Gaussian noise added to the scripted action
            (0 for the expert itself); None for uniformly random actions.
    """

    noise_std: float | None

    @property
    def name(self) -> str:
        """``"expert"``, ``"noise-<std>"`` or ``"random"``."""
        if self.noise_std is None:
            return "random"
        return "expert" if self.noise_std == 0 else f"noise-{self.noise_std:g}"

    @property
    def policy(self) -> str:
        """``"scripted"`` or ``"random"``."""
        return "random" if self.noise_std is None else "scripted"

    def act(self, expert: Any, observation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The action of this level for ``observation``, in ``[-1, 1]``, float32.

        Args:
            expert: The task's scripted policy (``get_action(observation)``).
            observation: The current observation.
            rng: The episode's generator for noise and random actions.
        """
        if self.noise_std is None:
            return rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        action = np.clip(expert.get_action(observation), -1.0, 1.0)
        if self.noise_std > 0:
            action = np.clip(action + self.noise_std * rng.standard_normal(4), -1.0, 1.0)
        return action.astype(np.float32)


def resolve_metaworld_tasks(tasks: str | Iterable[str]) -> tuple[str, ...]:
    """Meta-World v3 task names from list names and task names.

    Args:
        tasks: ``"MT50"``, ``"MT40"``, ``"CW10"``, one task name (``"hammer-v3"``), or a sequence
            of these (a list name stands for its tasks). A task named twice is kept once.

    Returns:
        The task names, in the order given.

    Raises:
        ValueError: An unknown name (the message lists the allowed ones), or no task at all.
    """
    items = [tasks] if isinstance(tasks, str) else list(tasks)
    names: list[str] = []
    for item in items:
        if item in METAWORLD_LISTS:
            names.extend(METAWORLD_LISTS[item])
        elif item in MT50:
            names.append(item)
        else:
            close = difflib.get_close_matches(str(item), [*METAWORLD_LISTS, *MT50], n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise ValueError(
                f"unknown Meta-World task {item!r}.{hint} Allowed: the lists "
                f"{list(METAWORLD_LISTS)} or the v3 task names {list(MT50)}"
            )
    if not names:
        raise ValueError("tasks must name at least one Meta-World task, got none")
    return tuple(dict.fromkeys(names))


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int, or a ValueError naming ``name`` if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return operator.index(value)


def check_noise_levels(noise_levels: Iterable[float]) -> tuple[float, ...]:
    """The noise standard deviations as floats, or a ValueError if one is not finite and >= 0."""
    levels: list[float] = []
    for value in noise_levels:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.number)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"noise_levels must be finite numbers >= 0 (0 is the expert), got {value!r}"
            )
        levels.append(float(value))
    if len(set(levels)) != len(levels):
        raise ValueError(f"noise_levels must be distinct, got {levels}")
    return tuple(levels)


def episode_plan(
    episodes: int, noise_levels: Sequence[float], random_fraction: float
) -> list[QualityLevel]:
    """The quality level of each of a task's episodes.

    ``round(random_fraction * episodes)`` episodes (halves round up) are random; the rest are
    shared among ``noise_levels`` as evenly as possible (the first levels get one more), in
    blocks: the levels' episodes in the order of ``noise_levels``, then the random ones.

    Args:
        episodes: Episodes of the task (>= 1).
        noise_levels: Noise standard deviations of the scripted episodes (0 = expert).
        random_fraction: Fraction of random episodes, in ``[0, 1]``.

    Raises:
        ValueError: Bad arguments (the message names the argument and the value).
    """
    episodes = check_positive_int("episodes_per_task", episodes)
    levels = check_noise_levels(noise_levels)
    if (
        isinstance(random_fraction, bool)
        or not isinstance(random_fraction, int | float | np.number)
        or not 0 <= random_fraction <= 1
    ):
        raise ValueError(f"random_fraction must be a number in [0, 1], got {random_fraction!r}")
    random_count = math.floor(random_fraction * episodes + 0.5)
    scripted_count = episodes - random_count
    if scripted_count and not levels:
        raise ValueError(
            "noise_levels must hold at least one level (0 is the expert) unless "
            f"random_fraction is 1, got noise_levels=[] and random_fraction={random_fraction}"
        )
    plan: list[QualityLevel] = []
    for index, noise_std in enumerate(levels):
        count = scripted_count // len(levels) + (index < scripted_count % len(levels))
        plan.extend([QualityLevel(noise_std)] * count)
    plan.extend([QualityLevel(None)] * random_count)
    return plan


def episode_seeds(task: str, seed: int, count: int) -> list[tuple[int, np.random.Generator]]:
    """For each of ``count`` episodes of ``task``: its reset seed and its action generator.

    Both derive from ``seed`` and the task's index in MT50 only (``numpy.random.SeedSequence``),
    so they do not depend on the other tasks of a run.
    """
    root = np.random.SeedSequence(seed, spawn_key=(MT50.index(task),))
    seeds = []
    for child in root.spawn(count):
        reset_sequence, action_sequence = child.spawn(2)
        seeds.append(
            (int(reset_sequence.generate_state(1)[0]), np.random.default_rng(action_sequence))
        )
    return seeds


def run_episode(
    env: Any,
    expert: Any,
    level: QualityLevel,
    reset_seed: int,
    rng: np.random.Generator,
    *,
    stop_at_success: bool = False,
) -> Episode:
    """One episode of ``level`` in a Meta-World protocol env.

    Args:
        env: A :class:`~memrl.streams.metaworld_protocol.MetaWorldTaskEnv`.
        expert: The task's scripted policy.
        level: How actions are chosen.
        reset_seed: The episode starts from ``env.reset(seed=reset_seed)``.
        rng: The episode's generator for noise and random actions.
        stop_at_success: End the episode at its first success (the outcome is then known: success
            is "ever 1"); for measuring success quickly, not for datasets.

    Returns:
        The episode; ``metadata`` holds ``policy``, ``noise_std`` (scripted episodes) and
        ``success``; ``infos["success"]`` is Meta-World's per-step flag (False at reset).
    """
    length = env.episode_length
    observation, _ = env.reset(seed=reset_seed)
    observations = np.empty((length + 1, *observation.shape), dtype=observation.dtype)
    actions = np.empty((length, 4), dtype=np.float32)
    rewards = np.empty(length, dtype=np.float64)
    success = np.zeros(length + 1, dtype=bool)
    observations[0] = observation
    steps, truncated = 0, False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MOVE_WARNING, category=UserWarning)
        while not truncated:
            action = level.act(expert, observation, rng)
            observation, reward, _, truncated, info = env.step(action)
            actions[steps], rewards[steps] = action, reward
            observations[steps + 1] = observation
            success[steps + 1] = bool(info["success"])
            steps += 1
            if stop_at_success and success[steps]:
                break
    metadata: dict[str, Any] = {"policy": level.policy, "success": bool(success.any())}
    if level.noise_std is not None:
        metadata["noise_std"] = level.noise_std
    return Episode(
        observations=observations[: steps + 1],
        actions=actions[:steps],
        rewards=rewards[:steps],
        terminations=np.zeros(steps, dtype=bool),
        truncations=np.arange(1, steps + 1) == length,
        infos={"success": success[: steps + 1]},
        seed=reset_seed,
        metadata=metadata,
    )


def collect_task_episodes(
    env: Any,
    plan: Sequence[QualityLevel],
    seed: int,
    *,
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Collect one task's episodes, one per entry of ``plan`` (see :func:`episode_plan`).

    Args:
        env: The task's :class:`~memrl.streams.metaworld_protocol.MetaWorldTaskEnv` (its
            ``episode_length`` is the episodes' length).
        plan: The quality level of each episode.
        seed: The run's seed (episode ``i`` uses :func:`episode_seeds` entry ``i``).
        on_episode: Called with each finished episode (e.g. to advance a progress bar).

    Returns:
        The episodes, full length, in the order of ``plan``.
    """
    from metaworld.policies import ENV_POLICY_MAP

    expert = ENV_POLICY_MAP[env.task]()  # type: ignore[abstract]
    episodes = []
    for level, (reset_seed, rng) in zip(
        plan, episode_seeds(env.task, seed, len(plan)), strict=True
    ):
        episode = run_episode(env, expert, level, reset_seed, rng)
        episodes.append(episode)
        if on_episode is not None:
            on_episode(episode)
    return episodes


def scripted_success(
    tasks: str | Iterable[str],
    episodes: int = 20,
    noise_levels: Iterable[float] = (0.0,),
    *,
    include_random: bool = False,
    seed: int = 0,
    episode_length: int = EPISODE_LENGTH,
    progress: bool = False,
) -> dict[str, Any]:
    """Success of Meta-World's scripted experts under memrl's protocol, per task and noise level.

    Every level of a task plays the same ``episodes`` layouts (the same reset seeds), so the
    levels differ by their actions only. An episode stops at its first success (its outcome is
    then decided), so experts are cheap to measure.

    Args:
        tasks: Meta-World tasks or lists (see :func:`resolve_metaworld_tasks`).
        episodes: Episodes per task and level.
        noise_levels: Noise standard deviations to measure (0 = the expert itself).
        include_random: Also measure uniformly random actions.
        seed: Seed of the layouts and the noise.
        episode_length: Steps per episode (memrl's protocol: 200).
        progress: Show a progress bar over episodes.

    Returns:
        A JSON-ready dict: the settings, ``success`` (task -> level name -> success rate),
        ``weak_tasks`` (noise-free success below :data:`WEAK_EXPERT_THRESHOLD`; empty unless
        0 is a noise level), ``env_steps`` and ``seconds`` (stepping time, env construction
        excluded).

    Raises:
        ValueError: Bad arguments (an unknown task, a negative noise level, ...).
    """
    from metaworld.policies import ENV_POLICY_MAP
    from tqdm import tqdm

    names = resolve_metaworld_tasks(tasks)
    episodes = check_positive_int("episodes", episodes)
    episode_length = check_positive_int("episode_length", episode_length)
    levels = [QualityLevel(noise) for noise in check_noise_levels(noise_levels)]
    if include_random:
        levels.append(QualityLevel(None))
    if not levels:
        raise ValueError("noise_levels must hold a level unless include_random is True, got []")
    success: dict[str, dict[str, float]] = {}
    env_steps, seconds = 0, 0.0
    bar = tqdm(total=len(names) * len(levels) * episodes, unit="episode", disable=not progress)
    for task in names:
        bar.set_postfix_str(task)
        env = get_task(task).make(episode_length=episode_length)
        expert = ENV_POLICY_MAP[task]()  # type: ignore[abstract]
        success[task] = {}
        for level in levels:
            outcomes = []
            for reset_seed, rng in episode_seeds(task, seed, episodes):
                start = time.perf_counter()
                episode = run_episode(env, expert, level, reset_seed, rng, stop_at_success=True)
                seconds += time.perf_counter() - start
                env_steps += len(episode)
                outcomes.append(episode.metadata["success"])
                bar.update()
            success[task][level.name] = float(np.mean(outcomes))
        env.close()
    bar.close()
    weak = [t for t in names if success[t].get("expert", 1.0) < WEAK_EXPERT_THRESHOLD]
    return {
        "episodes": episodes,
        "noise_levels": [level.noise_std for level in levels if level.noise_std is not None],
        "include_random": include_random,
        "seed": seed,
        "episode_length": episode_length,
        "success": success,
        "weak_tasks": weak,
        "env_steps": env_steps,
        "seconds": round(seconds, 3),
    }
