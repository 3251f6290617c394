"""``memrl run demo``: what memory is worth on every memory env, and memory agents learning it.

A job: like ``cli`` it may import every sub-package, and nothing imports it.

1. For each registered env an oracle (told at reset what the episode will ask, or remembering
   every observation) and a memory-free policy (acting on the current observation only) play the
   same seeded episodes; their success rates are printed side by side with chance.
2. An HCAM agent and an LSTM agent are trained with memory PPO on a short-delay recall task
   (``memrl/DelayedMatch-Easy-v0``: a cue, 16 distractor steps, then name the cue) for
   ``train_steps`` env steps each, evaluated on fresh episodes, and compared: success, steps per
   second, and their training curves (``training_curves.png``). Each agent's run directory is
   ``<out>/<agent>``, so an interrupted demo resumes from the last checkpoint.
3. A Ballet episode played by the oracle is written as a GIF.

Everything goes to ``demo.json`` in the output directory with the command that produced it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

from memrl.agents.scripted import FAMILY_POLICIES, ScriptedPolicy
from memrl.bench.machine import machine_info
from memrl.envs import MEMORY
from memrl.envs.media import record_episode, save_frames

GIF_ENV = "memrl/Ballet-4-delay16-v0"
RECALL_ENV = "memrl/DelayedMatch-Easy-v0"
"""The short-delay recall task the demo trains on (4 symbols, delay 16, chance 0.25)."""
DEMO_CORES: dict[str, dict[str, Any]] = {"hcam": {"num_layers": 2, "width": 64}, "lstm": {}}
"""The agents the demo trains, with their core options (a 2-layer HCAM of width 64 is fast on a
CPU; at delay 16 it reads its current chunk through its local attention)."""
SLOW_FAMILIES = {"cued_reach": 10}
"""Families whose episodes are costly (Meta-World), with the divisor of their episode count."""


@dataclass
class TrainedRow:
    """One agent trained by the demo, and how well it recalls."""

    agent: str
    steps: int
    steps_per_second: float
    training_success: float
    eval_success: float
    eval_episodes: int
    run_dir: str


@dataclass
class DemoRow:
    """Success of the two scripted policies on one env."""

    id: str
    episodes: int
    oracle: float
    memory_free: float
    chance: float | None
    oracle_is: str
    memory_free_is: str


def success_rate(env_id: str, policy: ScriptedPolicy, episodes: int, seed: int) -> float:
    """Fraction of ``episodes`` seeded episodes (seeds ``seed``, ``seed + 1``, ...) that succeed."""
    env = gymnasium.make(env_id)
    wins = 0
    for episode in range(episodes):
        observation, info = env.reset(seed=seed + episode)
        policy.reset(observation, info)
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(policy.act(observation))
            done = terminated or truncated
        wins += bool(info["is_success"])
    env.close()
    return wins / episodes


def chance_level(env_id: str) -> float | None:
    """Success of uniform guessing where the task is a choice among a few options, else None."""
    entry = MEMORY[env_id]
    kwargs = entry.kwargs
    if entry.family == "ballet":
        return 1 / kwargs["num_dancers"]
    if entry.family == "room_ballet":
        from memrl.envs.dances import NUM_DANCES

        return 1 / NUM_DANCES
    if entry.family == "delayed_match":
        return 1 / kwargs["num_symbols"]
    if "PassiveVisualMatch" in env_id:
        return 1 / kwargs.get("num_choices", 3)
    return None


def evaluate(env_id: str, episodes: int, seed: int) -> DemoRow:
    """Play ``episodes`` episodes of ``env_id`` with its family's oracle and memory-free policy."""
    family = MEMORY[env_id].family
    episodes = max(1, episodes // SLOW_FAMILIES.get(family, 1))
    make_policy = FAMILY_POLICIES[family]
    oracle, free = make_policy(seed=seed, oracle=True), make_policy(seed=seed, oracle=False)
    oracle_rate = success_rate(env_id, oracle, episodes, seed)
    free_rate = success_rate(env_id, free, episodes, seed)
    return DemoRow(
        env_id,
        episodes,
        oracle_rate,
        free_rate,
        chance_level(env_id),
        oracle.description,
        free.description,
    )


def format_rows(rows: list[DemoRow]) -> str:
    """The rows as an aligned text table."""
    header = ("env", "episodes", "oracle", "memory-free", "chance", "memory-free policy")
    lines = [
        (
            r.id,
            str(r.episodes),
            f"{r.oracle:.2f}",
            f"{r.memory_free:.2f}",
            "-" if r.chance is None else f"{r.chance:.2f}",
            r.memory_free_is,
        )
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    )


def _as_callable(policy: ScriptedPolicy) -> Any:
    """Adapt a scripted policy to ``record_episode``'s (observation, info) -> action."""
    started = False

    def act(observation: Any, info: dict[str, Any]) -> Any:
        nonlocal started
        if not started:
            policy.reset(observation, info)
            started = True
        return policy.act(observation)

    return act


def train_recall_agents(
    out_dir: Path, steps: int, seed: int, episodes: int, agents: tuple[str, ...] = ("hcam", "lstm")
) -> list[TrainedRow]:
    """Train each agent on :data:`RECALL_ENV` for ``steps`` env steps, then evaluate it.

    A run directory that already holds a checkpoint is resumed (a finished one is only
    evaluated). The training curves of all agents go to ``out_dir/training_curves.png``.

    Args:
        out_dir: Parent of the agents' run directories.
        steps: Env steps per agent.
        seed: Seed of the training runs (evaluation episodes use ``10_000 + seed``).
        episodes: Evaluation episodes per agent.
        agents: Keys of :data:`DEMO_CORES`.

    Returns:
        One row per agent.
    """
    from memrl.agents.ppo import PPOTrainer
    from memrl.agents.ppo_config import PPOConfig
    from memrl.agents.run_log import read_metric
    from memrl.eval.evaluate import run_episodes
    from memrl.eval.plots import plot_training_curves

    rows: list[TrainedRow] = []
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    for agent in agents:
        run_dir = out_dir / agent
        config = PPOConfig(env_id=RECALL_ENV, core=agent, core_kwargs=DEMO_CORES[agent],
                           total_steps=steps, seed=seed, tensorboard=False)  # fmt: skip
        trainer = PPOTrainer(config, run_dir, resume=True)
        trainer.train()
        result = run_episodes(trainer.policy, RECALL_ENV, {}, episodes, seed=10_000 + seed)
        trained_steps, success = read_metric(run_dir, "charts/success_rate")
        _, sps = read_metric(run_dir, "charts/sps")
        curves[agent] = [(trained_steps, success)]
        rows.append(TrainedRow(
            agent, trainer.global_step, sps[-1] if sps else float("nan"),
            float(np.mean(success[-10:])) if success else float("nan"),
            result["success_rate"], episodes, str(run_dir),
        ))  # fmt: skip
    plot_training_curves(curves, out_dir / "training_curves.png", chance=chance_level(RECALL_ENV),
                         smooth=10, title=f"memory PPO on {RECALL_ENV}")  # fmt: skip
    return rows


def format_trained(rows: list[TrainedRow]) -> str:
    """The trained agents as an aligned text table."""
    header = ("agent", "env steps", "steps/s", "training success", "eval success")
    lines = [
        (r.agent, f"{r.steps:,}", f"{r.steps_per_second:,.0f}", f"{r.training_success:.2f}",
         f"{r.eval_success:.2f} ({r.eval_episodes} episodes)")
        for r in rows
    ]  # fmt: skip
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    )


