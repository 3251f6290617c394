"""The memory-free core: an MLP of the current step, or the identity."""

from __future__ import annotations

import torch

from memrl.memory import make_core


def test_with_a_width_it_is_linear_relu_linear_of_the_step_alone():
    torch.manual_seed(0)
    core = make_core("none", 5, width=6)
    first, second = core.net[0], core.net[2]
    x = torch.randn(4, 5)
    y, state = core(x, core.initial_state(4), torch.zeros(4, dtype=torch.bool))
    torch.testing.assert_close(y, second(torch.relu(first(x))))
    assert state == {} and core.output_dim == 6


def test_without_a_width_it_is_the_identity():
    core = make_core("none", 5, width=None)
    x = torch.randn(3, 4, 5)
    y, _ = core.forward_sequence(x, core.initial_state(4), torch.zeros(3, 4, dtype=torch.bool))
    assert core.output_dim == 5 and torch.equal(y, x)
    assert not list(core.parameters())
