"""Time to learn: the wall-clock seconds of training until an agent's success reaches a level.

What a user feels when they train a memory agent: not steps per second, but how long until it
works. Each (agent, seed) trains from scratch on ``env_id`` in a temporary run directory with
one torch thread; the clock starts before the trainer is built (its envs included) and stops
after the first update (memory PPO) or rollout (SB3) at which the success over the last 100
finished training episodes (:data:`memrl.agents.ppo.RECENT_EPISODES`, as many as SB3's success
buffer keeps) is at least ``threshold``. A run that does not get there within ``max_steps`` env
steps is reported as not reached, with its time and its success at the end.

memrl's memory PPO runs at its defaults (``PPOConfig``) with the agent's core options and any
``ppo`` overrides; SB3's agents (``sb3-recurrent-ppo``) at SB3's defaults (``SB3Config``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memrl.bench.training import AgentSpec, bench_config

DEFAULT_ENV = "memrl/DelayedMatch-Easy-v0"
DEFAULT_AGENTS: tuple[AgentSpec, ...] = (
    ("hcam", {"num_layers": 2, "width": 64}),  # 2 layers of width 64, chunks of 32
    ("lstm", {}),
    ("sb3-recurrent-ppo", {}),
)


@dataclasses.dataclass(frozen=True)
class TimeToLearn:
    """One run of :func:`time_to_success`.

    Attributes:
        agent: The agent's name (``memrl train --agent``).
        core_kwargs: Its core options.
        seed: The run's seed.
        reached: Whether the success level was reached within the budget.
        seconds: Wall time until it was (or until the budget ran out).
        steps: Env steps trained until then.
        success: Success over the last 100 training episodes at that point.
    """

    agent: str
    core_kwargs: dict[str, Any]
    seed: int
    reached: bool
    seconds: float
    steps: int
    success: float


def _rate(wins: Sequence[bool], window: int) -> float:
    """Success over the last ``window`` episodes; NaN until there are that many."""
    return float(np.mean(wins)) if len(wins) >= window else float("nan")


def time_to_success(
    agent: AgentSpec,
    seed: int,
    env_id: str = DEFAULT_ENV,
    threshold: float = 0.9,
    max_steps: int = 300_000,
    ppo: dict[str, Any] | None = None,
) -> TimeToLearn:
    """Train ``agent`` until its training success reaches ``threshold``; see the module docstring.

    Args:
        agent: ``(name, core_kwargs)``: a memory-PPO core or ``sb3-<algorithm>``.
        seed: The run's seed.
        env_id: The env to train on.
        threshold: The success level, over the last 100 training episodes.
        max_steps: The budget in env steps.
        ppo: Memory-PPO settings that replace the defaults (ignored for SB3 agents).
    """
    from memrl.agents.ppo import RECENT_EPISODES

    name, core_kwargs = agent
    config = bench_config(agent, env_id, max_steps, seed, threads=1, ppo=ppo)
    with tempfile.TemporaryDirectory(prefix="memrl-bench-") as run_dir:
        start = time.perf_counter()
        if name.startswith("sb3-"):
            steps, wins = _train_sb3(config, threshold, run_dir)
        else:
            steps, wins = _train_ppo(config, threshold, run_dir)
        seconds = time.perf_counter() - start
    success = _rate(wins, RECENT_EPISODES)
    return TimeToLearn(
        agent=name,
        core_kwargs=dict(core_kwargs),
        seed=seed,
        reached=bool(success >= threshold),
        seconds=seconds,
        steps=steps,
        success=success,
    )


def _train_ppo(config: Any, threshold: float, run_dir: str) -> tuple[int, list[bool]]:
    """Memory PPO until the success level or the budget; returns (env steps, recent wins)."""
    from memrl.agents.ppo import RECENT_EPISODES, PPOTrainer

    trainer = PPOTrainer(config, run_dir, progress=False)

    def reached() -> bool:
        return _rate(trainer.recent_wins, RECENT_EPISODES) >= threshold

    trainer.train(stop=reached)
    return trainer.global_step, list(trainer.recent_wins)


def _train_sb3(config: Any, threshold: float, run_dir: str) -> tuple[int, list[bool]]:
    """An SB3 agent until the success level or the budget; returns (env steps, recent wins)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from memrl.agents.ppo import RECENT_EPISODES
    from memrl.agents.sb3_baselines import train_sb3

    class StopAtSuccess(BaseCallback):
        """Stops ``learn`` after the rollout at which SB3's success buffer reaches the level."""

        def __init__(self) -> None:
            super().__init__()
            self.done = False
            self.wins: list[bool] = []

        def _on_step(self) -> bool:
            return not self.done

        def _on_rollout_end(self) -> None:
            self.wins = [bool(w) for w in self.model.ep_success_buffer]
            self.done = _rate(self.wins, RECENT_EPISODES) >= threshold

    stopper = StopAtSuccess()
    run = train_sb3(config, run_dir, progress=False, callbacks=[stopper])
    return run.steps, stopper.wins


def bench_learning(
    agents: Sequence[AgentSpec] = DEFAULT_AGENTS,
    seeds: Sequence[int] = (0, 1, 2),
    env_id: str = DEFAULT_ENV,
    threshold: float = 0.9,
    max_steps: int = 300_000,
    ppo: dict[str, Any] | None = None,
    progress: Callable[[TimeToLearn], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`time_to_success` for every agent and seed, one after another; rows as dicts."""
    rows = []
    for agent in agents:
        for seed in seeds:
            result = time_to_success(agent, seed, env_id, threshold, max_steps, ppo)
            if progress is not None:
                progress(result)
            rows.append(dataclasses.asdict(result))
    return rows


def summarize_runs(runs: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """Seconds per run (``*`` where the level was not reached) with their median, and env steps.

    Args:
        runs: Rows of :func:`bench_learning` (one agent's, in seed order).

    Returns:
        E.g. ``("20, 21, 300* (median 21)", "41k, 41k, 300k")``.
    """
    seconds = ", ".join(f"{r['seconds']:.0f}" + ("" if r["reached"] else "*") for r in runs)
    median = np.median([r["seconds"] for r in runs])
    steps = ", ".join(f"{r['steps'] / 1000:.0f}k" for r in runs)
    return f"{seconds} (median {median:.0f})", steps


def format_learning_table(rows: Sequence[dict[str, Any]], threshold: float = 0.9) -> str:
    """One line per agent: seconds and env steps to the level per seed, and their median."""
    lines = [f"{'agent':<34} {'seconds to ' + format(threshold, 'g'):>28}  {'env steps':>26}"]
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        label = row["agent"] + (f" {row['core_kwargs']}" if row["core_kwargs"] else "")
        by_agent.setdefault(label, []).append(row)
    for label, runs in by_agent.items():
        seconds, steps = summarize_runs(runs)
        lines.append(f"{label:<34} {seconds:>28}  {steps:>26}")
    if not all(r["reached"] for r in rows):
        lines.append("* not reached within the budget: the time the budget took")
    return "\n".join(lines)
