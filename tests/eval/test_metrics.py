"""Continual World's metrics against hand-computed values on tiny logs, and their bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memrl.eval.metrics import (
    ConfidenceInterval,
    EvaluationHistory,
    average_forgetting,
    average_performance,
    bootstrap_mean_ci,
    continual_world_metrics,
    cycle_forgetting,
    end_of_window_performance,
    final_performance,
    forgetting,
    forward_transfer,
    forward_transfer_ci,
    window_auc,
)

TOL = 1e-12

# Two tasks, steps_per_task = 60, evaluated every 10 steps: 6 evaluations per window, so "the last
# 5" leaves one out. Columns: task "a" (trained in window 0), task "b" (trained in window 1).
A_WINDOW0 = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
A_WINDOW1 = [0.9, 0.7, 0.5, 0.3, 0.1, 0.0]
B_WINDOW0 = [0.0, 0.0, 0.1, 0.0, 0.1, 0.0]
B_WINDOW1 = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
REFERENCE = {"a": [[0.0, 0.0, 0.2, 0.4, 0.6, 0.8]], "b": [[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]]}


def two_task_history(scale: float = 1.0, initial: list[float] | None = None) -> EvaluationHistory:
    steps = list(range(10, 121, 10))
    success = np.array([A_WINDOW0 + A_WINDOW1, B_WINDOW0 + B_WINDOW1]).T * scale
    if initial is not None:  # an evaluation before any training, at step 0
        steps = [0, *steps]
        success = np.vstack([initial, success])
    return EvaluationHistory(np.array(steps), success, ("a", "b"), steps_per_task=60)


def test_average_performance_is_the_mean_of_the_last_five_evaluations_at_the_end():
    history = two_task_history()
    p_a = (0.7 + 0.5 + 0.3 + 0.1 + 0.0) / 5
    p_b = (0.4 + 0.6 + 0.8 + 1.0 + 1.0) / 5
    assert np.allclose(final_performance(history), [p_a, p_b], atol=TOL, rtol=0)
    assert abs(average_performance(history) - (p_a + p_b) / 2) < TOL
    # fewer than 5 evaluations are averaged when asked (and tail(k) semantics hold)
    assert abs(average_performance(history, last_evaluations=1) - (0.0 + 1.0) / 2) < TOL


def test_forgetting_compares_the_end_of_each_window_with_the_end_of_the_run():
    history = two_task_history()
    end_a_window0 = (0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 5
    end_b_window1 = (0.4 + 0.6 + 0.8 + 1.0 + 1.0) / 5
    p_a = (0.7 + 0.5 + 0.3 + 0.1 + 0.0) / 5
    assert np.allclose(
        end_of_window_performance(history), [end_a_window0, end_b_window1], atol=TOL, rtol=0
    )
    f = forgetting(history)
    assert abs(f[0] - (end_a_window0 - p_a)) < TOL
    assert f[1] == 0.0  # the last task's forgetting is 0 by construction (>= 5 evaluations)
    # the average counts the last task too, as Continual World divides by all tasks
    assert abs(average_forgetting(history) - (end_a_window0 - p_a + 0.0) / 2) < TOL
    # last_evaluations sets both ends: a (0.8 + 1.0) / 2 - (0.1 + 0.0) / 2; b 1.0 - 1.0
    assert np.allclose(forgetting(history, last_evaluations=2), [0.85, 0.0], atol=TOL, rtol=0)
    assert abs(average_forgetting(history, last_evaluations=2) - 0.85 / 2) < TOL


def test_forward_transfer_uses_the_plain_mean_of_each_window_against_the_reference():
    history = two_task_history()
    auc_a = (0.0 + 0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 6
    auc_b = (0.2 + 0.4 + 0.6 + 0.8 + 1.0 + 1.0) / 6
    assert np.allclose(window_auc(history), [auc_a, auc_b], atol=TOL, rtol=0)
    ref_a = (0.0 + 0.0 + 0.2 + 0.4 + 0.6 + 0.8) / 6
    ref_b = (0.0 + 0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 6
    expected = [(auc_a - ref_a) / (1 - ref_a), (auc_b - ref_b) / (1 - ref_b)]
    assert np.allclose(forward_transfer(history, REFERENCE), expected, atol=TOL, rtol=0)


def test_an_evaluation_at_step_zero_belongs_to_no_window():
    with_initial = two_task_history(initial=[0.3, 0.9])
    plain = two_task_history()
    assert np.allclose(window_auc(with_initial), window_auc(plain), atol=TOL, rtol=0)
    assert abs(average_performance(with_initial) - average_performance(plain)) < TOL
    assert np.allclose(forgetting(with_initial), forgetting(plain), atol=TOL, rtol=0)


def test_forward_transfer_across_seeds_averages_the_aucs_before_the_ratio():
    runs = [two_task_history(), two_task_history(scale=0.5)]
    reference = {
        "a": [[0.0, 0.0, 0.2, 0.4, 0.6, 0.8], [0.0] * 6],
        "b": [[0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0.5] * 6],
    }
    auc_a = ((0.0 + 0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 6) * (1 + 0.5) / 2
    auc_b = ((0.2 + 0.4 + 0.6 + 0.8 + 1.0 + 1.0) / 6) * (1 + 0.5) / 2
    ref_a = ((0.0 + 0.0 + 0.2 + 0.4 + 0.6 + 0.8) / 6 + 0.0) / 2
    ref_b = ((0.0 + 0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 6 + 0.5) / 2
    expected = [(auc_a - ref_a) / (1 - ref_a), (auc_b - ref_b) / (1 - ref_b)]
    assert np.allclose(forward_transfer(runs, reference), expected, atol=TOL, rtol=0)
    metrics = continual_world_metrics(runs, reference, n_resamples=200)
    assert metrics.forward_transfer is not None
    assert abs(metrics.forward_transfer.mean - sum(expected) / 2) < TOL


def test_summary_of_several_seeds_and_its_json():
    runs = [two_task_history(), two_task_history(scale=0.5)]
    metrics = continual_world_metrics(runs, REFERENCE, n_resamples=500)
    p = [average_performance(h) for h in runs]
    f = [average_forgetting(h) for h in runs]
    assert abs(metrics.performance.mean - (p[0] + p[1]) / 2) < TOL
    assert abs(metrics.forgetting.mean - (f[0] + f[1]) / 2) < TOL
    assert metrics.final_performance.shape == (2, 2)
    assert metrics.window_forgetting.shape == (2, 2)
    assert metrics.cycle_forgetting is None  # nothing re-occurs
    document = json.loads(json.dumps(metrics.to_dict()))
    assert document["metrics"]["performance"]["confidence"] == 0.9
    assert document["per_window"]["task_names"] == ["a", "b"]
    without_reference = continual_world_metrics(runs, n_resamples=10)
    assert without_reference.forward_transfer is None


# Repeated tasks: one column per distinct task, schedule (0, 1, 0, 1), steps_per_task = 20,
# evaluated every 10 steps: 2 evaluations per window.
REPEAT_A = [0.2, 0.6, 0.5, 0.3, 0.7, 0.9, 0.8, 0.4]
REPEAT_B = [0.0, 0.1, 0.4, 0.8, 0.6, 0.2, 0.5, 1.0]


def repeated_history(
    schedule: tuple[int, ...] = (0, 1, 0, 1), scale: float = 1.0
) -> EvaluationHistory:
    steps = np.arange(10, 81, 10)
    success = np.array([REPEAT_A, REPEAT_B]).T * scale
    return EvaluationHistory(steps, success, ("a", "b"), 20, schedule)


def test_repeated_tasks_get_one_window_per_occurrence():
    history = repeated_history()
    assert history.window_names == ("a", "b", "a", "b")
    assert np.allclose(
        window_auc(history),
        [(0.2 + 0.6) / 2, (0.4 + 0.8) / 2, (0.7 + 0.9) / 2, (0.5 + 1.0) / 2],
        atol=TOL,
        rtol=0,
    )
    # "the end" = last 4 evaluations of the log; "the end of a window" = its 2 evaluations (tail)
    p_a = (0.7 + 0.9 + 0.8 + 0.4) / 4
    p_b = (0.6 + 0.2 + 0.5 + 1.0) / 4
    expected = [
        (0.2 + 0.6) / 2 - p_a,
        (0.4 + 0.8) / 2 - p_b,
        (0.7 + 0.9) / 2 - p_a,
        (0.5 + 1.0) / 2 - p_b,  # not 0: the last window holds fewer evaluations than averaged
    ]
    assert np.allclose(forgetting(history, last_evaluations=4), expected, atol=TOL, rtol=0)


def test_cycle_forgetting_compares_the_end_of_an_occurrence_with_just_before_the_next():
    history = repeated_history()
    result = cycle_forgetting(history, last_evaluations=2)
    # a: end of window 0 vs its evaluations in window 1; b: end of window 1 vs window 2
    a = (0.2 + 0.6) / 2 - (0.5 + 0.3) / 2
    b = (0.4 + 0.8) / 2 - (0.6 + 0.2) / 2
    assert result.by_task.shape == (2, 1)
    assert abs(result.by_task[0, 0] - a) < TOL and abs(result.by_task[1, 0] - b) < TOL
    assert abs(result.per_cycle[0] - (a + b) / 2) < TOL
    assert abs(result.mean - (a + b) / 2) < TOL
    # last_evaluations=1: single evaluations, the sum of CORA's isolated forgetting over the gap
    single = cycle_forgetting(history, last_evaluations=1)
    assert abs(single.by_task[0, 0] - (0.6 - 0.3)) < TOL


def test_cycle_forgetting_merges_consecutive_windows_and_leaves_missing_cycles_nan():
    # a trains in windows 0-1 (one occurrence), b in 2, a again in 3: one cycle for a, none for b
    history = repeated_history(schedule=(0, 0, 1, 0))
    result = cycle_forgetting(history, last_evaluations=2)
    a = (0.5 + 0.3) / 2 - (0.7 + 0.9) / 2  # end of window 1 vs a in window 2
    assert abs(result.by_task[0, 0] - a) < TOL
    assert np.isnan(result.by_task[1, 0])
    assert abs(result.mean - a) < TOL
    assert result.task_names == ("a", "b")


def test_an_occurrence_spans_every_consecutive_window_of_its_task():
    # b trains in window 0, a in window 1, b again in windows 2-4 (one occurrence from window 2).
    b = [0.2, 0.6, 0.1, 0.3, 0.5, 0.4, 0.9, 0.8, 0.7, 1.0]
    history = EvaluationHistory(
        np.arange(10, 101, 10), np.array([np.linspace(0.1, 1.0, 10), b]).T, ("a", "b"), 20,
        (1, 0, 1, 1, 1),
    )  # fmt: skip
    result = cycle_forgetting(history, last_evaluations=2)
    assert result.by_task.shape == (2, 1) and np.isnan(result.by_task[0, 0])  # a: one occurrence
    # b: end of window 0 against b in window 1, the only window before its next occurrence
    assert abs(result.by_task[1, 0] - ((0.2 + 0.6) / 2 - (0.1 + 0.3) / 2)) < TOL


def test_summary_reports_cycle_forgetting_when_tasks_reoccur():
    runs = [repeated_history(), repeated_history()]
    metrics = continual_world_metrics(runs, n_resamples=50)
    assert metrics.cycle_forgetting is not None
    # Each window holds 2 evaluations, so "the last 5" are both: a 0.4 - 0.4, b 0.6 - 0.4.
    expected = ((0.2 + 0.6) / 2 - (0.5 + 0.3) / 2 + (0.4 + 0.8) / 2 - (0.6 + 0.2) / 2) / 2
    assert abs(metrics.cycle_forgetting.mean - expected) < TOL
    assert metrics.cycle_forgetting.lower == metrics.cycle_forgetting.upper == expected


def _assert_same_interval(got: ConfidenceInterval | None, want: ConfidenceInterval) -> None:
    assert got is not None
    assert (got.mean, got.lower, got.upper, got.confidence) == pytest.approx(
        (want.mean, want.lower, want.upper, want.confidence), abs=TOL
    )


def test_the_summary_passes_its_options_to_every_metric():
    runs = [two_task_history(scale) for scale in (1.0, 0.5, 0.8)]
    options = {"confidence": 0.5, "n_resamples": 300, "seed": 7}
    performance = [average_performance(h, 2) for h in runs]
    # the options change the intervals, so a metric computed without them differs
    assert bootstrap_mean_ci(performance, **options) != bootstrap_mean_ci(performance)
    metrics = continual_world_metrics(runs, REFERENCE, last_evaluations=2, **options)
    assert metrics.num_seeds == 3
    np.testing.assert_allclose(metrics.final_performance, [final_performance(h, 2) for h in runs])
    np.testing.assert_allclose(metrics.window_forgetting, [forgetting(h, 2) for h in runs])
    _assert_same_interval(metrics.performance, bootstrap_mean_ci(performance, **options))
    forgot = [average_forgetting(h, 2) for h in runs]
    _assert_same_interval(metrics.forgetting, bootstrap_mean_ci(forgot, **options))
    _assert_same_interval(metrics.forward_transfer, forward_transfer_ci(runs, REFERENCE, **options))
    assert metrics.window_forward_transfer is not None
    np.testing.assert_allclose(metrics.window_forward_transfer, forward_transfer(runs, REFERENCE))

    repeated = [repeated_history(scale=scale) for scale in (1.0, 0.5, 0.8)]
    cycles = continual_world_metrics(repeated, last_evaluations=1, **options)
    per_seed = [cycle_forgetting(h, last_evaluations=1).mean for h in repeated]
    _assert_same_interval(cycles.cycle_forgetting, bootstrap_mean_ci(per_seed, **options))


def test_the_summary_of_one_run_needs_no_list():
    metrics = continual_world_metrics(two_task_history(), n_resamples=10)
    assert metrics.num_seeds == 1
    assert metrics.task_names == metrics.window_names == ("a", "b")
    assert metrics.performance.mean == pytest.approx(average_performance(two_task_history()))


def test_the_summary_json_holds_every_number():
    def interval(value: ConfidenceInterval | None) -> dict[str, float]:
        assert value is not None
        return {"mean": value.mean, "lower": value.lower, "upper": value.upper,
                "confidence": value.confidence}  # fmt: skip

    runs = [two_task_history(scale) for scale in (1.0, 0.5, 0.8)]
    metrics = continual_world_metrics(runs, REFERENCE, n_resamples=200)
    assert json.loads(json.dumps(metrics.to_dict())) == {
        "num_seeds": 3,
        "metrics": {
            "performance": interval(metrics.performance),
            "forgetting": interval(metrics.forgetting),
            "forward_transfer": interval(metrics.forward_transfer),
            "cycle_forgetting": None,
        },
        "per_task": {
            "task_names": ["a", "b"],
            "final_performance": np.mean([final_performance(h) for h in runs], axis=0).tolist(),
        },
        "per_window": {
            "task_names": ["a", "b"],
            "forgetting": np.mean([forgetting(h) for h in runs], axis=0).tolist(),
            "forward_transfer": forward_transfer(runs, REFERENCE).tolist(),
        },
    }
    repeated = continual_world_metrics([repeated_history()] * 2, n_resamples=10)
    document = repeated.to_dict()
    assert document["metrics"]["cycle_forgetting"] == interval(repeated.cycle_forgetting)
    assert document["metrics"]["forward_transfer"] is None
    assert document["per_window"]["forward_transfer"] is None


def test_continual_worlds_cw20_layout_has_one_column_per_position():
    # the same log, as CW writes it: four columns (positions), names repeated, schedule 0..3
    steps = np.arange(10, 81, 10)
    columns = np.array([REPEAT_A, REPEAT_B, REPEAT_A, REPEAT_B]).T
    positional = EvaluationHistory(steps, columns, ("a", "b", "a", "b"), 20)
    distinct = repeated_history()
    assert positional.schedule == (0, 1, 2, 3)
    assert np.allclose(window_auc(positional), window_auc(distinct), atol=TOL, rtol=0)
    assert np.allclose(forgetting(positional), forgetting(distinct), atol=TOL, rtol=0)
    reference = {"a": [[0.1, 0.3]], "b": [[0.0, 0.2]]}
    assert np.allclose(
        forward_transfer(positional, reference),
        forward_transfer(distinct, reference),
        atol=TOL,
        rtol=0,
    )
    with pytest.raises(ValueError, match="no task re-occurs"):
        cycle_forgetting(positional)


# Bootstrap confidence intervals.


def test_bootstrap_interval_follows_continual_worlds_recipe_exactly():
    values = np.array([0.3, 0.55, 0.4, 0.8, 0.1, 0.65])
    ci = bootstrap_mean_ci(values)
    np.random.seed(0)  # CW: np.random.seed(0); np.random.choice(n, (4000, n)); midpoint quantiles
    means = values[np.random.choice(values.size, (4000, values.size))].mean(axis=1)
    assert ci.lower == np.quantile(means, 0.05, method="midpoint")
    assert ci.upper == np.quantile(means, 0.95, method="midpoint")
    assert ci.mean == values.mean() and ci.confidence == 0.9


def test_bootstrap_interval_of_two_seeds_spans_them_and_of_one_seed_collapses():
    ci = bootstrap_mean_ci([0.2, 0.6])  # resample means are 0.2, 0.4, 0.6 w.p. 1/4, 1/2, 1/4
    assert (ci.lower, ci.upper) == (0.2, 0.6)
    one = bootstrap_mean_ci([0.7])
    assert one.lower == one.mean == one.upper == 0.7


def test_bootstrap_interval_contains_the_mean_narrows_with_seeds_and_is_seeded():
    values = np.array([0.1, 0.4, 0.6, 0.9, 0.3])
    ci = bootstrap_mean_ci(values, n_resamples=10_000)
    assert ci.lower <= ci.mean <= ci.upper and ci.lower < ci.upper
    many = bootstrap_mean_ci(np.tile(values, 16), n_resamples=10_000)
    assert many.upper - many.lower < (ci.upper - ci.lower) / 2
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci(values, seed=3) != bootstrap_mean_ci(values, seed=4)
    assert bootstrap_mean_ci(values, confidence=0.5).upper < ci.upper


def test_forward_transfer_interval_resamples_runs_then_reference_runs_like_cw():
    runs = [two_task_history(), two_task_history(scale=0.5), two_task_history(scale=0.8)]
    # three reference runs per task (not as many as the windows): each resample draws three
    reference = {
        "a": [[0.0, 0.0, 0.2, 0.4, 0.6, 0.8], [0.0] * 6, [0.3] * 6],
        "b": [[0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0.5] * 6, [0.1] * 6],
    }
    ci = forward_transfer_ci(runs, reference, n_resamples=1000, seed=0)
    auc = np.array([window_auc(h) for h in runs])
    ref = np.array([[np.mean(reference["a"][r]), np.mean(reference["b"][r])] for r in range(3)])
    np.random.seed(0)
    x = auc[np.random.choice(3, (1000, 3))].mean(axis=1)
    y = ref[np.random.choice(3, (1000, 3))].mean(axis=1)
    samples = ((x - y) / (1 - y)).mean(axis=1)
    assert ci.lower == pytest.approx(np.quantile(samples, 0.05, method="midpoint"), abs=TOL)
    assert ci.upper == pytest.approx(np.quantile(samples, 0.95, method="midpoint"), abs=TOL)
    assert ci.lower <= ci.mean <= ci.upper and ci.confidence == 0.9
    first = forward_transfer_ci(runs, reference, windows=[0], n_resamples=1000)
    assert abs(first.mean - forward_transfer(runs, reference)[0]) < TOL


@pytest.mark.filterwarnings("error")  # an undefined resample is expected: no RuntimeWarning
def test_forward_transfer_keeps_its_point_when_some_resamples_are_undefined():
    # One of b's two reference runs solves it at every evaluation: a resample that draws it twice
    # has 1 - AUC_ref = 0, while the point estimate (mean reference AUC 0.75) is defined.
    reference = {"a": [[0.2] * 6, [0.4] * 6], "b": [[1.0] * 6, [0.5] * 6]}
    ci = forward_transfer_ci([two_task_history()], reference, n_resamples=200, confidence=0.8)
    assert ci.mean == pytest.approx(forward_transfer(two_task_history(), reference).mean())
    assert np.isnan(ci.lower) and np.isnan(ci.upper) and ci.confidence == 0.8
    # The same when the run solves b too: such a resample divides 0 by 0.
    solved = EvaluationHistory(np.arange(10, 121, 10), np.ones((12, 2)), ("a", "b"), 60)
    ci = forward_transfer_ci([solved], reference, n_resamples=200)
    assert ci.mean == pytest.approx(forward_transfer(solved, reference).mean())
    assert np.isnan(ci.lower) and np.isnan(ci.upper)
    # A window left out may have an undefined FT: the selected ones are still computed.
    solved_b = {"a": reference["a"], "b": [[1.0] * 6, [1.0] * 6]}
    first = forward_transfer_ci([two_task_history()], solved_b, windows=[0], n_resamples=50)
    assert first.mean == pytest.approx(forward_transfer(two_task_history(), reference)[0])
    with pytest.raises(ValueError, match=r"reference AUC of \['b'\] is 1"):
        forward_transfer_ci([two_task_history()], solved_b, windows=[1], n_resamples=50)


def test_a_later_occurrence_takes_its_tasks_reference_unless_it_has_its_own():
    from memrl.eval.metrics import reference_auc

    reference = {"a": [[0.2, 0.4]], "b": [[0.5, 0.5]], "b#2": [[0.1, 0.1]]}
    np.testing.assert_allclose(reference_auc(reference, ["a", "a#2", "b#2"]), [[0.3, 0.3, 0.1]])
    with pytest.raises(ValueError, match=r"missing reference curve for tasks \['c#2'\]"):
        reference_auc(reference, ["c#2"])


def test_reference_runs_of_different_lengths_are_averaged_run_by_run():
    # Continual World takes each reference run's mean on its own.
    ragged = {"a": [[0.0, 0.2], [0.3]], "b": [[0.5, 0.5, 0.5], [0.0]]}
    even = {"a": [[0.1], [0.3]], "b": [[0.5], [0.0]]}
    history = two_task_history()
    np.testing.assert_allclose(forward_transfer(history, ragged), forward_transfer(history, even))


# Bad input.


def test_bad_histories_raise_errors_that_name_the_problem():
    steps = np.array([10, 20, 30, 40])
    good = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match=r"success has shape \(4, 3\)"):
        EvaluationHistory(steps, np.full((4, 3), 0.5), ("a", "b"), 20)
    with pytest.raises(ValueError, match="strictly increasing"):
        EvaluationHistory(np.array([10, 30, 20, 40]), good, ("a", "b"), 20)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        EvaluationHistory(steps, good * 3, ("a", "b"), 20)
    with_nan = good.copy()
    with_nan[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"\(evaluation, task, value\) \[\(1, 0, nan\)\]"):
        EvaluationHistory(steps, with_nan, ("a", "b"), 20)
    with pytest.raises(ValueError, match=r"schedule refers to columns \[2\]"):
        EvaluationHistory(steps, good, ("a", "b"), 20, (0, 2))
    with pytest.raises(ValueError, match="after the end of the schedule"):
        EvaluationHistory(steps, good, ("a", "b"), 10)  # 2 windows x 10 steps, evaluated to 40
    with pytest.raises(ValueError, match=r"windows \[1\] hold no evaluation"):
        EvaluationHistory(np.array([5, 10, 25, 30]), good, ("a", "b"), 10, (0, 1, 0))
    with pytest.raises(ValueError, match="steps_per_task"):
        EvaluationHistory(steps, good, ("a", "b"), 0)
    with pytest.raises(ValueError, match="2-D"):
        EvaluationHistory(steps, np.full(4, 0.5), ("a", "b"), 20)
    for bad_steps in (np.array([], dtype=int), np.array([[10, 20, 30, 40]])):
        with pytest.raises(ValueError, match=r"steps must be a non-empty 1-D array, got shape"):
            EvaluationHistory(bad_steps, good, ("a", "b"), 20)
    with pytest.raises(ValueError, match=r"whole env-step counts, got \[10.0, 20.5, 30.0, 40.0\]"):
        EvaluationHistory(np.array([10, 20.5, 30, 40]), good, ("a", "b"), 20)
    with pytest.raises(ValueError, match="task_names must name at least one task"):
        EvaluationHistory(steps, np.zeros((4, 0)), (), 20)
    history = EvaluationHistory(steps, good, ("a", "b"), 20)
    with pytest.raises(ValueError, match=r"window must be in 0\.\.1, got 2"):
        history.window_success(2)


def test_a_single_evaluation_makes_a_history():
    history = EvaluationHistory(np.array([20]), np.array([[0.5, 0.25]]), ("a",) * 2, 20, (0,))
    assert history.window_success(0).tolist() == [0.5]
    assert average_performance(history) == 0.375


def test_bad_references_and_runs_raise_errors_that_name_the_problem():
    history = two_task_history()
    with pytest.raises(ValueError, match=r"missing reference curve for tasks \['b'\]"):
        forward_transfer(history, {"a": REFERENCE["a"]})
    with pytest.raises(ValueError, match="different numbers of runs"):
        forward_transfer(history, {"a": REFERENCE["a"], "b": [[0.1] * 6, [0.2] * 6]})
    with pytest.raises(ValueError, match=r"reference AUC of \['b'\] is 1"):
        forward_transfer(history, {"a": REFERENCE["a"], "b": [[1.0] * 6]})
    for curve in ([[1.5, 0.0]], [[-0.1, 0.0]], [[np.nan, 0.5]]):
        with pytest.raises(ValueError, match=r"curve of 'a' must hold success rates in \[0, 1\]"):
            forward_transfer(history, {"a": curve, "b": REFERENCE["b"]})
    for curve in (np.zeros((1, 2, 3)), np.zeros((0, 3))):
        with pytest.raises(ValueError, match=r"curve of 'a' must be \[runs, evaluations\] and non"):
            forward_transfer(history, {"a": curve, "b": REFERENCE["b"]})
    for ragged in ([[0.1, 0.2], []], [[0.1, 0.2], [[0.3]]]):
        with pytest.raises(ValueError, match="each reference run of 'a' must be a non-empty list"):
            forward_transfer(history, {"a": ragged, "b": REFERENCE["b"]})
    other = EvaluationHistory(np.arange(10, 121, 10), np.full((12, 2), 0.5), ("a", "c"), 60)
    with pytest.raises(ValueError, match="run 1 has task_names"):
        continual_world_metrics([history, other])
    with pytest.raises(ValueError, match="at least one"):
        continual_world_metrics([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci([0.1, 0.2], confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_mean_ci([0.1, 0.2], n_resamples=0)
    for windows in ([5], [2], []):  # two windows: 0 and 1
        with pytest.raises(ValueError, match=r"windows must be a non-empty subset of 0\.\.1$"):
            forward_transfer_ci([history], REFERENCE, windows=windows)
    with pytest.raises(ValueError, match="last_evaluations"):
        final_performance(history, last_evaluations=0)


def test_bootstrap_interval_is_the_midpoint_quantile_of_the_resampled_means():
    """Continual World's recipe by hand: RandomState(seed).choice resamples, midpoint quantiles."""
    values = np.array([0.1, 0.4, 0.35, 0.9, 0.6])
    ci = bootstrap_mean_ci(values, confidence=0.9, n_resamples=101, seed=3)
    means = values[np.random.RandomState(3).choice(5, (101, 5))].mean(axis=1)
    tail = (1 - 0.9) / 2
    assert ci.lower == np.quantile(means, tail, method="midpoint")
    assert ci.upper == np.quantile(means, 1 - tail, method="midpoint")
    assert ci.lower != np.quantile(means, tail)  # the default (linear) interpolation differs here
    with pytest.raises(ValueError, match="non-empty 1-D array of finite numbers"):
        bootstrap_mean_ci([0.1, np.nan])


