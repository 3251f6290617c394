"""Property tests of the eviction strategies: random walks over places, random capacities.

The bookkeeping of SAT-PM (``SATPMCore._write``: one entry per step, eviction when full) is run
on walks drawn by hypothesis, one batch entry per strategy, and checked against invariants and
against a plain-Python model of the documented rule ("write, then drop one": FIFO the oldest,
LIFO the incoming, MVFO/LVFO the oldest entry of the most/least-visited place, a visit being a
run of consecutive steps in one place, ties to the place holding the oldest entry).
"""

from __future__ import annotations

from collections import Counter

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memrl.memory import set_strategy
from memrl.memory.eviction import STRATEGIES
from memrl.memory.sat import SATFIFOCore, SATPMCore

PLACES = 4
FIFO, LIFO, MVFO, LVFO = (STRATEGIES.index(s) for s in ("fifo", "lifo", "mvfo", "lvfo"))

walks = st.lists(st.integers(0, PLACES - 1), min_size=1, max_size=20)
capacities = st.integers(1, 6)
FAST = settings(max_examples=40, deadline=None)


def _kept_after_each_step(walk: list[int], capacity: int, reset_at: int | None = None):
    """Per step, the (time, place) entries SAT-PM holds under each strategy, and the visits."""
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
        history.append((kept, state["visits"][0].tolist()))
    return history


def _model(walk: list[int], capacity: int, strategy: int) -> list[list[int]]:
    """The times kept after each step, by the rule written out (episode starting at step 0)."""
    kept: list[int] = []
    visits: Counter = Counter()
    out = []
    for t, place in enumerate(walk):
        if t == 0 or walk[t - 1] != place:
            visits[place] += 1
        candidates = [*kept, t]
        if len(candidates) > capacity:
            if strategy == FIFO:
                victim = min(candidates)
            elif strategy == LIFO:
                victim = t
            else:
                counts = {c: visits[walk[c]] for c in candidates}
                pick = max if strategy == MVFO else min
                target = pick(counts.values())
                victim = min(c for c in candidates if counts[c] == target)
            candidates.remove(victim)
        kept = candidates
        out.append(sorted(kept))
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
@given(walk=walks)
def test_visits_count_the_runs_of_steps_in_each_place(walk):
    _, visits = _kept_after_each_step(walk, capacity=2)[-1]
    runs = Counter(place for t, place in enumerate(walk) if t == 0 or walk[t - 1] != place)
    assert visits == [runs[p] for p in range(PLACES)]


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
    assert sum(visits) == sum(
        1 for t in range(reset_at, len(walk)) if t == reset_at or walk[t - 1] != walk[t]
    )


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
