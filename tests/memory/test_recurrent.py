"""LSTM and GRU cores: the state is torch's recurrent state, one per layer, batch first."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memrl.memory import make_core


@pytest.mark.parametrize(
    ("name", "rnn", "names"), [("lstm", nn.LSTM, ("h", "c")), ("gru", nn.GRU, ("h",))]
)
def test_a_stacked_core_is_torchs_rnn_with_the_batch_first_in_the_state(name, rnn, names):
    torch.manual_seed(0)
    core = make_core(name, 5, width=6, num_layers=3)
    assert isinstance(core.rnn, rnn) and core.rnn.num_layers == 3
    x = torch.randn(7, 2, 5)
    state = core.initial_state(2)
    assert all(state[key].shape == (2, 3, 6) for key in names)
    y, final = core.forward_sequence(x, state, torch.zeros(7, 2, dtype=torch.bool))
    expected, torch_state = core.rnn(x)  # torch's own run from a zero state
    torch_state = torch_state if isinstance(torch_state, tuple) else (torch_state,)
    torch.testing.assert_close(y, expected)
    for key, value in zip(names, torch_state, strict=True):
        torch.testing.assert_close(final[key], value.transpose(0, 1))  # [B, layers, width]
