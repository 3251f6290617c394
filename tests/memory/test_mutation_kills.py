"""Behaviour pinned down by mutation testing: cases the other memory tests left open."""

from __future__ import annotations

import inspect

import pytest
import torch

from memrl.memory.allocator import AdaptiveMemoryAllocator
from memrl.memory.base import MemoryCore
from memrl.memory.blocks import FeedForward, masked_softmax
from memrl.memory.encoding import PlaceEmbedding, sinusoid_encoding
from memrl.memory.eviction import STRATEGIES, first_true, strategy_ids
from memrl.memory.sat import SATPMCore


def test_first_true_works_along_the_last_dimension_of_any_rank():
    mask = torch.tensor([False, True, True])
    assert first_true(mask).item() == 1
    # [2, 2, 3]: the answer is per row of the last dimension, not along dimension 1.
    mask = torch.tensor(
        [[[False, False, True], [True, True, False]], [[False, True, False], [False, False, False]]]
    )
    assert first_true(mask).tolist() == [[2, 0], [1, 0]]


def test_strategy_ids_are_int64_whatever_the_given_integer_dtype():
    ids = strategy_ids(torch.tensor([1, 3], dtype=torch.int32), 2)
    assert ids.dtype == torch.int64
    assert ids.tolist() == [1, 3]
    assert strategy_ids("lvfo", 2).dtype == torch.int64


# -- documented defaults -------------------------------------------------------------------------

# The cores' defaults: tests/memory/test_cores.py::test_default_options_are_the_documented_ones.


def test_allocator_defaults_are_the_documented_ones():
    parameters = inspect.signature(AdaptiveMemoryAllocator.__init__).parameters
    defaults = {key: p.default for key, p in parameters.items()}
    assert defaults["num_strategies"] == len(STRATEGIES)
    assert defaults["hidden"] == 64
    assert defaults["epsilon_start"] == 1.0
    assert defaults["epsilon_end"] == 0.2
    assert defaults["epsilon_decisions"] == 200_000


def test_the_place_centric_core_builds_what_it_is_given():
    torch.manual_seed(0)
    core = SATPMCore(5, width=8, num_layers=3, heads=2, top_k=2, capacity=5, num_places=3)
    state = core.initial_state(2)
    assert state["contents"].shape == (2, 3, 5, 8)
    assert len(core.layers) == 3 and core.place_embedding.num_places == 3
    y, _ = core(torch.randn(2, 5), state, torch.ones(2, dtype=torch.bool), torch.tensor([0, 2]))
    assert y.shape == (2, 8)


@pytest.mark.parametrize(
    "bad", ["width", "num_layers", "heads", "top_k", "capacity", "ff_multiplier", "num_places"]
)
def test_the_place_centric_core_rejects_a_size_below_one(bad):
    sizes = dict(width=8, num_layers=1, heads=2, top_k=1, capacity=4, ff_multiplier=1)
    sizes["num_places"] = 3
    sizes[bad] = 0
    with pytest.raises(ValueError, match=bad):
        SATPMCore(5, **sizes)


# -- the default window: stepping ------------------------------------------------------------------


class _CountingCore(MemoryCore):
    """Adds up its inputs (and the place ids) within an episode; no forward_sequence of its own."""

    def initial_state(self, batch_size, device="cpu"):
        return {"total": torch.zeros(batch_size, self.input_dim, device=device)}

    def forward(self, x, state, reset, places=None):
        total = torch.where(reset[:, None], 0.0, state["total"]) + x
        if places is not None:
            total = total + places[:, None]
        return total * 2, {"total": total}


@pytest.mark.parametrize("with_places", [False, True])
def test_the_default_window_equals_stepping(with_places):
    core = _CountingCore(3, 3)
    assert core.input_dim == 3 and core.output_dim == 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, generator=g)  # T=5 != B=2
    resets = torch.tensor([[1, 1], [0, 0], [0, 1], [0, 0], [1, 0]], dtype=torch.bool)
    places = torch.randint(0, 4, (5, 2), generator=g) if with_places else None
    start = {"total": torch.ones(2, 3)}
    y, final = core.forward_sequence(x, start, resets, places)
    state, expected = start, []
    for t in range(5):
        out, state = core(x[t], state, resets[t], None if places is None else places[t])
        expected.append(out)
    assert y.shape == (5, 2, 3)
    torch.testing.assert_close(y, torch.stack(expected))
    torch.testing.assert_close(final["total"], state["total"])
    if with_places:  # the places change the outputs, so they must have been passed on
        assert not torch.allclose(y, core.forward_sequence(x, start, resets)[0])


@pytest.mark.parametrize("dims", [(0, 3), (3, 0)])
def test_a_core_needs_positive_widths(dims):
    with pytest.raises(ValueError, match="input_dim and output_dim"):
        _CountingCore(*dims)


# -- building blocks -------------------------------------------------------------------------------


def test_sinusoids_use_the_transformer_timescale_of_ten_thousand():
    positions = torch.tensor([0.0, 7.0, 300.0])
    i = torch.arange(4, dtype=torch.float64)
    angles = positions[:, None].double() / 10000.0 ** (2 * i / 8)
    expected = torch.cat([angles.sin(), angles.cos()], dim=1).float()
    torch.testing.assert_close(sinusoid_encoding(positions, 8), expected)


def test_masked_softmax_is_stable_per_row_for_large_logits():
    logits = torch.tensor([[1000.0, 999.0, 998.0], [0.0, 1.0, -1.0]])
    expected = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(masked_softmax(logits, None), expected)
    torch.testing.assert_close(masked_softmax(logits, torch.ones(2, 3, dtype=torch.bool)), expected)


def test_a_fixed_place_embedding_is_the_default_and_has_no_parameters():
    assert list(PlaceEmbedding(3, 8).parameters()) == []


def test_the_feed_forward_block_is_not_affine():
    torch.manual_seed(0)
    ff = FeedForward(4, 16)
    a, b = torch.randn(4), torch.randn(4)
    with torch.no_grad():
        gap = ff(a) + ff(b) - ff(torch.zeros(4)) - ff(a + b)
    assert gap.abs().max() > 1e-3
