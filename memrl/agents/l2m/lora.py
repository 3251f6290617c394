"""A bank of LoRA adapters with per-sample routing: L2M's modulators.

LoRA (Hu et al. 2021) adds a low-rank update to a frozen linear layer,
``y = W x + (alpha / r) * B A x``. A :class:`LoRABank` holds ``P`` such adapters for one layer and
an index per sample chooses which one modulates it, so that one batch can mix tasks and pool
entries (L2M selects an entry per sample). Index -1 means no adapter: the frozen layer's own
output, exactly (L2M's pre-training keys that mean "no modulation").

Initialisation follows PEFT and L2M: ``A`` Kaiming-uniform with ``a = sqrt(5)`` (each
``[in, r]`` matrix as ``nn.Linear(in, r)`` would be: uniform in ``+-1/sqrt(in)``), ``B`` zero, so
a fresh adapter leaves the frozen model unchanged. L2M: rank 8, alpha 16 (scale 2), on the query,
the value and the first feed-forward layer of every block (:func:`attach_lora`).

Full fine-tuning, one shared LoRA (``P = 1``, every index 0) and the L2M pool (``P = 30``, index
from the key match) are all this one mechanism. PEFT is not used: its mixed-adapter batches
(``adapter_names=``) are an inference-time feature that splits the batch per adapter, not a
differentiable per-sample route.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from memrl.agents.pretrained.blocks import ADAPTER_TARGETS
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer


class LoRABank(nn.Module):
    """``P`` LoRA adapters for one ``in_features -> out_features`` linear layer.

    Args:
        in_features: The layer's input width.
        out_features: The layer's output width.
        num_adapters: ``P``.
        rank: ``r``.
        alpha: Scale numerator: the update is ``(alpha / r) * x A B``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_adapters: int,
        rank: int = 8,
        alpha: float = 16.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("num_adapters", num_adapters),
            ("rank", rank),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.num_adapters = num_adapters
        self.rank = rank
        self.scale = alpha / rank
        bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform_(a=sqrt(5)) of nn.Linear(in, r)
        self.lora_a = nn.Parameter(
            torch.empty(num_adapters, in_features, rank).uniform_(-bound, bound)
        )  # [P, in, r]
        self.lora_b = nn.Parameter(torch.zeros(num_adapters, rank, out_features))  # [P, r, out]

    def forward(self, x: torch.Tensor, adapter_index: torch.Tensor) -> torch.Tensor | None:
        """The low-rank update of each sample's adapter.

        Args:
            x: ``[B, T, in]`` layer inputs.
            adapter_index: ``[B]`` int64 adapter per sample in ``-1..P-1`` (-1 = none).

        Returns:
            ``[B, T, out]`` updates (exactly zero for index -1), or None if no sample has an
            adapter.

        Raises:
            ValueError: An index outside ``-1..P-1``.
        """
        low, high = int(adapter_index.min()), int(adapter_index.max())
        if low < -1 or high >= self.num_adapters:
            raise ValueError(
                f"adapter_index must be in -1..{self.num_adapters - 1}, got values in {low}..{high}"
            )
        if high < 0:
            return None
        if low == high:  # one adapter for the whole batch: plain matrix products
            return (x @ self.lora_a[high] @ self.lora_b[high]) * self.scale
        chosen = adapter_index.clamp_min(0)
        update = torch.bmm(torch.bmm(x, self.lora_a[chosen]), self.lora_b[chosen])  # [B, T, out]
        active = (adapter_index >= 0)[:, None, None]
        return torch.where(active, update * self.scale, torch.zeros_like(update))


def attach_lora(
    model: MultiDomainDecisionTransformer,
    num_adapters: int,
    rank: int = 8,
    alpha: float = 16.0,
    targets: Sequence[str] = ADAPTER_TARGETS,
) -> list[LoRABank]:
    """Attach a :class:`LoRABank` to the named projections of every block of ``model``.

    Args:
        model: The model (its blocks must have no adapters yet).
        num_adapters: Adapters per bank (30 for the L2M pool, 1 for a single shared LoRA).
        rank: LoRA rank (L2M: 8).
        alpha: LoRA alpha (L2M: 16, scale 2).
        targets: Which projections, a subset of :data:`ADAPTER_TARGETS` (default: all: query,
            value and the first feed-forward layer).

    Returns:
        The banks, block by block and target by target.

    Raises:
        ValueError: An unknown target or a block that already has adapters.
    """
    unknown = [name for name in targets if name not in ADAPTER_TARGETS]
    if unknown or not targets:
        raise ValueError(f"targets must be a non-empty subset of {ADAPTER_TARGETS}, got {targets}")
    banks = []
    for layer, block in enumerate(model.decision_blocks):
        if len(block.adapters):
            raise ValueError(f"block {layer} already has adapters {list(block.adapters)}")
        for name in targets:
            projection: nn.Linear = getattr(block, name)
            bank = LoRABank(
                projection.in_features, projection.out_features, num_adapters, rank, alpha
            ).to(projection.weight.device)
            block.adapters[name] = bank
            banks.append(bank)
    return banks
