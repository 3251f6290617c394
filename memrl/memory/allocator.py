"""The Adaptive Memory Allocator of the Spatially-Aware Transformer (Cho et al. 2024).

When the memory cannot hold everything the agent saw, which entries to keep depends on the task:
a question about the first thing seen needs LIFO (keep the earliest), one about the most visited
room needs LVFO (drop the least visited), and so on. The allocator learns the choice as a one-step
contextual bandit: per episode, from the task context (e.g. a one-hot of RoomBallet's question
type), a small Q-network scores the four strategies of :mod:`memrl.memory.eviction`; the choice is
epsilon-greedy with epsilon annealed linearly (1.0 to 0.2 over 200k steps in the paper; here over
``epsilon_decisions`` decisions, or over whatever progress the caller passes); after
the episode the chosen strategy's value is regressed onto the episode's outcome (success, a
return, or minus a loss) with a squared error.

Typical use, per episode start (``starting`` ``[B]`` bool)::

    strategy = allocator.select(context)
    state = set_strategy(state, strategy, where=starting)
    ...
    allocator.update(context, strategy, reward)  # at the episode's end
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import mse_loss, one_hot

from memrl.memory.eviction import STRATEGIES


class AdaptiveMemoryAllocator(nn.Module):
    """A contextual bandit over eviction strategies: a Q-network, epsilon-greedy, squared error.

    Args:
        context_dim: Width of the context vector (or number of categories of an integer context).
        num_strategies: Number of arms (the four of ``STRATEGIES``).
        hidden: Hidden width of the Q-network (Linear, ReLU, Linear).
        epsilon_start: Exploration rate at the first decision.
        epsilon_end: Exploration rate after ``epsilon_decisions`` decisions (then constant).
        epsilon_decisions: Decisions over which epsilon falls linearly.
        learning_rate: Adam step size of the updates.
        seed: Seed of the exploration draws; None takes one from torch's global generator (so
            ``torch.manual_seed`` makes the allocator deterministic).
    """

    decisions: torch.Tensor  # [] int64 buffer: exploring decisions made

    def __init__(
        self,
        context_dim: int,
        num_strategies: int = len(STRATEGIES),
        hidden: int = 64,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.2,
        epsilon_decisions: int = 200_000,
        learning_rate: float = 1e-2,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("context_dim", context_dim),
            ("num_strategies", num_strategies),
            ("hidden", hidden),
            ("epsilon_decisions", epsilon_decisions),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= epsilon_end <= epsilon_start <= 1.0:
            raise ValueError(
                "need 0 <= epsilon_end <= epsilon_start <= 1, "
                f"got epsilon_start={epsilon_start}, epsilon_end={epsilon_end}"
            )
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.context_dim = context_dim
        self.num_strategies = num_strategies
        self.epsilon_start = epsilon_start
        self.epsilon_end = epsilon_end
        self.epsilon_decisions = epsilon_decisions
        self.q_network = nn.Sequential(
            nn.Linear(context_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_strategies)
        )
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=learning_rate)
        self.register_buffer("decisions", torch.zeros((), dtype=torch.int64))
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def epsilon(self) -> float:
        """The current exploration rate (linear in the number of exploring decisions made)."""
        return self.epsilon_at(int(self.decisions.item()) / self.epsilon_decisions)

    def epsilon_at(self, progress: float) -> float:
        """The exploration rate a fraction ``progress`` of the way through the annealing."""
        done = min(max(progress, 0.0), 1.0)
        return self.epsilon_start + done * (self.epsilon_end - self.epsilon_start)

    def _context(self, context: torch.Tensor) -> torch.Tensor:
        """``[B, context_dim]`` float, or ``[B]`` integer categories one-hot encoded."""
        if not torch.is_floating_point(context):
            if context.dim() != 1:
                raise ValueError(f"an integer context must be [B] ids, got {tuple(context.shape)}")
            if bool(((context < 0) | (context >= self.context_dim)).any()):
                raise ValueError(f"context ids must be in 0..{self.context_dim - 1}")
            context = one_hot(context.to(torch.int64), self.context_dim)
        if context.dim() != 2 or context.shape[1] != self.context_dim:
            raise ValueError(f"context must be [B, {self.context_dim}], got {tuple(context.shape)}")
        device = next(self.q_network.parameters()).device
        return context.to(device=device, dtype=torch.float32)

    def q_values(self, context: torch.Tensor) -> torch.Tensor:
        """Estimated outcome of every strategy: ``[B, num_strategies]``."""
        out: torch.Tensor = self.q_network(self._context(context))
        return out

    @torch.no_grad()
    def select(
        self, context: torch.Tensor, explore: bool = True, progress: float | None = None
    ) -> torch.Tensor:
        """Choose a strategy per batch entry.

        Args:
            context: ``[B, context_dim]`` float or ``[B]`` integer categories.
            explore: Epsilon-greedy (and advance the schedule) if True; greedy if False.
            progress: Where the caller is in the annealing (0 to 1, e.g. a share of a training
                budget), in place of ``decisions / epsilon_decisions``.

        Returns:
            ``[B]`` int64 strategy ids (indices into ``STRATEGIES``).
        """
        greedy = self.q_values(context).argmax(dim=1).cpu()  # [B]
        if not explore:
            return greedy
        b = greedy.shape[0]
        epsilon = self.epsilon if progress is None else self.epsilon_at(progress)
        explore_mask = torch.rand(b, generator=self.generator) < epsilon
        random = torch.randint(self.num_strategies, (b,), generator=self.generator)
        self.decisions += b
        return torch.where(explore_mask, random, greedy)

    def update(self, context: torch.Tensor, strategy: torch.Tensor, reward: torch.Tensor) -> float:
        """One Adam step on ``(Q(context)[strategy] - reward)^2``; returns the loss.

        Args:
            context: ``[B, context_dim]`` float or ``[B]`` integer categories.
            strategy: ``[B]`` the strategies that were used.
            reward: ``[B]`` the episodes' outcomes (e.g. success, or minus a loss).
        """
        q = self.q_values(context)  # [B, S]
        index = torch.as_tensor(strategy, dtype=torch.int64, device=q.device)[:, None]
        target = torch.as_tensor(reward, dtype=q.dtype, device=q.device)
        loss = mse_loss(q.gather(1, index)[:, 0], target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.item())
