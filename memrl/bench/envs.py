"""``memrl bench envs``: steps per second of every environment, single and batched, in one run.

Method: each env is made exactly as a user makes it (``gymnasium.make(id)``, so Gymnasium's
wrappers are included; ``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")``
for the batched form), reset with a seed, and stepped with uniformly random actions drawn
beforehand from its own action space (so sampling is not timed) for at least ``seconds`` of wall
time; resets at episode ends are included in the time. The figure is env-steps per second.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import gymnasium

from memrl.envs import ALL
from memrl.envs.table import format_rate

ACTION_POOL = 4096  # pre-drawn actions (single) or action batches (vectorised: ACTION_POOL // 64)


@dataclass
class EnvThroughput:
    """Measured throughput of one environment.

    Attributes:
        id: The Gymnasium id.
        single_steps_per_s: Steps per second of one env made with ``gymnasium.make``.
        vector_steps_per_s: Env-steps per second of the batched implementation (None if the env
            has none).
        num_envs: Number of sub-environments of the batched measurement.
    """

    id: str
    single_steps_per_s: float
    vector_steps_per_s: float | None
    num_envs: int

    def to_dict(self) -> dict:
        """Return the row as a plain dict (for JSON)."""
        return asdict(self)


def _timed_loop(step: Callable[[int], int], seconds: float, batch: int) -> float:
    """Call ``step(i)`` until ``seconds`` elapse; return calls x ``batch`` per second."""
    for i in range(16):  # warm-up: first resets, caches, lazy imports
        step(i)
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    block = 64
    while True:
        for i in range(calls, calls + block):
            step(i)
        calls += block
        now = time.perf_counter()
        if now >= deadline:
            return calls * batch / (now - start)


def single_throughput(env_id: str, seconds: float, seed: int = 0) -> float:
    """Steps per second of ``gymnasium.make(env_id)`` under random actions."""
    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(ACTION_POOL)]
    env.reset(seed=seed)

    def step(i: int) -> int:
        _, _, terminated, truncated, _ = env.step(actions[i % ACTION_POOL])
        if terminated or truncated:
            env.reset()
        return 1

    try:
        return _timed_loop(step, seconds, batch=1)
    finally:
        env.close()


def vector_throughput(env_id: str, num_envs: int, seconds: float, seed: int = 0) -> float:
    """Env-steps per second of the batched implementation with ``num_envs`` sub-environments."""
    envs = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.action_space.seed(seed)
    pool = max(ACTION_POOL // num_envs, 8)
    actions = [envs.action_space.sample() for _ in range(pool)]
    envs.reset(seed=seed)

    def step(i: int) -> int:
        envs.step(actions[i % pool])
        return 1

    try:
        return _timed_loop(step, seconds, batch=num_envs)
    finally:
        envs.close()


def bench_envs(
    env_ids: Iterable[str] | None = None,
    seconds: float = 1.0,
    num_envs: int = 64,
    progress: Callable[[Iterable[str]], Iterable[str]] | None = None,
) -> list[EnvThroughput]:
    """Measure every env in ``env_ids`` (default: the whole suite), single and batched.

    Args:
        env_ids: Ids to measure; every registered memrl id if None.
        seconds: Wall time per measurement.
        num_envs: Sub-environments of the batched measurement.
        progress: Optional wrapper of the id iterable (e.g. ``tqdm``).

    Returns:
        One row per env, in the order measured.
    """
    ids = list(env_ids) if env_ids is not None else list(ALL)
    unknown = [i for i in ids if i not in ALL]
    if unknown:
        raise ValueError(f"unknown env ids {unknown}; run `memrl list` for the registered ones")
    rows = []
    for env_id in progress(ids) if progress else ids:
        single = single_throughput(env_id, seconds)
        vector = (
            vector_throughput(env_id, num_envs, seconds) if ALL[env_id].vector_entry_point else None
        )
        rows.append(EnvThroughput(env_id, single, vector, num_envs))
    return rows


def format_table(rows: list[EnvThroughput]) -> str:
    """Render rows as a plain-text table."""
    header = ("env", "single steps/s", f"batched steps/s (x{rows[0].num_envs})" if rows else "")
    lines = [
        (r.id, format_rate(r.single_steps_per_s), format_rate(r.vector_steps_per_s)) for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
    out = []
    for cells in itertools.chain([header], lines):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)))
    return "\n".join(out)
