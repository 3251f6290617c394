"""Online evaluation of a multi-domain Decision Transformer: play every task in its real env.

For each task, ``episodes`` envs are built from memrl's catalogue
(``memrl.streams.catalogue.get_task(name).make()``: Meta-World under the Continual World
protocol, 200 steps, success if ``info["success"]`` is ever 1; dm_control tasks, 1,000 steps,
scored by their return) and stepped together: one batched model forward per step gives every
episode's action (:func:`~memrl.agents.pretrained.inference.predict_action`), then each env
steps in a loop.

Return conditioning: every episode starts with the task's *target return*, the best episode
return in the task's pretraining data divided by the domain's reward scale
(:attr:`~memrl.agents.pretrained.tasks.PretrainTask.target_return`); after every step the
return-to-go falls by the scaled reward. The best return of the data asks for the best the data
shows, without asking for more than the model has seen (L2M asks for a fixed return above any
episode's, 20,000 for Meta-World).

Deterministic under ``seed``: episode ``i`` of a task resets its env with a seed drawn from
``(seed, task name)``, so a task's episodes do not depend on which other tasks are evaluated;
actions are the argmax bins (or sampled from a generator seeded by ``seed``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from memrl.agents.pretrained.inference import RollingContext, predict_action
from memrl.agents.pretrained.inputs import Modulation
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.pretrained.tasks import PretrainTask

SUCCESS_DOMAINS: tuple[str, ...] = ("metaworld",)
"""Domains whose envs define success (``info["is_success"]`` at an episode's end); the others
are scored by return alone (dm_control defines no success)."""

Modulate = Callable[[torch.Tensor], Modulation]
"""Maps the pool query ``[B, embed_dim]`` to a :class:`Modulation` (an L2M pool, an oracle)."""


@dataclass(frozen=True)
class TaskEvaluation:
    """One task's evaluation episodes.

    Attributes:
        task: The task's name.
        domain: Its domain.
        returns: Every episode's return, unscaled (the env's own rewards).
        successes: Every episode's success, or None where the domain defines none.
        target_return: The scaled return-to-go every episode started with.
    """

    task: str
    domain: str
    returns: tuple[float, ...]
    successes: tuple[bool, ...] | None
    target_return: float

    @property
    def success_rate(self) -> float | None:
        """The share of successful episodes, or None where the domain defines no success."""
        return None if self.successes is None else float(np.mean(self.successes))

    @property
    def mean_return(self) -> float:
        """The mean episode return, unscaled."""
        return float(np.mean(self.returns))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields plus ``success_rate`` and ``mean_return``."""
        return {
            "task": self.task,
            "domain": self.domain,
            "episodes": len(self.returns),
            "success_rate": self.success_rate,
            "mean_return": self.mean_return,
            "returns": list(self.returns),
            "successes": None if self.successes is None else list(self.successes),
            "target_return": self.target_return,
        }


def check_playable(tasks: Sequence[PretrainTask]) -> None:
    """Raise ValueError naming the tasks that memrl's catalogue cannot build an env for."""
    from memrl.streams.catalogue import CATALOGUE

    unknown = [task.name for task in tasks if task.name not in CATALOGUE]
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not in memrl's task catalogue, so they cannot be played "
            "online; evaluate with 0 episodes or train without them"
        )


