"""A ``sat-ama`` agent at evaluation: the trained allocator picks each episode's eviction strategy.

During training the trainer asks SAT's Adaptive Memory Allocator for a strategy at every episode
start (epsilon-greedy) from the episode's question type, which the batched RoomBallet envs report
as ``info["question_type"]``. :class:`AllocatedPolicy` does the same greedily around a trained
:class:`~memrl.agents.policy.MemoryPolicy`, so that evaluation measures the agent as trained, not a
``sat-pm`` stuck at FIFO. It has SB3's ``predict``; :func:`memrl.eval.evaluate.run_episodes` hands
it each step's ``info`` through :meth:`AllocatedPolicy.observe`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from memrl.agents.policy import MemoryPolicy
from memrl.memory import AdaptiveMemoryAllocator, set_strategy
from memrl.memory.base import State
from memrl.memory.eviction import STRATEGIES


class AllocatedPolicy:
    """A memory policy whose SAT core's strategy the allocator chooses per episode (greedily).

    Args:
        policy: A trained policy with a SAT core.
        allocator: The allocator trained with it.
    """

    def __init__(self, policy: MemoryPolicy, allocator: AdaptiveMemoryAllocator) -> None:
        self.policy = policy
        self.allocator = allocator
        self.context: torch.Tensor | None = None

    def observe(self, info: dict[str, Any]) -> None:
        """Take the question types of the current episodes from a vector env's ``info``.

        RoomBallet reports them as ``info["question_type"]`` (indices into its
        ``QUESTION_TYPES``), in its batched form and through ``SyncVectorEnv`` alike.
        """
        if "question_type" not in info:
            raise ValueError(
                "a sat-ama agent needs the episodes' question types from its env's "
                f"info['question_type'], as RoomBallet reports them; got info keys {sorted(info)}"
            )
        self.context = torch.as_tensor(np.asarray(info["question_type"]), dtype=torch.long)

    def choices(self, num_contexts: int) -> list[str]:
        """The strategy the allocator picks greedily for each context id ``0 .. n - 1``."""
        picks = self.allocator.select(torch.arange(num_contexts), explore=False)
        return [STRATEGIES[int(i)] for i in picks]

    def predict(
        self,
        observation: Any,
        state: State | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, State]:
        """SB3's ``predict``; episodes that start get the allocator's strategy first."""
        if self.context is None:
            raise RuntimeError("call observe(info) with the env's reset info before predict")
        batch = self.context.shape[0]
        if state is None:
            state = self.policy.initial_state(batch)
        starts = torch.ones(batch, dtype=torch.bool)
        if episode_start is not None:
            starts = torch.as_tensor(np.asarray(episode_start).reshape(batch), dtype=torch.bool)
        if bool(starts.any()):
            strategy = torch.zeros(batch, dtype=torch.long)
            strategy[starts] = self.allocator.select(self.context[starts], explore=False)
            state = set_strategy(state, strategy, where=starts)
        return self.policy.predict(observation, state, episode_start, deterministic)


def allocator_from_checkpoint(payload: dict[str, Any], path: Path) -> AdaptiveMemoryAllocator:
    """The allocator saved in a ``sat-ama`` run's checkpoint ``payload`` (read from ``path``).

    Raises:
        ValueError: The checkpoint holds no allocator (the run was not trained with sat-ama).
    """
    from memrl.envs.room_ballet import QUESTION_TYPES

    if payload.get("allocator") is None:
        raise ValueError(f"{path} holds no allocator: the run was not trained with sat-ama")
    allocator = AdaptiveMemoryAllocator(context_dim=len(QUESTION_TYPES))
    allocator.load_state_dict(payload["allocator"]["model"])
    allocator.eval()
    return allocator