def test_a_history_keeps_its_inputs_as_arrays_and_refuses_repeated_steps_or_fractional_windows():
    history = EvaluationHistory([20, 40], [[0.5, 0.0], [1.0, 0.5]], ["a", "b"], steps_per_task=20)
    assert history.steps.dtype == np.int64 and history.success.dtype == np.float64
    assert history.task_names == ("a", "b") and history.steps_per_task == 20
    with pytest.raises(ValueError):  # two evaluations at the same step
        EvaluationHistory([20, 20, 40], [[0.5, 0.0]] * 3, ["a", "b"], steps_per_task=20)
    with pytest.raises(ValueError):  # a window of 20.5 steps
        EvaluationHistory([20, 40], [[0.5, 0.0], [1.0, 0.5]], ["a", "b"], steps_per_task=20.5)


# Boundaries of the inputs the metrics accept (each test kills a surviving mutant of a check).
def _history(steps: list[int], steps_per_task: int = 2) -> EvaluationHistory:
    return EvaluationHistory(
        np.array(steps), np.zeros((len(steps), 2)), ("a", "b"), steps_per_task=steps_per_task
    )


def test_steps_one_apart_and_one_step_windows_are_accepted():
    history = _history([1, 2, 3, 4])
    assert history.steps.tolist() == [1, 2, 3, 4]
    assert _history([1, 2], steps_per_task=1).steps_per_task == 1