def episode_seeds(task: str, episodes: int, seed: int) -> list[int]:
    """The reset seeds of a task's evaluation episodes, from ``(seed, task)`` alone."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(task.encode())])
    return [int(s) for s in sequence.generate_state(episodes)]


def _checked_width(space: Any, expected: int, what: str, task: PretrainTask) -> None:
    shape = getattr(space, "shape", None)
    if shape != (expected,):
        raise ValueError(
            f"{task.name}: the env's {what} space has shape {shape}, the model was trained on "
            f"{what}s of width {expected}"
        )


@torch.no_grad()
def evaluate_task(
    model: MultiDomainDecisionTransformer,
    task: PretrainTask,
    episodes: int,
    seed: int,
    *,
    deterministic: bool = True,
    modulate: Modulate | None = None,
) -> TaskEvaluation:
    """Play ``episodes`` episodes of one task in parallel envs; one model forward per step.

    Args:
        model: The model (put it in ``eval()`` mode first).
        task: The task (its name builds the env; its target return conditions the model).
        episodes: Parallel episodes.
        seed: Seed of the episodes' layouts (and of sampled actions).
        deterministic: Argmax action bins (True) or sampled bins.
        modulate: How the model is modulated for this task (an L2M pool, an oracle adapter);
            None: unmodulated.

    Returns:
        The episodes' returns (and successes, for Meta-World).

    Raises:
        ValueError: ``episodes`` < 1, or the env's spaces do not match the task's widths.
    """
    from memrl.streams.catalogue import get_task

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    seeds = episode_seeds(task.name, episodes, seed)
    envs = [get_task(task.name).make() for _ in seeds]
    try:
        _checked_width(envs[0].observation_space, task.state_dim, "observation", task)
        _checked_width(envs[0].action_space, task.action_dim, "action", task)
        observations = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)])
        context = RollingContext(episodes, task.action_dim, model.config, task.domain)
        context.start(range(episodes), observations, task.target_return)
        generator = torch.Generator().manual_seed(seed)
        returns = np.zeros(episodes)
        successes = np.zeros(episodes, dtype=bool)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            chosen = predict_action(model, context.context(), deterministic, generator, modulate)
            actions = chosen.numpy()  # [episodes, task.action_dim]
            rewards = np.zeros(episodes)
            for i in np.flatnonzero(running):
                observation, reward, terminated, truncated, info = envs[i].step(actions[i])
                observations[i] = observation
                rewards[i] = reward
                if terminated or truncated:
                    running[i] = False
                    successes[i] = bool(info.get("is_success", False))
            returns += rewards
            context.record(actions, rewards / task.reward_scale, observations)
    finally:
        for env in envs:
            env.close()
    return TaskEvaluation(
        task=task.name,
        domain=task.domain,
        returns=tuple(float(r) for r in returns),
        successes=tuple(bool(s) for s in successes) if task.domain in SUCCESS_DOMAINS else None,
        target_return=task.target_return,
    )


def evaluate_model(
    model: MultiDomainDecisionTransformer,
    tasks: Sequence[PretrainTask],
    episodes: int,
    seed: int,
    *,
    deterministic: bool = True,
    modulate_for: Callable[[PretrainTask], Modulate | None] | None = None,
    progress: bool = False,
) -> dict[str, TaskEvaluation]:
    """Evaluate every task (:func:`evaluate_task`), in the order given.

    Args:
        model: The model; it is put in ``eval()`` mode for the evaluation and back after.
        tasks: The tasks (a model's task table).
        episodes: Episodes per task.
        seed: Seed of the evaluation.
        deterministic: Argmax action bins (True) or sampled bins.
        modulate_for: The modulation of each task (e.g. an oracle picking the task's adapter),
            or None for the unmodulated model.
        progress: Show a progress bar over tasks.

    Returns:
        Task name -> its evaluation.

    Raises:
        ValueError: A task memrl's catalogue cannot build (see :func:`check_playable`).
    """
    check_playable(tasks)
    was_training = model.training
    model.eval()
    results: dict[str, TaskEvaluation] = {}
    try:
        for task in tqdm(tasks, desc="evaluate", unit="task", disable=not progress):
            modulate = modulate_for(task) if modulate_for is not None else None
            results[task.name] = evaluate_task(
                model, task, episodes, seed, deterministic=deterministic, modulate=modulate
            )
    finally:
        model.train(was_training)
    return results


def summary(results: Mapping[str, TaskEvaluation]) -> dict[str, float]:
    """Namespaced scalars of an evaluation, for the run's log.

    ``eval/success_rate`` (mean over the tasks that define success), ``eval/mean_return/<domain>``
    and every task's ``eval/success_rate/<task>`` and ``eval/return/<task>``.
    """
    scalars: dict[str, float] = {}
    rates = [r.success_rate for r in results.values() if r.success_rate is not None]
    if rates:
        scalars["eval/success_rate"] = float(np.mean(rates))
    for domain in sorted({r.domain for r in results.values()}):
        domain_returns = [r.mean_return for r in results.values() if r.domain == domain]
        scalars[f"eval/mean_return/{domain}"] = float(np.mean(domain_returns))
    for name, result in results.items():
        if result.success_rate is not None:
            scalars[f"eval/success_rate/{name}"] = result.success_rate
        scalars[f"eval/return/{name}"] = result.mean_return
    return scalars


def results_table(results: Mapping[str, TaskEvaluation]) -> str:
    """A Markdown table: one row per task (success, mean return, episodes, target return)."""
    lines = [
        "| task | domain | episodes | success | mean return | target return (scaled) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for result in results.values():
        rate = "-" if result.success_rate is None else f"{result.success_rate:.2f}"
        lines.append(
            f"| {result.task} | {result.domain} | {len(result.returns)} | {rate} | "
            f"{result.mean_return:.1f} | {result.target_return:.2f} |"
        )
    return "\n".join(lines)
