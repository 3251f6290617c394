"""Recurrent cores: LSTM and GRU, the baselines memory benchmarks keep finding strong.

The state is the recurrent state with the batch first (``h`` and, for the LSTM, ``c``:
``[B, num_layers, width]``). A reset zeroes the state of its batch entry before the step.
``forward_sequence`` runs ``torch.nn.LSTM``/``GRU`` over the stretches of the window between
resets (zeroing the state of the entries that reset where a stretch begins): one fused call per
stretch instead of one per step, and the same result as stepping.
"""

from __future__ import annotations

import torch
from torch import nn

from memrl.memory.base import MemoryCore, State


class _RecurrentCore(MemoryCore):
    """Shared code of the LSTM and GRU cores; subclasses set ``rnn`` and ``state_names``."""

    state_names: tuple[str, ...] = ()
    rnn: nn.LSTM | nn.GRU

    def __init__(self, input_dim: int, width: int, num_layers: int) -> None:
        for name, value in (("width", width), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        super().__init__(input_dim, width)
        self.width = width
        self.num_layers = num_layers

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """Zero recurrent state for ``batch_size`` fresh episodes."""
        shape = (batch_size, self.num_layers, self.width)
        return {name: torch.zeros(shape, device=device) for name in self.state_names}

    def _run(
        self, x: torch.Tensor, state: State, reset: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        """Run the RNN over ``x`` ``[T, B, D]`` after zeroing the state where ``reset`` ``[B]``."""
        keep = (~reset.to(torch.bool)).to(x.dtype)[:, None, None]  # [B, 1, 1]
        hidden = tuple(
            (state[name] * keep).transpose(0, 1).contiguous() for name in self.state_names
        )
        rnn_state = hidden if len(hidden) > 1 else hidden[0]
        y, rnn_state = self.rnn(x, rnn_state)
        final = rnn_state if isinstance(rnn_state, tuple) else (rnn_state,)
        return y, {name: s.transpose(0, 1) for name, s in zip(self.state_names, final, strict=True)}

    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step: ``x`` ``[B, input_dim]`` -> ``y`` ``[B, width]`` and the next state."""
        y, state = self._run(x[None], state, reset)
        return y[0], state

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window ``[T, B, input_dim]`` -> ``[T, B, width]``: one RNN call per stretch."""
        resets = resets.to(torch.bool)
        t_len = x.shape[0]
        cuts = [0, *(torch.nonzero(resets[1:].any(dim=1)).flatten() + 1).tolist(), t_len]
        outputs = []
        for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
            y, state = self._run(x[start:stop], state, resets[start])
            outputs.append(y)
        return torch.cat(outputs), state


class LSTMCore(_RecurrentCore):
    """An LSTM core (``torch.nn.LSTM``); state ``h``, ``c`` ``[B, num_layers, width]``.

    Args:
        input_dim: Width of the input features.
        width: Hidden size (the output width).
        num_layers: Stacked LSTM layers.
    """

    state_names = ("h", "c")

    def __init__(self, input_dim: int, width: int = 128, num_layers: int = 1) -> None:
        super().__init__(input_dim, width, num_layers)
        self.rnn = nn.LSTM(input_dim, width, num_layers)


class GRUCore(_RecurrentCore):
    """A GRU core (``torch.nn.GRU``); state ``h`` ``[B, num_layers, width]``.

    Args:
        input_dim: Width of the input features.
        width: Hidden size (the output width).
        num_layers: Stacked GRU layers.
    """

    state_names = ("h",)

    def __init__(self, input_dim: int, width: int = 128, num_layers: int = 1) -> None:
        super().__init__(input_dim, width, num_layers)
        self.rnn = nn.GRU(input_dim, width, num_layers)
