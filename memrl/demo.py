"""``memrl run demo``: what memory is worth on every memory env, and a Ballet episode as a GIF.

A job: like ``cli`` it may import every sub-package, and nothing imports it.

For each registered env an oracle (told at reset what the episode will ask, or remembering every
observation) and a memory-free policy (acting on the current observation only) play the same
seeded episodes; their success rates are printed side by side with chance, and written to
``demo.json`` in the output directory with the command that produced them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
from tqdm import tqdm

from memrl.agents.scripted import FAMILY_POLICIES, ScriptedPolicy
from memrl.bench.machine import machine_info
from memrl.envs import MEMORY
from memrl.envs.media import record_episode, save_frames

GIF_ENV = "memrl/Ballet-4-delay16-v0"
SLOW_FAMILIES = {"cued_reach": 10}
"""Families whose episodes are costly (Meta-World), with the divisor of their episode count."""


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


def run_demo(
    out_dir: Path, episodes: int = 200, seed: int = 0, env_ids: list[str] | None = None
) -> list[DemoRow]:
    """Run the showcase, print its table, write ``demo.json`` and ``ballet.gif`` to ``out_dir``.

    Args:
        out_dir: Directory for the demo's files (created if missing).
        episodes: Episodes per policy and env (Meta-World envs play a tenth of them).
        seed: Seed of the first episode; episode k uses ``seed + k``.
        env_ids: Envs to evaluate (default: every memory env).

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
    report = {
        "command": "memrl " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "rows": [asdict(r) for r in rows],
    }
    (out_dir / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    frames = record_episode(GIF_ENV, seed=seed, policy=_as_callable(FAMILY_POLICIES["ballet"]()))
    gif = save_frames(frames, out_dir / "ballet.gif")
    print(f"\nwrote {out_dir / 'demo.json'} and {gif} ({len(frames)} frames of {GIF_ENV})")
    return rows
