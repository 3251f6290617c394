"""Spatially-Aware Transformer memories: eviction order, place grouping, the read over places."""

from __future__ import annotations

import math

import pytest
import torch

from memrl.memory import set_strategy
from memrl.memory.eviction import STRATEGIES, choose_victim
from memrl.memory.hcam import HCAMCore
from memrl.memory.sat import SATFIFOCore, SATPMCore, group_by_place

A, B_, C_, D = 0, 1, 2, 3
# A hand-made walk, one entry per step: places A A B A C C D.
WALK = [A, A, B_, A, C_, C_, D]
# Entries (their times) kept by a 3-entry memory after each step, worked out by hand from the
# official rules: a place's visits are its entries in memory; when full, fifo drops the oldest
# entry, lifo the incoming one, mvfo/lvfo the oldest entry of the place with the most/fewest
# entries among those holding any (ties: the lowest place id), then the incoming entry is written.
EXPECTED = {
    "fifo": [{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 6}],
    "lifo": [{0}, {0, 1}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}],
    # t3: A (2 entries) loses its oldest, 0; t4: A again (2 entries: 1, 3), 1; t5: A, B, C hold
    # one entry each, the tie goes to A (the lowest id), 3; t6: C holds two, its oldest 4 goes.
    "mvfo": [{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {2, 4, 5}, {2, 5, 6}],
    # t3: B (1 entry) goes; t4: A is the only place held, its oldest 0 goes; t5: C (1 entry,
    # against A's 2) loses 4, though the incoming step is C too; t6: C (1 entry) loses 5.
    "lvfo": [{0}, {0, 1}, {0, 1, 2}, {0, 1, 3}, {1, 3, 4}, {1, 3, 5}, {1, 3, 6}],
}
# Cases of the official rules that the old memrl rules (visits = runs of steps in the episode;
# the incoming entry a candidate; ties to the oldest entry) got wrong: (strategy, walk,
# capacity, the entries kept at the end).
HAND_MADE_CASES = {
    # The incoming place C is the least visited (1 entry once written, against A's 3 and B's 2):
    # LVFO still writes it and drops B's oldest entry.
    "lvfo-incoming": ("lvfo", [A, B_, A, B_, A, C_], 5, {0, 2, 3, 4, 5}),
    # The incoming place A is the most visited in the episode (3 visits) and holds no entry:
    # MVFO still writes it and drops an entry of a place in memory (B and C tie: B).
    "mvfo-incoming": ("mvfo", [A, B_, A, C_, A], 2, {3, 4}),
    # A was evicted and holds no entry: it is no candidate for LVFO, C (1 entry) loses one.
    "lvfo-empty-place": ("lvfo", [A, B_, B_, C_, C_], 3, {1, 2, 4}),
    # B and A hold one entry each: the tie goes to A, the lowest id, not to B's older entry.
    "mvfo-tie": ("mvfo", [B_, A, C_], 2, {0, 2}),
    "lvfo-tie": ("lvfo", [B_, A, C_], 2, {0, 2}),
}


def _kept(times: torch.Tensor) -> set[int]:
    return set(times[times >= 0].tolist())


def test_eviction_order_of_every_strategy_in_the_place_centric_memory():
    torch.manual_seed(0)
    core = SATPMCore(3, width=8, heads=2, top_k=1, capacity=3, num_layers=1, num_places=4)
    state = set_strategy(core.initial_state(4), torch.arange(4))  # one strategy per batch entry
    for t, place in enumerate(WALK):
        places = torch.full((4,), place)
        _, state = core(torch.randn(4, 3), state, torch.full((4,), t == 0), places)
        for b, strategy in enumerate(STRATEGIES):
            assert _kept(state["entry_time"][b]) == EXPECTED[strategy][t], (strategy, t)
            kept = state["entry_time"][b] >= 0
            assert [WALK[i] for i in state["entry_time"][b][kept].tolist()] == (
                state["entry_place"][b][kept].tolist()
            )


