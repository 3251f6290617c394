"""Schedules: each kind's stages and statistics, seeding, timelines, bad arguments."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from memrl.streams import (
    CW10,
    SCHEDULES,
    Cyclic,
    PowerLaw,
    Repeat,
    Scole,
    Sequential,
    make_schedule,
    power_law_weights,
)


def _ids(stages: list[tuple[int, ...]]) -> list[int]:
    assert all(len(s) == 1 for s in stages)
    return [s[0] for s in stages]


def test_sequential_is_the_given_order_or_a_seeded_permutation():
    assert _ids(Sequential().stages(10)) == list(range(10))
    shuffled = _ids(Sequential(shuffle=True, seed=3).stages(10))
    assert sorted(shuffled) == list(range(10)) and shuffled != list(range(10))
    assert shuffled == _ids(Sequential(shuffle=True, seed=3).stages(10))
    assert shuffled != _ids(Sequential(shuffle=True, seed=4).stages(10))


def test_repeat_is_cw20():
    timeline = Repeat(times=2).timeline(CW10, steps_per_task=1_000_000)
    assert [s.tasks[0] for s in timeline.stages] == list(CW10 + CW10)
    assert timeline.total_steps == 20_000_000
    assert timeline.stage_at(10_999_999).index == 10 and timeline.stage_at(11_000_000).index == 11
    assert timeline.visits() == dict.fromkeys(CW10, 2)


def test_cyclic_visits_every_task_once_per_cycle_in_fresh_orders():
    num_tasks, cycles = 6, 40
    order = _ids(Cyclic(cycles=cycles, seed=1).stages(num_tasks))
    assert len(order) == num_tasks * cycles
    cycle_orders = [order[i : i + num_tasks] for i in range(0, len(order), num_tasks)]
    assert all(sorted(c) == list(range(num_tasks)) for c in cycle_orders)
    assert len({tuple(c) for c in cycle_orders}) > cycles // 2  # reshuffled
    assert all(a != b for a, b in itertools.pairwise(order))  # never twice in a row
    # First tasks of cycles are spread over all tasks (uniform permutations, 40 cycles).
    assert len({c[0] for c in cycle_orders}) == num_tasks
    assert _ids(Cyclic(cycles=2, reshuffle=False).stages(3)) == [0, 1, 2, 0, 1, 2]


def _hazard(order: list[int], num_tasks: int, alpha: float) -> tuple[dict, dict, dict]:
    """Per gap g: re-occurrences, opportunities, and the expected count sum of 1/Z_t."""
    last = np.full(num_tasks, -1)
    chosen: Counter = Counter()
    opportunities: Counter = Counter()
    expected: Counter = Counter()
    for t, task in enumerate(order):
        gaps = t - last
        normaliser = power_law_weights(gaps, alpha).sum()
        for g in gaps:
            opportunities[int(g)] += 1
            expected[int(g)] += 1.0 / normaliser
        chosen[int(gaps[task])] += 1
        last[task] = t
    return chosen, opportunities, expected


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_power_law_recurrence_decays_as_a_power_of_the_gap(alpha):
    num_tasks, num_stages = 10, 20_000
    order = _ids(PowerLaw(num_stages=num_stages, alpha=alpha, seed=0).stages(num_tasks))
    chosen, opportunities, expected = _hazard(order, num_tasks, alpha)
    gaps = np.array([g for g in sorted(chosen) if chosen[g] >= 30])
    assert len(gaps) >= 10
    x = np.log1p(gaps)
    # Re-occurrence rate at gap g, corrected for the normaliser: exactly (1 + g)^-alpha in law.
    corrected = np.array([chosen[g] / expected[g] for g in gaps])
    slope, intercept = np.polyfit(x, np.log(corrected), 1)
    assert slope == pytest.approx(-alpha, abs=0.1)
    assert intercept == pytest.approx(0.0, abs=0.25)
    # Anderson & Schooler's raw statistic: the chance of re-occurring at gap g.
    raw = np.array([chosen[g] / opportunities[g] for g in gaps])
    assert np.polyfit(x, np.log(raw), 1)[0] == pytest.approx(-alpha, abs=0.15)


def test_power_law_alpha_zero_is_uniform_and_first_stage_is_uniform():
    order = _ids(PowerLaw(num_stages=5000, alpha=0.0, seed=2).stages(5))
    counts = np.bincount(order, minlength=5)
    assert np.all(np.abs(counts - 1000) < 4 * np.sqrt(1000 * 0.8))
    firsts = [PowerLaw(num_stages=1, seed=s).stages(5)[0][0] for s in range(500)]
    assert np.all(np.abs(np.bincount(firsts, minlength=5) - 100) < 4 * np.sqrt(100 * 0.8))


def test_power_law_default_stream_covers_cw10():
    timeline = PowerLaw(num_stages=200, alpha=1.0, seed=0).timeline(CW10, 100_000)
    assert len(timeline.stages) == 200 and timeline.total_steps == 20_000_000
    assert min(timeline.visits().values()) >= 1


def test_scole_stages_are_sparse_subsets_with_even_coverage():
    num_tasks, k, num_stages = 10, 3, 4000
    stages = Scole(num_stages=num_stages, tasks_per_stage=k, seed=0).stages(num_tasks)
    assert len(stages) == num_stages
    assert all(len(s) == k == len(set(s)) and list(s) == sorted(s) for s in stages)
    counts = np.bincount([i for s in stages for i in s], minlength=num_tasks)
    p = k / num_tasks
    expected, sd = num_stages * p, np.sqrt(num_stages * p * (1 - p))
    assert np.all(np.abs(counts - expected) < 4 * sd)
    pairs = Counter(pair for s in stages for pair in itertools.combinations(s, 2))
    assert len(pairs) == num_tasks * (num_tasks - 1) // 2  # every pair trains together
    assert len(set(stages)) == 120  # every one of the C(10, 3) subsets occurs
    assert stages != Scole(num_stages=num_stages, tasks_per_stage=k, seed=1).stages(num_tasks)


def test_scole_timeline_names_every_task_of_a_stage():
    timeline = Scole(num_stages=5, tasks_per_stage=2, seed=0).timeline(["a", "b", "c"], 10)
    assert all(len(s.tasks) == 2 for s in timeline.stages)
    assert " + " in str(timeline)


def test_every_kind_is_seeded_and_prints_a_timeline():
    for kind in SCHEDULES:
        schedule = make_schedule({"kind": kind, "seed": 5})
        assert schedule.stages(4) == make_schedule({"kind": kind, "seed": 5}).stages(4)
        timeline = schedule.timeline(["reach", "push", "pick", "door"], steps_per_task=1000)
        text = str(timeline)
        assert text.splitlines()[0].split() == ["stage", "steps", "tasks"]
        assert f"{len(timeline.stages)} stages" in text and kind in text
        chart = timeline.chart(width=7).splitlines()
        assert chart[1].strip().startswith("reach")
        assert make_schedule(schedule.to_dict()) == schedule


def test_timeline_format_elides_long_timelines():
    timeline = PowerLaw(num_stages=100).timeline(CW10, 10)
    lines = timeline.format(max_stages=6).splitlines()
    assert len(lines) == 1 + 6 + 1 + 1 and lines[4].strip() == "..."


def test_bad_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"schedule must be one of \['sequential', 'repeat'"):
        make_schedule("random")
    with pytest.raises(ValueError, match="power_law schedule parameters must be among"):
        make_schedule({"kind": "power_law", "beta": 1})
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1000.0\], got -1.0"):
        PowerLaw(alpha=-1.0)
    with pytest.raises(ValueError, match="got 1100.0 \\(beyond 1000.0 the weights underflow"):
        PowerLaw(alpha=1100.0)
    # The largest allowed exponent still gives a valid law: the last task, stage after stage.
    assert (
        PowerLaw(num_stages=5, alpha=1000.0, seed=0).stages(3)[1:]
        == [PowerLaw(num_stages=5, alpha=1000.0, seed=0).stages(3)[1]] * 4
    )
    with pytest.raises(ValueError, match="num_stages must be an integer >= 1"):
        Scole(num_stages=0)
    with pytest.raises(ValueError, match="tasks_per_stage must be 1..3"):
        Scole(tasks_per_stage=4).stages(3)
    with pytest.raises(ValueError, match="times must be an integer >= 1"):
        Repeat(times=0)
    with pytest.raises(ValueError, match="shuffle must be True or False"):
        Sequential(shuffle="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps_per_task must be an integer >= 1"):
        Sequential().timeline(CW10, steps_per_task=0)
