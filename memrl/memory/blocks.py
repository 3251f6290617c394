"""What the attention cores are built from: masked softmax, feed-forward, attention into chunks.

:class:`ChunkAttention` is the inner read of HCAM: multi-head attention from one query into each of
``K`` chunks separately (a softmax within each chunk), the ``K`` results weighted and summed. With
one chunk and weight 1 it is ordinary multi-head attention of one query over a set of entries.

It is computed in the "folded" form: the query is mapped into the entries' input space once
(``q_in = W_k^T W_q q / sqrt(d_head)`` per head) and the values are projected after the weighted
sum (``W_o W_v sum_j a_j e_j``), so the cost is linear in the number of entries read and no entry
is ever projected. This is the same function as projecting every entry; only the order of the
linear maps differs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import linear


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` that gives exactly zero weight where ``mask`` is False.

    A slice whose entries are all masked gets all-zero weights (not NaN), so reading an empty
    memory returns zero.

    Args:
        logits: Scores of any shape.
        mask: Boolean tensor broadcastable to ``logits`` (True = may be attended), or None.
        dim: The dimension to normalise over.

    Returns:
        Weights of the shape of ``logits``.
    """
    if mask is None:
        return torch.softmax(logits, dim=dim)
    logits = logits.masked_fill(~mask, -math.inf)
    peak = logits.detach().amax(dim=dim, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    exp = torch.exp(logits - peak)  # exactly 0 where masked
    return exp / exp.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(exp.dtype).tiny)


class FeedForward(nn.Module):
    """The position-wise feed-forward block of a Transformer layer (Linear, ReLU, Linear).

    Args:
        width: Input and output width.
        hidden: Hidden width.
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., width]`` -> ``[..., width]``."""
        out: torch.Tensor = self.net(x)
        return out


class ChunkAttention(nn.Module):
    """Multi-head attention from one query into each of K chunks, results weighted and summed.

    ``out = W_o concat_h( sum_k w_k sum_c softmax_c(q_h . k_{h,kc} / sqrt(d)) v_{h,kc} )`` where
    ``q_h = W_q^h query``, ``k_{h,kc} = W_k^h e_kc``, ``v_{h,kc} = W_v^h e_kc``; the softmax runs
    within each chunk. All projections are bias-free, so a read whose weights are all zero (an
    empty memory) returns exactly zero.

    Args:
        width: Width of the query and of the entries (the model width).
        heads: Number of heads; must divide ``width``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or width % heads:
            raise ValueError(f"heads must be >= 1 and divide width={width}, got {heads}")
        self.width = width
        self.heads = heads
        self.head_dim = width // heads
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width, bias=False)
        self.output = nn.Linear(width, width, bias=False)

    def fold_query(self, query: torch.Tensor) -> torch.Tensor:
        """Per-head queries mapped into entry space: ``[N, W]`` -> ``[N, H, W]``, scale included."""
        n = query.shape[0]
        q = linear(query, self.query.weight) * (1.0 / math.sqrt(self.head_dim))  # [N, H*d]
        q = q.view(n, self.heads, self.head_dim).transpose(0, 1)  # [H, N, d]
        key_weight = self.key.weight.view(self.heads, self.head_dim, self.width)  # [H, d, W]
        return torch.matmul(q, key_weight).transpose(0, 1)  # [N, H, W]

    def forward(
        self,
        query: torch.Tensor,
        chunks: torch.Tensor,
        weights: torch.Tensor,
        entry_mask: torch.Tensor | None = None,
        position_encoding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Read ``K`` chunks.

        Args:
            query: ``[N, W]`` one query per row.
            chunks: ``[N, K, C, W]`` the entries of each chunk.
            weights: ``[N, K]`` weight of each chunk's result.
            entry_mask: ``[N, K, C]`` bool, False where an entry may not be attended, or None.
            position_encoding: ``[C, W]`` added to the entries of every chunk (position ``c`` to
                entry ``c``), or None. It is folded into the logits and the values rather than
                added to the ``[N, K, C, W]`` entries: the same result, without that copy.

        Returns:
            ``[N, W]``.
        """
        n, k, c, w = chunks.shape
        q_in = self.fold_query(query)  # [N, H, W]
        flat = chunks.reshape(n, k * c, w)  # [N, K*C, W]
        logits = torch.bmm(q_in, flat.transpose(1, 2)).view(n, self.heads, k, c)  # [N, H, K, C]
        if position_encoding is not None:  # q . (e + p) = q . e + q . p
            logits = logits + (q_in @ position_encoding.T)[:, :, None]
        mask = None if entry_mask is None else entry_mask[:, None]  # [N, 1, K, C]
        attention = masked_softmax(logits, mask) * weights[:, None, :, None]  # [N, H, K, C]
        mixed = torch.bmm(attention.view(n, self.heads, k * c), flat)  # [N, H, W]
        if position_encoding is not None:  # sum a (e + p) = sum a e + sum a p
            mixed = mixed + attention.sum(dim=2) @ position_encoding
        return self.project_values(mixed)

    def read_shared(
        self,
        query: torch.Tensor,
        chunks: torch.Tensor,
        weights: torch.Tensor,
        position_encoding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Many queries read the same ``E`` chunks, each with its own chunk weights.

        The function of :meth:`forward` with every query given all ``E`` chunks, computed as one
        matrix product per batch row instead of a copy of the chunks per query: cheaper when the
        queries of a window share a small memory. Chunks a query does not read get weight 0.

        Args:
            query: ``[B, Q, W]``.
            chunks: ``[B, E, C, W]`` the entries of every chunk any query reads.
            weights: ``[B, Q, E]`` weight of each chunk's result for each query.
            position_encoding: ``[C, W]`` added to the entries of every chunk, or None.

        Returns:
            ``[B, Q, W]``.
        """
        b, q, w = query.shape
        _, e, c, _ = chunks.shape
        h = self.heads
        q_in = self.fold_query(query.reshape(b * q, w)).reshape(b, q * h, w)  # [B, Q*H, W]
        flat = chunks.reshape(b, e * c, w)  # [B, E*C, W]
        logits = torch.bmm(q_in, flat.transpose(1, 2)).view(b, q, h, e, c)
        if position_encoding is not None:
            logits = logits + (q_in @ position_encoding.T).view(b, q, h, 1, c)
        attention = torch.softmax(logits, dim=-1) * weights[:, :, None, :, None]
        mixed = torch.bmm(attention.view(b, q * h, e * c), flat)  # [B, Q*H, W]
        if position_encoding is not None:
            mixed = mixed + attention.sum(dim=3).view(b, q * h, c) @ position_encoding
        return self.project_values(mixed.view(b * q, h, w)).view(b, q, w)

    def project_values(self, mixed: torch.Tensor) -> torch.Tensor:
        """Attention-weighted entries per head ``[N, H, W]`` -> ``W_o concat_h(W_v^h mixed_h)``."""
        n = mixed.shape[0]
        value_weight = self.value.weight.view(self.heads, self.head_dim, self.width)  # [H, d, W]
        values = torch.matmul(mixed.transpose(0, 1), value_weight.transpose(1, 2))  # [H, N, d]
        return linear(values.transpose(0, 1).reshape(n, self.width), self.output.weight)
