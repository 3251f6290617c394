"""Property tests of the schedules: orderings, seeding, growth, and the timeline, for any sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memrl.streams import (
    SCHEDULES,
    Cyclic,
    PowerLaw,
    Repeat,
    Scole,
    Sequential,
    make_schedule,
    power_law_weights,
)

FAST = settings(max_examples=60, deadline=None)
num_tasks = st.integers(1, 12)
seeds = st.integers(0, 2**32)


def _ids(stages: list[tuple[int, ...]]) -> list[int]:
    assert all(len(stage) == 1 for stage in stages)
    return [stage[0] for stage in stages]


@st.composite
def schedules(draw: st.DrawFn):
    """Any schedule kind with small random parameters."""
    kind = draw(st.sampled_from(sorted(SCHEDULES)))
    parameters = {"seed": draw(seeds)}
    if kind in ("sequential", "repeat"):
        parameters["shuffle"] = draw(st.booleans())
    if kind == "repeat":
        parameters["times"] = draw(st.integers(1, 4))
    if kind == "cyclic":
        parameters |= {"cycles": draw(st.integers(1, 5)), "reshuffle": draw(st.booleans())}
    if kind == "power_law":
        parameters |= {"num_stages": draw(st.integers(1, 40)), "alpha": draw(st.floats(0, 5))}
    if kind == "scole":
        parameters |= {"num_stages": draw(st.integers(1, 40)), "tasks_per_stage": 1}
    return make_schedule({"kind": kind, **parameters})


@FAST
@given(schedule=schedules(), n=num_tasks)
def test_every_schedule_is_a_function_of_its_parameters_and_seed(schedule, n):
    stages = schedule.stages(n)
    assert stages == make_schedule(schedule.to_dict()).stages(n)  # same parameters, same stages
    assert make_schedule(schedule.to_dict()) == schedule
    assert stages and all(0 <= i < n for stage in stages for i in stage)


@FAST
@given(schedule=schedules(), n=num_tasks, steps_per_task=st.integers(1, 1000), data=st.data())
def test_a_timeline_lays_stages_back_to_back(schedule, n, steps_per_task, data):
    names = [f"task{i}" for i in range(n)]
    timeline = schedule.timeline(names, steps_per_task)
    stages = schedule.stages(n)
    assert [stage.task_ids for stage in timeline.stages] == stages
    assert timeline.total_steps == len(stages) * steps_per_task
    for index, stage in enumerate(timeline.stages):
        assert (stage.index, stage.start, stage.end) == (
            index,
            index * steps_per_task,
            (index + 1) * steps_per_task,
        )
        assert stage.tasks == tuple(names[i] for i in stage.task_ids)
    step = data.draw(st.integers(0, timeline.total_steps - 1))
    assert timeline.stage_at(step).index == step // steps_per_task
    assert sum(timeline.visits().values()) == sum(len(stage) for stage in stages)


@FAST
@given(n=num_tasks, seed=seeds, shuffle=st.booleans(), times=st.integers(1, 4))
def test_sequential_visits_each_task_once_and_repeat_repeats_that_order(n, seed, shuffle, times):
    order = _ids(Sequential(seed=seed, shuffle=shuffle).stages(n))
    assert sorted(order) == list(range(n))
    if not shuffle:
        assert order == list(range(n))
    repeated = _ids(Repeat(seed=seed, shuffle=shuffle, times=times).stages(n))
    assert repeated == order * times


@FAST
@given(n=num_tasks, seed=seeds, cycles=st.integers(1, 6), reshuffle=st.booleans())
def test_cyclic_visits_every_task_once_per_cycle_and_never_twice_in_a_row(
    n, seed, cycles, reshuffle
):
    order = _ids(Cyclic(seed=seed, cycles=cycles, reshuffle=reshuffle).stages(n))
    assert len(order) == n * cycles
    for start in range(0, len(order), n):
        assert sorted(order[start : start + n]) == list(range(n))
    if reshuffle and n > 1:
        assert all(a != b for a, b in itertools.pairwise(order))
    if not reshuffle:
        assert order == list(range(n)) * cycles


GROWS = {"cyclic": "cycles", "power_law": "num_stages", "scole": "num_stages"}
"""The parameter that lengthens a stream, per kind."""


@FAST
@given(
    schedule=schedules().filter(lambda s: s.kind in GROWS), n=num_tasks, extra=st.integers(1, 20)
)
def test_a_longer_stream_extends_a_shorter_one(schedule, n, extra):
    """Stages depend only on the past: more stages (or cycles) append, they never rewrite."""
    field = GROWS[schedule.kind]
    longer = make_schedule({**schedule.to_dict(), field: getattr(schedule, field) + extra})
    short, long = schedule.stages(n), longer.stages(n)
    assert long[: len(short)] == short and len(long) > len(short)


@FAST
@given(n=num_tasks, seed=seeds, stages=st.integers(1, 40), data=st.data())
def test_scole_stages_are_sorted_subsets_of_k_distinct_tasks(n, seed, stages, data):
    k = data.draw(st.integers(1, n))
    drawn = Scole(seed=seed, num_stages=stages, tasks_per_stage=k).stages(n)
    assert len(drawn) == stages
    assert all(list(stage) == sorted(set(stage)) and len(stage) == k for stage in drawn)


gaps = st.integers(1, 10_000)


@FAST
@given(alpha=st.floats(0, 50), gap=gaps, later=gaps)
def test_power_law_weights_fall_as_a_power_of_one_plus_the_gap(alpha, gap, later):
    w_gap, w_later = power_law_weights(np.array([gap, gap + later]), alpha)
    assert w_gap == pytest.approx((1 + gap) ** -alpha, rel=1e-9)
    assert w_later <= w_gap  # a longer gap is never likelier
    assert w_gap / w_later == pytest.approx(((1 + gap + later) / (1 + gap)) ** alpha, rel=1e-6)


@FAST
@given(n=num_tasks, seed=seeds, stages=st.integers(1, 40))
def test_power_law_at_the_largest_exponent_repeats_the_first_task(n, seed, stages):
    """At alpha = 1000 a gap of 1 outweighs any other by 2 ** -1000 / 3 ** -1000: never leave."""
    order = _ids(PowerLaw(seed=seed, num_stages=stages, alpha=1000.0).stages(n))
    assert order == [order[0]] * stages
