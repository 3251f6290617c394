"""How far gradients reach through the attention cores' memory in a training window.

Default (``detach_window=False``, Transformer-XL's convention): what a window writes keeps its
gradients, so a readout late in the window sends gradient to every earlier step of the window it
reads; the state the window starts from is detached, so nothing reaches the previous window.
``detach_window=True``: every entry is detached when written, and a readout trains only its own
step. Both ways, stepping equals ``forward_sequence`` in outputs and gradients.
"""

from __future__ import annotations

import pytest
import torch

from memrl.memory import detach_state, make_core, set_strategy

INPUT_DIM = 5
PREVIOUS, WINDOW = 6, 12  # steps of the previous window and of the window, one episode
# Every earlier step of the episode the last step can read is read with a nonzero weight: HCAM
# and SAT-FIFO read all their chunks (top_k = capacity), SAT-PM holds the last 16 steps in one
# place (every step in place 0), the transformer attends over the last 16 steps.
CORES = {
    "transformer": {"width": 8, "heads": 2, "window": 16, "num_layers": 2},
    "hcam": {"width": 8, "heads": 2, "chunk_size": 3, "top_k": 4, "capacity": 4, "num_layers": 2},
    "sat-fifo": {
        "width": 8,
        "heads": 2,
        "chunk_size": 3,
        "top_k": 4,
        "capacity": 4,
        "num_layers": 2,
        "num_places": 4,
    },
    "sat-pm": {
        "width": 8,
        "heads": 2,
        "top_k": 1,
        "capacity": 16,
        "num_layers": 2,
        "num_places": 4,
    },
}


def _core(name: str, detach_window: bool):
    torch.manual_seed(0)
    return make_core(name, INPUT_DIM, **CORES[name], detach_window=detach_window)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of the previous window and of the window (leaves that require gradients)."""
    g = torch.Generator().manual_seed(1)
    x_previous = torch.randn(PREVIOUS, 2, INPUT_DIM, generator=g, requires_grad=True)
    x = torch.randn(WINDOW, 2, INPUT_DIM, generator=g, requires_grad=True)
    return x_previous, x


def _two_windows(
    core, x_previous: torch.Tensor, x: torch.Tensor, strategy: str = "fifo"
) -> torch.Tensor:
    """The window's outputs, after the previous window in the same episode.

    The window starts from the previous window's final state as ``forward_sequence`` left it,
    with its autograd history (not detached by the caller).
    """
    resets = torch.zeros(PREVIOUS + WINDOW, 2, dtype=torch.bool)
    resets[0] = True
    places = torch.zeros(PREVIOUS + WINDOW, 2, dtype=torch.int64)
    state = core.initial_state(2)
    if "strategy" in state:
        state = set_strategy(state, strategy)
    _, state = core.forward_sequence(x_previous, state, resets[:PREVIOUS], places[:PREVIOUS])
    y, _ = core.forward_sequence(x, state, resets[PREVIOUS:], places[PREVIOUS:])
    return y


def _late_readout(y: torch.Tensor) -> torch.Tensor:
    weights = torch.randn(y.shape[1:], generator=torch.Generator().manual_seed(2))
    return (y[-1] * weights).sum()


def _per_step(grad: torch.Tensor | None) -> torch.Tensor:
    """``|grad|`` summed per step (zeros for no gradient at all): ``[T]``."""
    return torch.zeros(1) if grad is None else grad.abs().sum(dim=(1, 2))


@pytest.mark.parametrize("name", sorted(CORES))
def test_a_late_readout_trains_every_earlier_step_of_its_window(name):
    core = _core(name, detach_window=False)
    x_previous, x = _inputs()
    _late_readout(_two_windows(core, x_previous, x)).backward()
    assert (_per_step(x.grad) > 0).all()  # all 12 steps, the first one included
    assert not _per_step(x_previous.grad).any()  # the window's start state is detached


@pytest.mark.parametrize("name", ["sat-fifo", "sat-pm"])
def test_a_late_readout_trains_earlier_steps_under_a_spatial_strategy(name):
    """SAT cores step through windows under strategies other than FIFO: the same reach."""
    core = _core(name, detach_window=False)
    x_previous, x = _inputs()
    _late_readout(_two_windows(core, x_previous, x, strategy="lvfo")).backward()
    assert (_per_step(x.grad) > 0).all()
    assert not _per_step(x_previous.grad).any()


@pytest.mark.parametrize("name", sorted(CORES))
def test_with_detach_window_a_readout_trains_only_its_own_step(name):
    core = _core(name, detach_window=True)
    x_previous, x = _inputs()
    _late_readout(_two_windows(core, x_previous, x)).backward()
    per_step = _per_step(x.grad)
    assert per_step[-1] > 0
    assert not per_step[:-1].any()
    assert not _per_step(x_previous.grad).any()


@pytest.mark.parametrize("name", sorted(CORES))
def test_the_previous_window_is_read_though_it_gets_no_gradient(name):
    """The zero gradient to the previous window is the detach, not a memory that forgot it."""
    core = _core(name, detach_window=False)
    x_previous, x = _inputs()
    with torch.no_grad():
        y = _two_windows(core, x_previous, x)
        y_changed = _two_windows(core, x_previous + 1.0, x)
    assert (y_changed[-1] - y[-1]).abs().max() > 1e-4


@pytest.mark.parametrize("detach_window", [False, True])
@pytest.mark.parametrize("name", sorted(CORES))
def test_stepping_has_the_outputs_and_gradients_of_a_window(name, detach_window):
    """Acting step by step and replaying the window agree, values and gradients, both ways."""
    core = _core(name, detach_window)
    g = torch.Generator().manual_seed(3)
    x_previous = torch.randn(PREVIOUS, 2, INPUT_DIM, generator=g)
    x = torch.randn(WINDOW, 2, INPUT_DIM, generator=g)
    resets = torch.rand(PREVIOUS + WINDOW, 2, generator=g) < 0.1
    resets[0] = True
    places = torch.randint(0, 4, (PREVIOUS + WINDOW, 2), generator=g)
    with torch.no_grad():
        _, state = core.forward_sequence(
            x_previous, core.initial_state(2), resets[:PREVIOUS], places[:PREVIOUS]
        )
    weights = torch.randn(WINDOW, 2, core.output_dim, generator=g)
    results = []
    for form in ("step", "window"):
        core.zero_grad()
        xg = x.clone().requires_grad_(True)
        if form == "step":
            stepped, outputs = detach_state(state), []
            for t in range(WINDOW):
                y_t, stepped = core(xg[t], stepped, resets[PREVIOUS + t], places[PREVIOUS + t])
                outputs.append(y_t)
            y = torch.stack(outputs)
        else:
            y, _ = core.forward_sequence(xg, state, resets[PREVIOUS:], places[PREVIOUS:])
        (y * weights).sum().backward()
        grads = [p.grad for p in core.parameters() if p.grad is not None]
        results.append((y.detach(), xg.grad, grads))
    (y_step, x_grad_step, grads_step), (y_window, x_grad_window, grads_window) = results
    torch.testing.assert_close(y_window, y_step, atol=1e-5, rtol=0)
    torch.testing.assert_close(x_grad_window, x_grad_step, atol=1e-5, rtol=1e-4)
    assert len(grads_window) == len(grads_step)
    for window_grad, step_grad in zip(grads_window, grads_step, strict=True):
        torch.testing.assert_close(window_grad, step_grad, atol=1e-5, rtol=1e-4)
