"""The transformer core's reach: causal, over the last ``window`` steps, within its episode."""

from __future__ import annotations

import pytest
import torch

from memrl.memory.transformer import TransformerCore

WINDOW, STEPS, RESET_AT = 4, 14, 9


def _outputs(core: TransformerCore, x: torch.Tensor, resets: torch.Tensor, form: str):
    state = core.initial_state(1)
    if form == "window":
        return core.forward_sequence(x, state, resets)[0][:, 0]
    outputs = []
    for t in range(len(x)):
        y, state = core(x[t], state, resets[t])
        outputs.append(y[0])
    return torch.stack(outputs)


@pytest.mark.parametrize("form", ["step", "window"])
def test_a_step_reaches_exactly_the_next_window_steps_of_its_episode(form):
    """With one layer, changing the input of step ``s`` changes the outputs of steps
    ``s .. s + window - 1`` of the same episode, and no others."""
    torch.manual_seed(0)
    core = TransformerCore(5, width=8, num_layers=1, heads=2, window=WINDOW)
    x = torch.randn(STEPS, 1, 5, generator=torch.Generator().manual_seed(1))
    resets = torch.zeros(STEPS, 1, dtype=torch.bool)
    resets[[0, RESET_AT]] = True
    with torch.no_grad():
        base = _outputs(core, x, resets, form)
        for s in range(STEPS):
            changed_x = x.clone()
            changed_x[s] += 1.0
            changed = (_outputs(core, changed_x, resets, form) - base).abs().amax(dim=1) > 1e-6
            episode_end = RESET_AT if s < RESET_AT else STEPS
            reach = [s <= t < min(s + WINDOW, episode_end) for t in range(STEPS)]
            assert changed.tolist() == reach, s


@pytest.mark.parametrize("form", ["step", "window"])
def test_positions_are_relative_so_order_matters_but_the_episode_clock_does_not(form):
    torch.manual_seed(2)
    core = TransformerCore(5, width=8, num_layers=1, heads=2, window=WINDOW)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 1, 5, generator=g)
    resets = torch.zeros(10, 1, dtype=torch.bool)
    resets[0] = True
    with torch.no_grad():
        last = _outputs(core, x, resets, form)[-1]
        swapped = x.clone()
        swapped[[7, 8]] = x[[8, 7]]  # two steps inside the last step's window change places
        assert (_outputs(core, swapped, resets, form)[-1] - last).abs().max() > 1e-3
        # The same last `window` steps later in a longer episode: the same output.
        longer = torch.cat([torch.randn(5, 1, 5, generator=g), x])
        later = _outputs(
            core, longer, torch.cat([resets, torch.zeros(5, 1, dtype=torch.bool)]), form
        )
        torch.testing.assert_close(later[-1], last, atol=1e-5, rtol=0)
