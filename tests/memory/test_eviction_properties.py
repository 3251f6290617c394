"""Property tests of the eviction strategies: random walks over places, random capacities.

The bookkeeping of SAT-PM (``SATPMCore._write``: one entry per step, eviction when full) is run
on walks drawn by hypothesis, one batch entry per strategy, and checked against invariants and
against a plain-Python model of the official SAT code's rule (its ``ballet_environment_v2.py``):
a place's visits are the entries of it the memory holds; when the memory is full, FIFO drops the
oldest entry, LIFO the incoming one, MVFO/LVFO the oldest entry of the place holding the most/
fewest entries among the places holding any (ties: the lowest place id), before the incoming
entry is written.
"""

from __future__ import annotations

from collections import Counter

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memrl.memory import set_strategy
from memrl.memory.eviction import STRATEGIES, place_counts
from memrl.memory.sat import SATFIFOCore, SATPMCore

PLACES = 4
FIFO, LIFO, MVFO, LVFO = (STRATEGIES.index(s) for s in ("fifo", "lifo", "mvfo", "lvfo"))

walks = st.lists(st.integers(0, PLACES - 1), min_size=1, max_size=20)
capacities = st.integers(1, 6)
FAST = settings(max_examples=40, deadline=None)


def _kept_after_each_step(walk: list[int], capacity: int, reset_at: int | None = None):
    """Per step, the (time, place) entries SAT-PM holds under each strategy, and the visits of
    every place (entries held) under FIFO."""
    core = SATPMCore(3, width=4, heads=1, top_k=1, capacity=capacity, num_layers=1, num_places=4)
    state = set_strategy(core.initial_state(len(STRATEGIES)), torch.arange(len(STRATEGIES)))
    history = []
    for t, place in enumerate(walk):
        reset = torch.full((len(STRATEGIES),), t in (0, reset_at))
        state, _ = core._write(state, reset, torch.full((len(STRATEGIES),), place))
        times, entry_places = state["entry_time"].tolist(), state["entry_place"].tolist()
        kept = [
            sorted(
                (time, p) for time, p in zip(times[b], entry_places[b], strict=True) if time >= 0
            )
            for b in range(len(STRATEGIES))
        ]
        visits = place_counts(state["entry_time"], state["entry_place"], PLACES)
        history.append((kept, visits[FIFO].tolist()))
    return history


def _model(walk: list[int], capacity: int, strategy: int) -> list[list[int]]:
    """The times kept after each step, as the official code's ``sfu`` keeps them (episode
    starting at step 0): a count of entries per place, +1 on a write, -1 on an eviction."""
    memory: dict[int, list[int]] = {place: [] for place in range(PLACES)}  # times, oldest first
    count = [0] * PLACES
    out = []
    for t, place in enumerate(walk):
        if sum(count) < capacity:
            memory[place].append(t)
            count[place] += 1
        elif strategy == LIFO:
            pass  # the incoming entry is dropped
        elif strategy == FIFO:
            oldest = min(times[0] for times in memory.values() if times)
            memory[walk[oldest]].remove(oldest)
            count[walk[oldest]] -= 1
            memory[place].append(t)
            count[place] += 1
        else:  # MVFO, LVFO: numpy's argmax/argmin over the counts, empty places masked
            if strategy == LVFO:
                masked = [c if c > 0 else 1000 for c in count]
                chosen = masked.index(min(masked))
            else:
                masked = [c if c > 0 else -1000 for c in count]
                chosen = masked.index(max(masked))
            memory[chosen].pop(0)
            count[chosen] -= 1
            memory[place].append(t)
            count[place] += 1
        out.append(sorted(time for times in memory.values() for time in times))
    return out


@FAST
@given(walk=walks, capacity=capacities)
def test_every_strategy_keeps_a_full_memory_of_its_own_entries(walk, capacity):
    for t, (kept, _) in enumerate(_kept_after_each_step(walk, capacity)):
        for entries in kept:
            assert len(entries) == min(t + 1, capacity)  # full once full, never more
            assert all(walk[time] == place for time, place in entries)  # each entry's own place


@FAST
@given(walk=walks, capacity=capacities)
def test_fifo_keeps_the_latest_and_lifo_the_earliest(walk, capacity):
    for t, (kept, _) in enumerate(_kept_after_each_step(walk, capacity)):
        times = {s: [time for time, _ in kept[s]] for s in (FIFO, LIFO)}
        assert times[FIFO] == list(range(max(0, t + 1 - capacity), t + 1))
        assert times[LIFO] == list(range(min(t + 1, capacity)))


@FAST
@given(walk=walks, capacity=capacities)
def test_every_strategy_keeps_what_the_written_out_rule_keeps(walk, capacity):
    history = _kept_after_each_step(walk, capacity)
    for strategy in range(len(STRATEGIES)):
        expected = _model(walk, capacity, strategy)
        got = [[time for time, _ in kept[strategy]] for kept, _ in history]
        assert got == expected, STRATEGIES[strategy]


@FAST
@given(walk=walks, capacity=capacities)
def test_the_spatial_strategies_never_drop_the_incoming_entry(walk, capacity):
    for t, (kept, _) in enumerate(_kept_after_each_step(walk, capacity)):
        for strategy in (MVFO, LVFO):
            assert (t, walk[t]) in kept[strategy]


@FAST
@given(walk=walks, capacity=capacities)
def test_visits_count_the_entries_each_place_holds(walk, capacity):
    for t, (kept, visits) in enumerate(_kept_after_each_step(walk, capacity)):
        held = Counter(place for _, place in kept[FIFO])
        assert visits == [held[p] for p in range(PLACES)]
        assert visits == [walk[max(0, t + 1 - capacity) : t + 1].count(p) for p in range(PLACES)]


@FAST
@given(walk=st.lists(st.integers(0, PLACES - 1), min_size=2, max_size=20), data=st.data())
def test_after_a_reset_the_memory_holds_only_the_new_episode(walk, data):
    reset_at = data.draw(st.integers(1, len(walk) - 1))
    history = _kept_after_each_step(walk, capacity=3, reset_at=reset_at)
    for t in range(reset_at, len(walk)):
        kept, visits = history[t]
        for entries in kept:
            assert len(entries) == min(t - reset_at + 1, 3)
        # times restart at the reset: the new episode's steps 0, 1, ...
        assert kept[FIFO] == [(s - reset_at, walk[s]) for s in range(max(reset_at, t - 2), t + 1)]
    assert sum(visits) == min(len(walk) - reset_at, 3)  # only the new episode's entries


@settings(max_examples=15, deadline=None)
@given(walk=st.lists(st.integers(0, PLACES - 1), min_size=1, max_size=10), capacity=capacities)
def test_the_chunked_memory_with_one_step_chunks_evicts_like_the_place_centric_one(walk, capacity):
    torch.manual_seed(0)
    core = SATFIFOCore(
        3, width=4, heads=1, chunk_size=1, top_k=1, capacity=capacity, num_layers=1, num_places=4
    )
    state = set_strategy(core.initial_state(len(STRATEGIES)), torch.arange(len(STRATEGIES)))
    history = _kept_after_each_step(walk, capacity)
    with torch.no_grad():
        for t, place in enumerate(walk):
            places = torch.full((len(STRATEGIES),), place)
            _, state = core(torch.zeros(len(STRATEGIES), 3), state, places * 0 + (t == 0), places)
            for strategy in range(len(STRATEGIES)):
                times = state["chunk_time"][strategy]
                assert sorted(times[times >= 0].tolist()) == [
                    time for time, _ in history[t][0][strategy]
                ]
