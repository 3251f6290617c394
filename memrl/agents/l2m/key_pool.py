"""Learnable keys matched against a query by cosine similarity, with L2M's usage-count penalty.

The selection both L2M's modulator pool and L2P's prompt pool share (L2M's ``L2PPrompt``, after
Wang et al. 2022's L2P):

- Keys: ``[N, D]``, initialised uniform(-1, 1).
- Match: cosine similarity between each query and every key; the top-k keys are selected.
- Pull loss: ``-coefficient * sum_k cos(query, selected key_k)``, averaged over the batch
  (L2M: coefficient 0.5, top-1 for the modulator pool). Only the keys get its gradient (the query
  is the frozen model's embedding).
- Usage counts: in training, every selection adds its batch's histogram of chosen entries
  (normalised to sum 1) to a running mean over all updates so far, ``usage += (hist - usage) / n``
  (L2M's ``add_counts``; never reset between tasks).
- Count penalty: at the start of each task (:meth:`KeyPool.start_task`, L2M's ``set_task_id``)
  the usage so far is frozen into weights ``w = (1 / (usage + 1e-6)) / sum(1 / (usage + 1e-6))``
  (L2M's ``update_inv_counts``). While training, selection ranks keys by
  ``((cos + 1) / 2) * w`` instead of ``cos``: entries that earlier tasks used often get a tiny
  weight, so a new task is steered onto entries no earlier task used. The first task's weights
  are uniform (no usage yet), which ranks exactly as cosine does; L2M switches the penalty off for
  task 0, which selects the same entries. At evaluation (``eval()`` mode) the plain cosine
  decides. Training identity keys on pre-training data (L2M's ``pretrain`` mode) refreshes the
  weights after every update instead (:meth:`KeyPool.refresh_penalty`), which spreads the
  pre-training data over the keys.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

USAGE_EPSILON = 1e-6
"""L2M's ``1 / (counts + 1e-6)``."""


class KeyPool(nn.Module):
    """``N`` keys, top-k cosine selection, pull loss and usage-count penalty.

    Args:
        num_keys: ``N``.
        key_dim: ``D``, the query width (the model's embedding width).
        count_penalty: Apply the usage-count penalty when selecting in training mode.
        pull_coefficient: Weight of the pull loss (L2M: 0.5).
    """

    usage: torch.Tensor  # [N] running mean of each key's share of the selections
    updates: torch.Tensor  # [] selections counted
    penalty_weights: torch.Tensor  # [N] normalised inverse usage, frozen at task start

    def __init__(
        self,
        num_keys: int,
        key_dim: int,
        count_penalty: bool = True,
        pull_coefficient: float = 0.5,
    ) -> None:
        super().__init__()
        if num_keys < 1:
            raise ValueError(f"num_keys must be >= 1, got {num_keys}")
        if key_dim < 1:
            raise ValueError(f"key_dim must be >= 1, got {key_dim}")
        self.num_keys = num_keys
        self.count_penalty = count_penalty
        self.pull_coefficient = pull_coefficient
        self.keys = nn.Parameter(torch.empty(num_keys, key_dim).uniform_(-1.0, 1.0))  # [N, D]
        self.register_buffer("usage", torch.zeros(num_keys))  # running mean of usage shares
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("penalty_weights", torch.full((num_keys,), 1.0 / num_keys))

    def refresh_penalty(self) -> None:
        """Freeze the usage so far into the penalty weights (normalised inverse usage)."""
        inverse = 1.0 / (self.usage + USAGE_EPSILON)
        self.penalty_weights.copy_(inverse / inverse.sum())

    def start_task(self) -> None:
        """Begin a new task: later selections in training are penalised by the usage so far."""
        self.refresh_penalty()

    def _count(self, selected: torch.Tensor) -> None:
        """Add a batch's selections ``[B, k]`` to the running mean of usage."""
        histogram = torch.bincount(selected.flatten(), minlength=self.num_keys).float()
        self.updates += 1
        self.usage += (histogram / histogram.sum() - self.usage) / self.updates

    def match(
        self,
        query: torch.Tensor,
        top_k: int,
        candidates: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Select ``top_k`` keys per query.

        Args:
            query: ``[B, D]``.
            top_k: Keys per query.
            candidates: ``[B, N]`` or ``[N]`` bool keys that may be chosen, or None for all.

        Returns:
            ``(selected [B, k], pull_loss scalar, cosine [B, N])``.
        """
        query_unit = functional.normalize(query, dim=-1)  # [B, D]
        key_unit = functional.normalize(self.keys, dim=-1)  # [N, D]
        cosine = query_unit @ key_unit.T  # [B, N]
        score = cosine.detach()
        if self.training and self.count_penalty:
            score = (score + 1.0) / 2.0 * self.penalty_weights
        if candidates is not None:
            score = score.masked_fill(~candidates, -torch.inf)
        selected = score.topk(top_k, dim=-1).indices  # [B, k]
        if self.training:
            self._count(selected)
        pull_loss = -self.pull_coefficient * cosine.gather(1, selected).sum() / query.shape[0]
        return selected, pull_loss, cosine
