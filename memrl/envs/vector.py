"""Vector envs of any registered id: memrl's batched implementation where one is registered."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium


def make_vector_env(
    env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None
) -> gymnasium.vector.VectorEnv:
    """``num_envs`` copies of ``env_id``: the batched implementation if registered, else sync.

    The sync vector env is built from ``functools.partial(gymnasium.make, ...)`` factories rather
    than by ``gymnasium.make_vec``, whose factory is a local function: memory PPO pickles its
    vector env into every checkpoint, which must work for any registered env, not only memrl's.

    Args:
        env_id: A registered Gymnasium id.
        num_envs: Number of sub-environments.
        env_kwargs: Keyword arguments of the env (e.g. ``{"delay": 1024}`` for DelayedMatch).
    """
    kwargs = dict(env_kwargs or {})
    if gymnasium.spec(env_id).vector_entry_point:
        return gymnasium.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
        )
    factory = functools.partial(gymnasium.make, env_id, **kwargs)
    return gymnasium.vector.SyncVectorEnv([factory] * num_envs)
