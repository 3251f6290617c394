"""Training throughput: env steps per second, updates included, of memory PPO per core vs SB3.

Each agent trains from scratch on the same env for ``steps`` env steps in a temporary run
directory (no TensorBoard, one checkpoint at the end); the figure is ``steps`` divided by the
wall time of ``train()``, so it includes acting, env stepping and every PPO update.
sb3-contrib's RecurrentPPO uses SB3's defaults with 8 envs and 128-step rollouts, and memrl's
memory PPO the same schedule, like for like (:func:`like_for_like`: 8 envs x 128 steps, 10
epochs of 128-step minibatches), the rest at its defaults.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from typing import Any

AgentSpec = tuple[str, dict[str, Any]]

RECURRENT_PPO_BATCH = 128
"""sb3-contrib's RecurrentPPO default ``batch_size`` (transitions per minibatch)."""


def like_for_like() -> dict[str, int]:
    """Memory-PPO options that give RecurrentPPO's default schedule (SB3Config's defaults).

    Rollouts of ``num_envs`` x ``num_steps``, ``update_epochs`` epochs, minibatches of
    :data:`RECURRENT_PPO_BATCH` transitions: one env's whole 128-step window each.
    """
    from memrl.agents.sb3_config import SB3Config

    sb3 = SB3Config()
    return {
        "num_envs": sb3.num_envs,
        "num_steps": sb3.num_steps,
        "update_epochs": sb3.update_epochs,
        "num_minibatches": sb3.num_envs * sb3.num_steps // RECURRENT_PPO_BATCH,
    }


DEFAULT_AGENTS: tuple[AgentSpec, ...] = (
    ("none", {}),
    ("lstm", {}),
    ("gru", {}),
    ("transformer", {}),
    ("hcam", {}),
    ("hcam", {"num_layers": 2, "width": 64}),
    ("sb3-recurrent-ppo", {}),
)


BENCH_SET = frozenset({"env_id", "total_steps", "seed", "threads", "tensorboard",
                       "checkpoint_every", "core", "core_kwargs"})  # fmt: skip
"""PPOConfig fields :func:`bench_config` sets itself: its ``ppo`` settings cannot change them."""


def bench_config(
    agent: AgentSpec,
    env_id: str,
    steps: int,
    seed: int,
    threads: int = 0,
    ppo: dict[str, Any] | None = None,
) -> Any:
    """The config of a bench run: no TensorBoard, no checkpoint but the final one.

    Args:
        agent: ``(name, core_kwargs)``: a memory-PPO core or ``sb3-<algorithm>``.
        env_id: The env to train on.
        steps: Env steps to train for.
        seed: The run's seed.
        threads: Torch threads (0: torch's default).
        ppo: Memory-PPO settings over the defaults (not for SB3 agents, which run at theirs).

    Returns:
        An ``SB3Config`` for SB3 agents, else a ``PPOConfig``.
    """
    name, core_kwargs = agent
    common = dict(env_id=env_id, total_steps=steps, seed=seed, threads=threads,
                  tensorboard=False, checkpoint_every=10**9)  # fmt: skip
    if name.startswith("sb3-"):
        from memrl.agents.sb3_config import SB3Config

        return SB3Config(algorithm=name.removeprefix("sb3-"), **common)
    from memrl.agents.ppo_config import PPOConfig

    config = {**(ppo or {}), **common, "core": name, "core_kwargs": dict(core_kwargs)}
    assert set(config) - set(ppo or {}) <= BENCH_SET
    return PPOConfig(**config)


def training_throughput(env_id: str, agent: AgentSpec, steps: int, seed: int = 0) -> float:
    """Env steps per second of training ``agent`` on ``env_id`` for ``steps`` steps."""
    config = bench_config(agent, env_id, steps, seed, ppo=like_for_like())
    with tempfile.TemporaryDirectory(prefix="memrl-bench-") as run_dir:
        if agent[0].startswith("sb3-"):
            from memrl.agents.sb3_baselines import train_sb3

            start = time.perf_counter()
            train_sb3(config, run_dir, progress=False)
        else:
            from memrl.agents.ppo import PPOTrainer

            trainer = PPOTrainer(config, run_dir, progress=False)
            start = time.perf_counter()
            trainer.train()
        return steps / (time.perf_counter() - start)


def bench_training(
    env_id: str = "memrl/BalletGrid-2-delay16-v0",
    agents: Sequence[AgentSpec] = DEFAULT_AGENTS,
    steps: int = 16_384,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Training throughput of every agent on ``env_id``; rows for JSON and ``format_table``."""
    rows = []
    for name, core_kwargs in agents:
        rate = training_throughput(env_id, (name, core_kwargs), steps, seed)
        rows.append({"agent": name, "core_kwargs": core_kwargs, "env_id": env_id,
                     "steps": steps, "steps_per_s": rate})  # fmt: skip
    return rows


def format_training_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a text table, with each agent's speed relative to sb3-recurrent-ppo."""
    reference = next((r["steps_per_s"] for r in rows if r["agent"] == "sb3-recurrent-ppo"), None)
    lines = [f"{'agent':<40} {'steps/s':>9} {'x RecurrentPPO':>15}"]
    for r in rows:
        label = r["agent"] + (f" {r['core_kwargs']}" if r["core_kwargs"] else "")
        ratio = f"{r['steps_per_s'] / reference:.1f}x" if reference else "-"
        lines.append(f"{label:<40} {r['steps_per_s']:>9.0f} {ratio:>15}")
    return "\n".join(lines)
