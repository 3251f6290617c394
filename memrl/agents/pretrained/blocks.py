"""The pre-LayerNorm GPT block of the multi-domain Decision Transformer.

Written out explicitly, with separate ``query``, ``key`` and ``value`` projections, so that a
per-sample LoRA adapter can sit on the query, the value and the first feed-forward layer (``fc1``)
as in L2M, and so that prefix key/value prompts (L2P's prefix tuning) can be prepended to the
attention's keys and values.

Adapters are attached from outside (:func:`memrl.agents.l2m.lora.attach_lora`) into a block's
``adapters`` dictionary under the names of :data:`ADAPTER_TARGETS`; each is called as
``adapter(h, adapter_index) -> delta`` and its output is added to the named projection's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

ADAPTER_TARGETS: tuple[str, ...] = ("query", "value", "fc1")
"""The projections of a block an adapter can modulate (L2M's LoRA targets)."""


class DecisionBlock(nn.Module):
    """One pre-LayerNorm Transformer block: causal multi-head attention, then a GELU MLP.

    Args:
        embed_dim: Token width.
        num_heads: Attention heads.
        ff_multiplier: MLP hidden width as a multiple of ``embed_dim``.
        dropout: Dropout on attention weights and on both residual branches.
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_multiplier: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.attention_out = nn.Linear(embed_dim, embed_dim)
        self.mlp_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ff_multiplier * embed_dim)
        self.fc2 = nn.Linear(ff_multiplier * embed_dim, embed_dim)
        self.residual_dropout = nn.Dropout(dropout)
        self.adapters = nn.ModuleDict()

    def _project(
        self, name: str, layer: nn.Linear, h: torch.Tensor, adapter_index: torch.Tensor | None
    ) -> torch.Tensor:
        """``layer(h)`` plus the adapter on ``name`` (if attached and an index is given)."""
        out = layer(h)
        if adapter_index is not None and name in self.adapters:
            delta = self.adapters[name](h, adapter_index)
            if delta is not None:
                out = out + delta
        return out

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` -> ``[B, heads, T, D / heads]``."""
        batch, tokens, width = x.shape
        return x.view(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor | None,
        adapter_index: torch.Tensor | None = None,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Apply the block.

        Args:
            x: ``[B, T, D]`` tokens.
            attention_mask: ``[B, 1, T, L + T]`` bool (True = may attend, ``L`` prefix tokens
                first), or None for a plain causal mask (then ``prefix`` must be None).
            adapter_index: ``[B]`` adapter per sample (-1 = none), or None.
            prefix: ``(keys, values)``, each ``[B, L, D]``, prepended to the attention's keys and
                values, or None.

        Returns:
            ``[B, T, D]`` tokens.
        """
        batch, tokens, width = x.shape
        h = self.attention_norm(x)
        query = self._split_heads(self._project("query", self.query, h, adapter_index))
        key = self._split_heads(self.key(h))
        value = self._split_heads(self._project("value", self.value, h, adapter_index))
        if prefix is not None:
            key = torch.cat((self._split_heads(prefix[0]), key), dim=2)
            value = torch.cat((self._split_heads(prefix[1]), value), dim=2)
        attended = functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=attention_mask is None,
        )  # [B, heads, T, D / heads]
        attended = attended.transpose(1, 2).reshape(batch, tokens, width)
        x = x + self.residual_dropout(self.attention_out(attended))
        hidden = functional.gelu(self._project("fc1", self.fc1, self.mlp_norm(x), adapter_index))
        return x + self.residual_dropout(self.fc2(hidden))