@pytest.mark.parametrize("case", HAND_MADE_CASES)
@pytest.mark.parametrize("core_name", ["sat-pm", "sat-fifo"])
def test_hand_made_cases_of_the_official_eviction_rules(case, core_name):
    """SAT-PM's entries and SAT-FIFO's one-step chunks, stepping and over a window."""
    strategy, walk, capacity, expected = HAND_MADE_CASES[case]
    torch.manual_seed(0)
    sizes = dict(width=8, heads=2, top_k=1, capacity=capacity, num_layers=1, num_places=4)
    if core_name == "sat-pm":
        core: SATPMCore | SATFIFOCore = SATPMCore(3, **sizes)
        times = "entry_time"
    else:
        core = SATFIFOCore(3, chunk_size=1, **sizes)
        times = "chunk_time"
    state = set_strategy(core.initial_state(1), strategy)
    x, places = torch.randn(len(walk), 1, 3), torch.tensor(walk)[:, None]
    resets = torch.zeros(len(walk), 1, dtype=torch.bool)
    resets[0] = True
    stepped = state
    for t in range(len(walk)):
        _, stepped = core(x[t], stepped, resets[t], places[t])
    _, windowed = core.forward_sequence(x, state, resets, places)
    assert _kept(stepped[times][0]) == expected
    assert _kept(windowed[times][0]) == expected


def test_eviction_order_of_every_strategy_in_the_chunked_memory():
    """SAT-FIFO evicts whole chunks; with one-step chunks the order is the entries' order."""
    torch.manual_seed(1)
    core = SATFIFOCore(
        3, width=8, heads=2, chunk_size=1, top_k=1, capacity=3, num_layers=1, num_places=4
    )
    state = set_strategy(core.initial_state(4), torch.arange(4))
    for t, place in enumerate(WALK):
        _, state = core(torch.randn(4, 3), state, torch.full((4,), t == 0), torch.full((4,), place))
        for b, strategy in enumerate(STRATEGIES):
            assert _kept(state["chunk_time"][b]) == EXPECTED[strategy][t], (strategy, t)


def test_a_chunks_place_is_where_most_of_its_steps_were():
    torch.manual_seed(2)
    core = SATFIFOCore(3, width=8, heads=2, chunk_size=3, top_k=1, capacity=2, num_places=4)
    state = core.initial_state(1)
    for t, place in enumerate([2, 1, 1, 3, 3, 0]):
        _, state = core(torch.randn(1, 3), state, torch.tensor([t == 0]), torch.tensor([place]))
    assert state["chunk_place"][0].tolist() == [1, 3]
    assert state["chunk_places"][0].tolist() == [[2, 1, 1], [3, 3, 0]]


def test_choose_victim_directly():
    times = torch.tensor([[0, 1, 2, 3]] * 4)
    places = torch.tensor([[2, 1, 1, 0]] * 4)
    victim = choose_victim(times, places, torch.arange(4), num_places=4)
    # fifo: the oldest (0); lifo: the incoming (4); mvfo: place 1 holds two entries, its oldest
    # (1); lvfo: places 0 and 2 tie at one entry (3 holds none): place 0, the lowest id (3).
    assert victim.tolist() == [0, 4, 1, 3]
    # Empty slots are neither entries nor visits: place 2's only entry is in a free slot.
    times[:, 0] = -1
    victim = choose_victim(times, places, torch.arange(4), num_places=4)
    assert victim.tolist() == [1, 4, 1, 3]


def test_entries_of_a_place_land_in_its_group_in_time_order():
    torch.manual_seed(3)
    core = SATPMCore(3, width=8, heads=2, top_k=1, capacity=16, num_layers=1, num_places=4)
    walk = [3, 3, 0, 1, 3, 0, 0, 2, 3, 1]
    state = core.initial_state(1)
    for t, place in enumerate(walk):
        _, state = core(torch.randn(1, 3), state, torch.tensor([t == 0]), torch.tensor([place]))
    index, mask = group_by_place(state["entry_place"], state["entry_time"], torch.arange(4)[None])
    for place in range(4):
        members = index[0, place][mask[0, place]]
        times = state["entry_time"][0, members].tolist()
        assert times == [t for t, p in enumerate(walk) if p == place]  # all of them, in order
        assert (state["entry_place"][0, members] == place).all()


