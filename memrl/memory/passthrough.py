"""The memory-free baseline: each step's output depends on that step's input only.

With ``width`` it is a two-layer MLP (Linear, ReLU, Linear) to ``width`` features, the same size of
head the other cores feed; with ``width=None`` it is the identity. Its state is empty.
"""

from __future__ import annotations

import torch
from torch import nn

from memrl.memory.base import MemoryCore, State


class NoMemoryCore(MemoryCore):
    """No memory: ``y_t = MLP(x_t)`` (or ``x_t``), state ``{}``.

    Args:
        input_dim: Width of the input features.
        width: Output width of the MLP, or None for the identity (output width ``input_dim``).
    """

    def __init__(self, input_dim: int, width: int | None = 128) -> None:
        if width is not None and (not isinstance(width, int) or width < 1):
            raise ValueError(f"width must be an integer >= 1 or None, got {width!r}")
        super().__init__(input_dim, input_dim if width is None else width)
        self.net: nn.Module = (
            nn.Identity()
            if width is None
            else nn.Sequential(nn.Linear(input_dim, width), nn.ReLU(), nn.Linear(width, width))
        )

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """The empty state."""
        return {}

    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """``x`` ``[B, input_dim]`` -> ``y`` ``[B, output_dim]``; the state stays empty."""
        out: torch.Tensor = self.net(x)
        return out, state

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """``x`` ``[T, B, input_dim]`` -> ``[T, B, output_dim]`` in one call."""
        out: torch.Tensor = self.net(x)
        return out, state
