"""L2M's modulator pool: (key, modulator) pairs on the frozen multi-domain Decision Transformer.

"Learning to Modulate pre-trained Models in RL" (Schmied et al. 2023). Entry ``i`` of the pool is
a key (here) and a modulator: adapter ``i`` of every LoRA bank attached to the frozen model
(:func:`memrl.agents.l2m.lora.attach_lora` with ``num_adapters = num_entries``). Per sample:

1. query = the mean of the frozen model's embedded state tokens over the context
   (:meth:`MultiDomainDecisionTransformer.pool_query`);
2. the entry whose key has the highest cosine similarity with the query is selected (top-1), in
   training with the usage-count penalty of :mod:`memrl.agents.l2m.key_pool` so that a new task
   is steered to entries earlier tasks did not use;
3. the model runs with that entry's adapters (:attr:`PoolSelection.modulation`), and the pull
   loss ``-0.5 cos(query, selected key)`` (batch mean) is added to the action loss so that the
   key moves towards the queries it serves.

Identity keys. ``num_identity_keys`` extra keys mean "no modulation" (L2M's pre-training keys):
trained on pre-training data (``keys="identity"``, with :meth:`KeyPool.refresh_penalty` after
every update to spread the data over them), they are matched alongside the modulator keys at
evaluation (``keys="all"``), and a sample that matches one runs the frozen model unchanged
(adapter index -1), so pre-training tasks are retained by construction.

Oracle. With ``oracle=True`` (L2M-oracle) the task id picks the entry: task ``t`` uses entry
``t``; the key match is not used for selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memrl.agents.l2m.key_pool import KeyPool
from memrl.agents.pretrained.inputs import Modulation

KEY_SETS: tuple[str, ...] = ("modulators", "identity", "all")
"""Which keys a selection may choose: the modulator entries (fine-tuning a task), the identity
keys (training them on pre-training data), or both (evaluation)."""


@dataclass
class PoolSelection:
    """What the pool chose for a batch.

    Attributes:
        entry: ``[B]`` the selected key (modulator entries ``0..N-1``, identity keys after).
        adapter_index: ``[B]`` the adapter each sample uses (-1 for an identity key).
        pull_loss: Scalar ``-coefficient * cos(query, selected key)``, batch mean.
        cosine: ``[B, N + identity]`` cosine similarity of each query with every key.
    """

    entry: torch.Tensor
    adapter_index: torch.Tensor
    pull_loss: torch.Tensor
    cosine: torch.Tensor

    @property
    def modulation(self) -> Modulation:
        """The model modulation that applies the selected adapters."""
        return Modulation(adapter_index=self.adapter_index)


class ModulatorPool(KeyPool):
    """L2M's pool of (key, modulator) entries (see the module docstring).

    Args:
        key_dim: Query width (the model's ``embed_dim``).
        num_entries: Modulator entries (L2M: 30).
        num_identity_keys: Extra keys that mean "no modulation".
        count_penalty: Steer new tasks to unused entries (L2M: on).
        pull_coefficient: Weight of the pull loss (L2M: 0.5).
        oracle: L2M-oracle: the task id picks the entry.
    """

    _is_modulator: torch.Tensor  # [N + identity] True on the modulator entries

    def __init__(
        self,
        key_dim: int,
        num_entries: int = 30,
        num_identity_keys: int = 0,
        count_penalty: bool = True,
        pull_coefficient: float = 0.5,
        oracle: bool = False,
    ) -> None:
        if num_entries < 1:
            raise ValueError(f"num_entries must be >= 1, got {num_entries}")
        if num_identity_keys < 0:
            raise ValueError(f"num_identity_keys must be >= 0, got {num_identity_keys}")
        super().__init__(num_entries + num_identity_keys, key_dim, count_penalty, pull_coefficient)
        self.num_entries = num_entries
        self.num_identity_keys = num_identity_keys
        self.oracle = oracle
        is_modulator = torch.arange(self.num_keys) < num_entries
        self.register_buffer("_is_modulator", is_modulator, persistent=False)

    def _candidates(self, keys: str | None) -> torch.Tensor | None:
        """The keys a selection may choose (None: all)."""
        if keys is None:
            keys = "modulators" if self.training else "all"
        if keys not in KEY_SETS:
            raise ValueError(f"keys must be one of {KEY_SETS}, got {keys!r}")
        if keys == "identity" and not self.num_identity_keys:
            raise ValueError("keys='identity' needs num_identity_keys >= 1, got 0")
        if keys == "all" or not self.num_identity_keys:
            return None
        return self._is_modulator if keys == "modulators" else ~self._is_modulator

    def _oracle_entry(self, task_id: int | torch.Tensor | None, batch: int) -> torch.Tensor:
        """``[B]`` entries chosen by task id."""
        if task_id is None:
            raise ValueError("an oracle pool needs task_id (the entry is the task's id)")
        entry = torch.as_tensor(task_id, dtype=torch.long, device=self.keys.device)
        entry = entry.expand(batch) if entry.ndim == 0 else entry
        if entry.shape != (batch,):
            raise ValueError(
                f"task_id must be an int or shape ({batch},), got {tuple(entry.shape)}"
            )
        low, high = int(entry.min()), int(entry.max())
        if low < 0 or high >= self.num_entries:
            raise ValueError(
                f"task_id must be in 0..{self.num_entries - 1} for an oracle pool of "
                f"{self.num_entries} entries, got values in {low}..{high}"
            )
        return entry

    def forward(
        self,
        query: torch.Tensor,
        task_id: int | torch.Tensor | None = None,
        keys: str | None = None,
    ) -> PoolSelection:
        """Select an entry per sample.

        Args:
            query: ``[B, key_dim]`` from :meth:`MultiDomainDecisionTransformer.pool_query`.
            task_id: The task (int or ``[B]``); needed by an oracle pool, ignored otherwise.
            keys: One of :data:`KEY_SETS`; None: ``"modulators"`` in training mode, ``"all"`` in
                evaluation mode.

        Returns:
            The selection.

        Raises:
            ValueError: A bad ``keys`` or (oracle) a missing or out-of-range ``task_id``.
        """
        candidates = self._candidates(keys)
        if self.oracle:
            entry = self._oracle_entry(task_id, query.shape[0])
            candidates = torch.nn.functional.one_hot(entry, self.num_keys).bool()  # [B, N]
        selected, pull_loss, cosine = self.match(query, top_k=1, candidates=candidates)
        entry = selected[:, 0]
        adapter_index = torch.where(entry < self.num_entries, entry, torch.full_like(entry, -1))
        return PoolSelection(entry, adapter_index, pull_loss, cosine)