def test_the_read_over_places_picks_the_place_whose_key_matches_the_query():
    torch.manual_seed(4)
    width = 8
    core = SATPMCore(3, width=width, heads=1, top_k=1, capacity=12, num_layers=1, num_places=4)
    memory = core.layers[0].memory
    with torch.no_grad():
        memory.query.weight.copy_(torch.eye(width))
        memory.key.weight.copy_(torch.eye(width))
    g = torch.Generator().manual_seed(5)
    entry_place = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 2, 1, 0, 3]])
    entry_time = torch.arange(12)[None]
    contents = 0.1 * torch.randn(1, 12, width, generator=g)
    for target in range(4):
        shifted = contents + 10 * torch.eye(width)[target + 2] * (entry_place == target)[..., None]
        query = 10 * torch.eye(width)[target + 2][None]
        weights, places = core.select_places(memory, query, shifted, entry_time, entry_place)
        assert places.tolist() == [[target]] and weights.tolist() == [[1.0]]
        # ... and the read attends inside that place's group only.
        encodings = _sinusoid(entry_time[0].float(), width)[None]
        got = core._read(memory, query, shifted, entry_time, entry_place, encodings)
        members = (entry_place[0] == target).nonzero().flatten()
        inner = memory.within
        entries = (
            shifted[0, members]
            + _sinusoid(entry_time[0, members].float(), width)
            + core.place_embedding(torch.tensor(target))
        )
        q = inner.query.weight @ query[0]
        a = torch.softmax((entries @ inner.key.weight.T) @ q / math.sqrt(width), dim=0)
        expected = inner.output.weight @ (a @ (entries @ inner.value.weight.T))
        torch.testing.assert_close(got[0], expected, atol=1e-5, rtol=0)


