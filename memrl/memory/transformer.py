"""A Transformer-XL-style core: full causal attention over the last ``window`` steps.

Each of ``num_layers`` pre-LayerNorm layers does multi-head attention from the current step over
the keys and values of the last ``window`` steps of the episode (the current one included), then a
feed-forward block; a final LayerNorm gives the output. As in Transformer-XL the state caches each
layer's keys and values of past steps (``keys``, ``values`` ``[B, L, window, W]``, oldest first),
so a step costs one projection per layer. Positions are relative: the key of an entry of age
``a`` (steps before the query) is ``W_k (u + p(a))`` with ``p`` the sinusoidal encoding, i.e. the
cached ``W_k u`` plus ``W_k p(a)`` added at read time. Episode boundaries are masked: a query sees
an entry of age ``a`` only if the episode has at least ``a`` earlier steps.

Gradients as in Transformer-XL: ``forward_sequence`` detaches the cache a training window starts
from, and the keys and values of the window's own steps keep their gradients. Stepping does not
detach the state it is given: detach states between windows (``memrl.memory.base.detach_state``).
With ``detach_window=True`` the keys and values are computed from detached layer inputs (the
projections still learn; no gradient from a read reaches any earlier step).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn.functional import scaled_dot_product_attention

from memrl.memory.base import MemoryCore, State, detach_state
from memrl.memory.blocks import FeedForward
from memrl.memory.encoding import sinusoid_encoding


class TransformerLayer(nn.Module):
    """One pre-LayerNorm layer's weights: causal multi-head attention, then feed-forward.

    The core splits queries, keys and values into its heads, so a layer needs no head count.
    """

    def __init__(self, width: int, ff_hidden: int) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.output = nn.Linear(width, width)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = FeedForward(width, ff_hidden)


class TransformerCore(MemoryCore):
    """Full causal attention over a window of past steps, Transformer-XL cache in the state.

    Args:
        input_dim: Width of the input features.
        width: Model width (the output width).
        num_layers: Number of layers.
        heads: Attention heads; must divide ``width``.
        window: Steps attended by each query, the current one included.
        ff_multiplier: Feed-forward hidden width in multiples of ``width``.
        detach_window: Compute keys and values from detached layer inputs (no gradient from a
            read to an earlier step), instead of detaching only the window's start state.
    """

    age_encoding: torch.Tensor  # [window, W] buffer

    def __init__(
        self,
        input_dim: int,
        width: int = 128,
        num_layers: int = 2,
        heads: int = 4,
        window: int = 64,
        ff_multiplier: int = 4,
        detach_window: bool = False,
    ) -> None:
        for name, value in (
            ("width", width),
            ("num_layers", num_layers),
            ("heads", heads),
            ("window", window),
            ("ff_multiplier", ff_multiplier),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if width % heads:
            raise ValueError(f"heads must divide width={width}, got heads={heads}")
        super().__init__(input_dim, width)
        self.width = width
        self.num_layers = num_layers
        self.heads = heads
        self.head_dim = width // heads
        self.window = window
        self.detach_window = detach_window
        self.input = nn.Linear(input_dim, width)
        self.layers = nn.ModuleList(
            TransformerLayer(width, ff_multiplier * width) for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(width)
        self.register_buffer(
            "age_encoding", sinusoid_encoding(torch.arange(window), width), persistent=False
        )

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """Empty caches for ``batch_size`` fresh episodes."""
        shape = (batch_size, self.num_layers, self.window, self.width)
        return {
            "keys": torch.zeros(shape, device=device),
            "values": torch.zeros(shape, device=device),
            "steps": torch.zeros(batch_size, dtype=torch.int64, device=device),
        }

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, W]`` -> ``[B, H, S, d]``."""
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def _age_keys(self, layer: TransformerLayer) -> torch.Tensor:
        """``W_k p(a)`` for ages ``a = 0 .. window - 1``: ``[window, W]``."""
        return self.age_encoding @ layer.key.weight.T

    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step: ``x`` ``[B, input_dim]`` -> ``y`` ``[B, width]`` and the next state."""
        b = x.shape[0]
        earlier = state["steps"].masked_fill(reset.to(torch.bool), 0)  # [B] steps before this one
        ages = torch.arange(self.window - 1, -1, -1, device=x.device)  # age of each cache slot
        visible = (ages <= earlier[:, None])[:, None, None]  # [B, 1, 1, window]
        h = self.input(x)  # [B, W]
        keys, values = [], []
        for i, layer in enumerate(cast(list[TransformerLayer], list(self.layers))):
            u = layer.norm_attention(h)
            stored = u.detach() if self.detach_window else u
            layer_keys = torch.cat([state["keys"][:, i, 1:], layer.key(stored)[:, None]], dim=1)
            layer_values = torch.cat(
                [state["values"][:, i, 1:], layer.value(stored)[:, None]], dim=1
            )
            attended = scaled_dot_product_attention(
                self._heads(layer.query(u)[:, None]),  # [B, H, 1, d]
                self._heads(layer_keys + self._age_keys(layer).flip(0)),  # [B, H, window, d]
                self._heads(layer_values),
                attn_mask=visible,
            )  # [B, H, 1, d]
            h = h + layer.output(attended.reshape(b, self.width))
            h = h + layer.ff(layer.norm_ff(h))
            keys.append(layer_keys)
            values.append(layer_values)
        new_state = {
            "keys": torch.stack(keys, dim=1),
            "values": torch.stack(values, dim=1),
            "steps": earlier + 1,
        }
        return self.norm_out(h), new_state

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window ``[T, B, input_dim]`` -> ``[T, B, width]`` in one attention call per layer.

        The given state is detached; the window's own keys and values keep their gradients
        (unless ``detach_window``).
        """
        state = detach_state(state)
        t_len, b, _ = x.shape
        window, device = self.window, x.device
        steps = torch.arange(t_len, device=device)  # [T]
        last_reset = torch.where(resets.to(torch.bool), steps[:, None], -1).cummax(0).values.T
        earlier = torch.where(
            last_reset < 0, state["steps"][:, None] + steps, steps - last_reset
        )  # [B, T] steps before each step in its episode
        key_position = torch.arange(-window, t_len, device=device)  # cache slots, then the window
        age = steps[:, None] - key_position  # [T, window + T]
        visible = (age >= 0) & (age < window) & (age[None] <= earlier[..., None])  # [B, T, W+T]
        age_index = age.clamp(0, window - 1).expand(b, self.heads, t_len, window + t_len)
        h = self.input(x).transpose(0, 1)  # [B, T, W]
        keys, values = [], []
        for i, layer in enumerate(cast(list[TransformerLayer], list(self.layers))):
            u = layer.norm_attention(h)
            stored = u.detach() if self.detach_window else u
            # [B, window + T, W]: the cached steps, then the window's
            layer_keys = torch.cat([state["keys"][:, i], layer.key(stored)], dim=1)
            layer_values = torch.cat([state["values"][:, i], layer.value(stored)], dim=1)
            query = self._heads(layer.query(u))  # [B, H, T, d]
            age_keys = self._age_keys(layer).view(window, self.heads, self.head_dim)
            age_logits = torch.einsum("bhtd,ahd->bhta", query, age_keys) / math.sqrt(self.head_dim)
            bias = age_logits.gather(3, age_index).masked_fill(~visible[:, None], -math.inf)
            attended = scaled_dot_product_attention(
                query, self._heads(layer_keys), self._heads(layer_values), attn_mask=bias
            )  # [B, H, T, d]
            h = h + layer.output(attended.transpose(1, 2).reshape(b, t_len, self.width))
            h = h + layer.ff(layer.norm_ff(h))
            keys.append(layer_keys[:, -window:])
            values.append(layer_values[:, -window:])
        new_state = {
            "keys": torch.stack(keys, dim=1),
            "values": torch.stack(values, dim=1),
            "steps": earlier[:, -1] + 1,
        }
        return self.norm_out(h).transpose(0, 1), new_state
