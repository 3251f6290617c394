"""The one interface every memory core implements, so agents and benchmarks can swap them.

A core maps a stream of feature vectors to a stream of outputs while carrying a state:

- stepping form, for acting: ``core(x_t, state, reset) -> (y_t, state)`` with ``x_t`` ``[B, D]``;
- sequence form, for training over stored windows: ``core.forward_sequence(x, state, resets)``
  with ``x`` ``[T, B, D]``, starting from the state the window started from.

``reset`` (``[B]`` or ``[T, B]`` bool) marks the first step of an episode: the core must forget
everything before it (no attention, recurrence or memory read across episode boundaries) before
it processes that step. ``places`` (``[B]`` or ``[T, B]`` int64, optional) is the current place
(e.g. RoomBallet's room id) for place-aware cores; others ignore it.

A state is a dict of tensors whose first dimension is the batch, so that rollout storage can
index, copy and concatenate it without knowing the core (``index_state``, ``detach_state``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

State = dict[str, torch.Tensor]
"""A core's recurrent state: tensors with the batch first."""


class MemoryCore(nn.Module, ABC):
    """Base class of memory cores.

    Args:
        input_dim: Width of the features fed in at each step.
        output_dim: Width of the output at each step.
    """

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        if input_dim < 1 or output_dim < 1:
            raise ValueError(
                f"input_dim and output_dim must be >= 1, got {input_dim} and {output_dim}"
            )
        self.input_dim = input_dim
        self.output_dim = output_dim

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        """The state of ``batch_size`` fresh episodes."""

    @abstractmethod
    def forward(
        self,
        x: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step: ``x`` ``[B, input_dim]`` -> ``y`` ``[B, output_dim]`` and the next state."""

    def forward_sequence(
        self,
        x: torch.Tensor,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """A window: ``x`` ``[T, B, input_dim]`` -> ``y`` ``[T, B, output_dim]``, final state.

        The default steps through time; cores override it where a faster exact form exists. It
        must equal stepping one step at a time (the tests check every core).
        """
        outputs = []
        for t in range(x.shape[0]):
            y, state = self(x[t], state, resets[t], None if places is None else places[t])
            outputs.append(y)
        return torch.stack(outputs), state


def index_state(state: State, index: torch.Tensor | slice) -> State:
    """The state of the batch entries ``index``."""
    return {key: value[index] for key, value in state.items()}


def detach_state(state: State) -> State:
    """The state without its autograd history (what rollout storage keeps)."""
    return {key: value.detach() for key, value in state.items()}


def concat_states(states: list[State]) -> State:
    """Join states of several batches along the batch dimension."""
    return {key: torch.cat([s[key] for s in states]) for key in states[0]}