def _sinusoid(positions: torch.Tensor, width: int) -> torch.Tensor:
    i = torch.arange(width // 2, dtype=torch.float64)
    angles = positions[:, None].double() / 10000.0 ** (2 * i / width)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


@pytest.mark.parametrize("learned", [False, True])
def test_place_embeddings_are_sinusoids_of_the_place_id_fixed_or_learned(learned):
    core = SATPMCore(3, width=8, heads=2, top_k=1, num_places=5, learned_places=learned)
    table = core.place_embedding.table
    torch.testing.assert_close(table, _sinusoid(torch.arange(5).float(), 8))
    assert table.requires_grad == learned
    assert any(p is table for p in core.parameters()) == learned


def test_learned_place_embeddings_are_trained_through_the_read():
    torch.manual_seed(6)
    core = SATFIFOCore(
        3, width=8, heads=2, chunk_size=2, top_k=1, capacity=2, num_places=3, learned_places=True
    )
    x = torch.randn(6, 2, 3)
    places = torch.randint(0, 3, (6, 2))
    y, _ = core.forward_sequence(x, core.initial_state(2), torch.zeros(6, 2), places)
    y.square().sum().backward()
    assert core.place_embedding.weight.grad is not None
    assert core.place_embedding.weight.grad.abs().sum() > 0


def test_a_zero_initialised_place_embedding_starts_as_hcam_and_learns():
    torch.manual_seed(4)
    sizes = dict(width=8, num_layers=2, heads=2, chunk_size=2, capacity=3, top_k=2)
    hcam = HCAMCore(3, **sizes)
    sat = SATFIFOCore(3, num_places=4, learned_places=True, place_init="zeros", **sizes)
    sat.load_state_dict(hcam.state_dict(), strict=False)
    assert not sat.place_embedding.table.any()
    x, places = torch.randn(9, 2, 3), torch.randint(0, 4, (9, 2))
    resets = torch.zeros(9, 2, dtype=torch.bool)
    y_sat, _ = sat.forward_sequence(x, sat.initial_state(2), resets, places)
    with torch.no_grad():
        y_hcam, _ = hcam.forward_sequence(x, hcam.initial_state(2), resets)
    torch.testing.assert_close(y_sat.detach(), y_hcam, rtol=0, atol=1e-6)
    y_sat.square().sum().backward()
    assert sat.place_embedding.weight.grad.abs().sum() > 0  # places can be learnt from zero


def test_bad_place_init():
    with pytest.raises(ValueError, match=r"place_init must be one of \['sinusoid', 'zeros'\]"):
        SATPMCore(3, width=8, heads=2, top_k=1, num_places=5, place_init="random")
    with pytest.raises(ValueError, match="place_init='zeros' needs learned_places=True"):
        SATFIFOCore(3, width=8, heads=2, num_places=5, place_init="zeros")


def test_sat_fifo_with_a_zero_place_embedding_is_hcam_stepping_and_over_a_window():
    """The only difference between SAT-FIFO under FIFO and HCAM is the place embedding."""
    torch.manual_seed(9)
    sizes = dict(width=16, num_layers=2, heads=4, chunk_size=2, capacity=3, top_k=3)
    hcam = HCAMCore(5, **sizes)
    sat = SATFIFOCore(5, num_places=4, learned_places=True, **sizes)
    missing, unexpected = sat.load_state_dict(hcam.state_dict(), strict=False)
    assert missing == ["place_embedding.weight"] and not unexpected
    x, places = torch.randn(20, 3, 5), torch.randint(0, 4, (20, 3))
    resets = torch.zeros(20, 3, dtype=torch.bool)
    resets[0], resets[11, 1] = True, True  # up to 10 chunks an episode, 3 kept: eviction
    with torch.no_grad():
        sat.place_embedding.weight.zero_()
        y_hcam, _ = hcam.forward_sequence(x, hcam.initial_state(3), resets)
        y_sat, _ = sat.forward_sequence(x, sat.initial_state(3), resets, places)
        torch.testing.assert_close(y_sat, y_hcam, rtol=0, atol=1e-6)
        state_hcam, state_sat = hcam.initial_state(3), sat.initial_state(3)
        for t in range(20):
            step_hcam, state_hcam = hcam(x[t], state_hcam, resets[t])
            step_sat, state_sat = sat(x[t], state_sat, resets[t], places[t])
            torch.testing.assert_close(step_sat, step_hcam, rtol=0, atol=1e-6)
        sat.place_embedding.weight.normal_()  # and the embedding does change the read
        y_placed, _ = sat.forward_sequence(x, sat.initial_state(3), resets, places)
    assert (y_placed - y_hcam).abs().max() > 1e-3


def test_a_place_key_is_the_mean_of_its_entries_plus_its_embedding():
    torch.manual_seed(7)
    width, num_places = 8, 4
    core = SATPMCore(3, width=width, heads=2, top_k=3, capacity=10, num_places=num_places)
    memory = core.layers[0].memory
    g = torch.Generator().manual_seed(8)
    entry_place = torch.tensor([[0, 2, 2, 0, 3, 2, 0, 3, 0, 1]])
    entry_time = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, -1, -1]])  # two empty slots
    contents = torch.randn(1, 10, width, generator=g)
    query = torch.randn(1, width, generator=g)
    with torch.no_grad():
        weights, places = core.select_places(memory, query, contents, entry_time, entry_place)
        keys = torch.stack(
            [contents[0, :8][entry_place[0, :8] == p].mean(dim=0) for p in (0, 2, 3)]
        ) + _sinusoid(torch.tensor([0.0, 2.0, 3.0]), width)  # place 1 has no entry: not a candidate
        logits = (
            (memory.key.weight @ keys.T).T @ (memory.query.weight @ query[0]) / math.sqrt(width)
        )
    expected = dict(zip([0, 2, 3], torch.softmax(logits, dim=0).tolist(), strict=True))
    got = dict(zip(places[0].tolist(), weights[0].tolist(), strict=True))
    assert got.keys() == expected.keys()
    for place, weight in expected.items():
        assert got[place] == pytest.approx(weight, abs=1e-5)
