"""Vector envs of any registered id: memrl's batched implementation where one is registered."""

from __future__ import annotations

from typing import Any

import gymnasium


def make_vector_env(
    env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None
) -> gymnasium.vector.VectorEnv:
    """``num_envs`` copies of ``env_id``: the batched implementation if registered, else sync.

    Args:
        env_id: A registered Gymnasium id.
        num_envs: Number of sub-environments.
        env_kwargs: Keyword arguments of the env (e.g. ``{"delay": 1024}``).
    """
    spec = gymnasium.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point else "sync"
    return gymnasium.make_vec(
        env_id, num_envs=num_envs, vectorization_mode=mode, **(env_kwargs or {})
    )