@pytest.mark.parametrize(
    ("steps", "steps_per_task", "message"),
    [
        ([-1, 2], 2, r"steps must be >= 0 and strictly increasing, got \[-1, 2\]"),
        ([2, 2], 2, r"steps must be >= 0 and strictly increasing, got \[2, 2\]"),
        ([1, 2], 0, "steps_per_task must be a positive integer, got 0"),
    ],
)
def test_bad_steps_and_windows_are_refused_naming_them(steps, steps_per_task, message):
    with pytest.raises(ValueError, match=message):
        _history(steps, steps_per_task)


@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_bootstrap_refuses_a_confidence_outside_the_open_interval(confidence):
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        bootstrap_mean_ci([0.1, 0.2], confidence=confidence)


def test_bootstrap_takes_a_single_resample_and_refuses_none():
    interval = bootstrap_mean_ci([0.1, 0.3], n_resamples=1)
    assert interval.lower == interval.upper  # one resample: one mean, both quantiles
    with pytest.raises(ValueError, match="n_resamples must be >= 1, got 0"):
        bootstrap_mean_ci([0.1, 0.3], n_resamples=0)


def test_bootstrap_refuses_values_that_are_not_one_per_seed():
    with pytest.raises(ValueError):
        bootstrap_mean_ci([[0.1, 0.2], [0.3, 0.4]])