def run_demo(
    out_dir: Path,
    episodes: int = 200,
    seed: int = 0,
    env_ids: list[str] | None = None,
    train_steps: int = 200_000,
) -> list[DemoRow]:
    """Run the showcase, print its tables, write ``demo.json``, plots and ``ballet.gif``.

    Args:
        out_dir: Directory for the demo's files (created if missing).
        episodes: Episodes per policy and env (Meta-World envs play a tenth of them), and
            evaluation episodes of each trained agent.
        seed: Seed of the first episode (episode k uses ``seed + k``) and of the training runs.
        env_ids: Envs to evaluate with the scripted policies (default: every memory env).
        train_steps: Env steps of memory PPO per trained agent (0: skip the training).

    Returns:
        One row per env.
    """
    ids = env_ids or list(MEMORY)
    rows = [
        evaluate(env_id, episodes, seed)
        for env_id in tqdm(ids, desc="demo", unit="env", file=sys.stderr)
    ]
    print(format_rows(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    trained: list[TrainedRow] = []
    if train_steps:
        print(f"\ntraining HCAM and LSTM agents on {RECALL_ENV}, {train_steps:,} steps each:")
        trained = train_recall_agents(out_dir, train_steps, seed, episodes)
        print(format_trained(trained))
        print(f"chance {chance_level(RECALL_ENV):.2f}; curves in {out_dir / 'training_curves.png'}")
    report = {
        "command": "memrl " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "rows": [asdict(r) for r in rows],
        "trained": [asdict(r) for r in trained],
    }
    (out_dir / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    frames = record_episode(GIF_ENV, seed=seed, policy=_as_callable(FAMILY_POLICIES["ballet"]()))
    gif = save_frames(frames, out_dir / "ballet.gif")
    print(f"\nwrote {out_dir / 'demo.json'} and {gif} ({len(frames)} frames of {GIF_ENV})")
    return rows
