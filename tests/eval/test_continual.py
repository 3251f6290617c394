"""Reports from hand-written evaluation logs: values computed by hand, partial and mixed runs."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.eval.continual import evaluate_continual_runs, per_task_tables, retention_matrix
from memrl.eval.reference_curves import save_reference_curves

SUCCESS = [[0.2, 0.0], [0.8, 0.0], [0.4, 0.5], [0.2, 1.0]]
"""Success of tasks a, b at steps 150, 300, 450, 600 (a trains in window 0, b in window 1)."""


def _run(tmp_path, name, steps=(150, 300, 450, 600), success=SUCCESS, method="finetune",
         tasks=("a", "b"), seed=0):  # fmt: skip
    """A run directory holding only an evaluation log (windows of 300 steps)."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    log = EvaluationLog(
        task_names=tasks, steps_per_task=300, schedule=(0, 1), method=method, stream="test",
        seed=seed, eval_episodes=10, deterministic=False,
    )  # fmt: skip
    for step, row in zip(steps, success, strict=False):
        log.append(step, row, [0.0] * len(row))
    log.save(run_dir / "evaluations.json")
    return run_dir


def _reference(tmp_path):
    return save_reference_curves(
        tmp_path / "reference.json", {"a": [[0.2, 0.4]], "b": [[0.5, 0.5]]},
        steps_per_task=300, eval_every=150, eval_episodes=10, seeds=[0],
    )  # fmt: skip


def _mean(report, metric, method="finetune"):
    return report["metrics"][method][metric]["mean"]


def test_metrics_equal_the_hand_computed_values(tmp_path):
    report = evaluate_continual_runs([_run(tmp_path, "x")], reference=_reference(tmp_path))
    # p(end): mean of the last (up to 5) evaluations: a 0.4, b 0.375.
    assert _mean(report, "average performance") == pytest.approx((0.4 + 0.375) / 2)
    # F_w = p(end of window w) - p(end): a 0.5 - 0.4, b 0.75 - 0.375.
    assert _mean(report, "forgetting") == pytest.approx((0.1 + 0.375) / 2)
    # FT_w = (AUC_w - AUC_ref) / (1 - AUC_ref): a (0.5 - 0.3) / 0.7, b (0.75 - 0.5) / 0.5.
    assert _mean(report, "forward transfer") == pytest.approx((0.2 / 0.7 + 0.5) / 2)
    assert not [n for n in report["notes"] if "partial" in n]
    assert report["details"]["reference"].endswith("reference.json (1 run per task)")


def test_a_stopped_run_is_evaluated_on_its_completed_windows(tmp_path):
    stopped = _run(tmp_path, "stopped", steps=(150, 300, 450))  # window 1 half done
    alone = evaluate_continual_runs([stopped], reference=_reference(tmp_path))
    # Window 0 only: the half of window 1 would compare half a curve with a whole reference.
    assert _mean(alone, "forward transfer") == pytest.approx(0.2 / 0.7)
    assert _mean(alone, "average performance") == pytest.approx((0.5 + 0.0) / 2)
    assert alone["details"]["methods"]["finetune"]["windows_completed"] == 1
    assert any("partial, the first 1 of 2 windows" in note for note in alone["notes"])
    # With a finished seed, both are cut to the windows both completed (no curve mismatch).
    both = evaluate_continual_runs(
        [stopped, _run(tmp_path, "finished", seed=1)], reference=_reference(tmp_path),
        out_dir=tmp_path / "both",
    )  # fmt: skip
    assert _mean(both, "forward transfer") == pytest.approx(0.2 / 0.7)
    assert (tmp_path / "both" / "success_curves_finetune.png").exists()
    assert not (tmp_path / "both" / "average_success.png").exists()  # one method: no comparison


def test_several_methods_get_an_average_success_plot(tmp_path):
    runs = [_run(tmp_path, "f"), _run(tmp_path, "e", method="ewc", steps=(150, 300, 450))]
    evaluate_continual_runs(runs, out_dir=tmp_path / "r")  # ewc partial: its first window
    assert (tmp_path / "r" / "average_success.png").exists()
    assert "average_success.png" in (tmp_path / "r" / "report.md").read_text()


def test_runs_that_cannot_share_a_table_are_refused(tmp_path):
    finished = _run(tmp_path, "finished")
    other_tasks = _run(tmp_path, "other", tasks=("c", "d"), method="ewc")
    with pytest.raises(ValueError, match="runs must share their tasks, windows, budget and"):
        evaluate_continual_runs([finished, other_tasks], out_dir=tmp_path / "r1")
    other_steps = _run(tmp_path, "other_steps", steps=(100, 300, 400, 600), seed=1)
    with pytest.raises(ValueError, match="must be evaluated at the same steps"):
        evaluate_continual_runs([finished, other_steps], out_dir=tmp_path / "r2")
    early = _run(tmp_path, "early", steps=(150,), success=SUCCESS[:1])
    with pytest.raises(ValueError, match="no window is complete in every run yet"):
        evaluate_continual_runs([early], out_dir=tmp_path / "r3")


def test_runs_that_would_pass_for_other_seeds_are_refused(tmp_path):
    first = _run(tmp_path, "first")
    with pytest.raises(ValueError, match="is given twice"):
        evaluate_continual_runs([first, tmp_path / "." / "first"], out_dir=tmp_path / "r1")
    same_seed = _run(tmp_path, "same_seed")
    with pytest.raises(ValueError, match="finetune: .* both have seed 0"):
        evaluate_continual_runs([first, same_seed], out_dir=tmp_path / "r2")
    # Two runs of one seed are refused wherever they stand, not only beside the first run.
    seed1, seed1_again = _run(tmp_path, "seed1", seed=1), _run(tmp_path, "seed1_again", seed=1)
    with pytest.raises(ValueError, match="seed1_again and .*seed1 both have seed 1"):
        evaluate_continual_runs([first, seed1, seed1_again], out_dir=tmp_path / "r4")
    # Two methods may share a seed: each row averages its own runs.
    evaluate_continual_runs([first, _run(tmp_path, "ewc", method="ewc")], out_dir=tmp_path / "r3")


def _configured_run(tmp_path, name, seed, **overrides):
    """A hand-written log beside the config.json a trainer writes (tiny CW10 config)."""
    from memrl.agents.continual import ContinualConfig

    run_dir = _run(tmp_path, name, seed=seed)
    config = ContinualConfig(tasks="reach-v3,button-press-v3", seed=seed, **overrides)
    (run_dir / "config.json").write_text(json.dumps({"agent": "x", **asdict(config)}))
    return run_dir


def test_a_method_row_averages_runs_of_one_setting(tmp_path):
    a = _configured_run(tmp_path, "a", seed=0, ewc_coef=1.0, threads=2)
    b = _configured_run(tmp_path, "b", seed=1, ewc_coef=1.0, threads=1)  # threads: same learning
    evaluate_continual_runs([a, b], out_dir=tmp_path / "r1")
    sweep = _configured_run(tmp_path, "sweep", seed=2, ewc_coef=10.0)
    with pytest.raises(ValueError, match=r"differ in \['ewc_coef'\], not only in their seed"):
        evaluate_continual_runs([a, sweep], out_dir=tmp_path / "r2")


def test_runs_evaluated_differently_are_refused(tmp_path):
    stochastic = _run(tmp_path, "stochastic")
    greedy = _run(tmp_path, "greedy", seed=1)
    log = EvaluationLog.load(greedy)
    log.deterministic = True
    log.save(greedy / "evaluations.json")
    with pytest.raises(ValueError, match="has deterministic True"):
        evaluate_continual_runs([stochastic, greedy], out_dir=tmp_path / "r")


def test_windows_of_fewer_than_five_evaluations_get_a_note(tmp_path):
    report = evaluate_continual_runs([_run(tmp_path, "x")])
    (note,) = [n for n in report["notes"] if "evaluations, fewer than the 5" in n]
    assert "each task's window holds 2 evaluations" in note and "--eval-every 60" in note
    steps = [60 * k for k in range(1, 11)]
    dense = _run(tmp_path, "dense", steps=steps, success=[[0.5, 0.5]] * 10)
    report = evaluate_continual_runs([dense])
    assert not [n for n in report["notes"] if "fewer than the 5" in n]


def test_retention_rows_are_end_of_window_values(tmp_path):
    log = EvaluationLog.load(_run(tmp_path, "x"))
    retention = retention_matrix(log)
    # The mean of each window's evaluations (at most 5): the values forgetting starts from.
    np.testing.assert_allclose(retention.matrix, [[0.5, 0.0], [0.3, 0.75]])
    assert retention.stage_labels == ("0: a", "1: b")
    multitask = EvaluationLog.load(_run(tmp_path, "mt", method="multitask"))
    assert retention_matrix(multitask).stage_labels == ("0: all tasks", "1: all tasks")
    assert retention_matrix(multitask).stage_tasks == ((), ())


def test_a_later_occurrence_is_compared_with_its_tasks_reference(tmp_path):
    # CW20's layout: the second pass of task a is the column "a#2", with a's reference curve.
    run = _run(tmp_path, "x", tasks=("a", "a#2"))
    reference = save_reference_curves(
        tmp_path / "a_only.json", {"a": [[0.2, 0.4]]},
        steps_per_task=300, eval_every=150, eval_episodes=10, seeds=[0],
    )  # fmt: skip
    report = evaluate_continual_runs([run], reference=reference)
    assert _mean(report, "forward transfer") == pytest.approx((0.2 / 0.7 + 0.45 / 0.7) / 2)


def _held_out_run(tmp_path, name, initial, held_out, seed=0):
    """Tasks a, b trained as in SUCCESS, c held out: its success initially and at each step."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    log = EvaluationLog(
        task_names=("a", "b", "c"), steps_per_task=300, schedule=(0, 1), method="finetune",
        stream="test", seed=seed, eval_episodes=10, deterministic=False, held_out=("c",),
    )  # fmt: skip
    if initial is not None:
        log.set_initial(initial, [0.0] * 3)
    for step, row, c in zip((150, 300, 450, 600), SUCCESS, held_out, strict=True):
        log.append(step, [*row, c], [0.0] * 3)
    log.save(run_dir / "evaluations.json")
    return run_dir


def test_held_out_columns_are_left_out_of_the_metrics_and_kept_in_the_retention(tmp_path):
    run = _held_out_run(tmp_path, "x", [0.1, 0.0, 0.4], [0.4, 0.6, 0.2, 0.4])
    report = evaluate_continual_runs([run], reference=_reference(tmp_path))
    # The hand values of test_metrics_equal_the_hand_computed_values: c changes nothing.
    assert _mean(report, "average performance") == pytest.approx((0.4 + 0.375) / 2)
    assert _mean(report, "forgetting") == pytest.approx((0.1 + 0.375) / 2)
    assert _mean(report, "forward transfer") == pytest.approx((0.2 / 0.7 + 0.5) / 2)
    retention = retention_matrix(EvaluationLog.load(run))
    assert retention.stage_labels == ("initial", "0: a", "1: b")
    assert retention.held_out == ("c",) and retention.stage_tasks == ((), ("a",), ("b",))
    np.testing.assert_allclose(
        retention.matrix, [[0.1, 0.0, 0.4], [0.5, 0.0, 0.5], [0.3, 0.75, 0.3]]
    )
    # One run: a plain mean. c: 0.3 at the end / 0.4 before training.
    assert _mean(report, "held-out retention") == pytest.approx(0.75)
    assert _mean(report, "held-out change") == pytest.approx(-0.1)


def test_held_out_retention_over_seeds(tmp_path):
    runs = [
        _held_out_run(tmp_path, "s0", [0.0, 0.0, 0.4], [0.4, 0.4, 0.2, 0.2]),  # 0.2 / 0.4
        _held_out_run(tmp_path, "s1", [0.0, 0.0, 0.5], [0.5, 0.5, 0.5, 0.5], seed=1),  # 1.0
    ]
    report = evaluate_continual_runs(runs, out_dir=tmp_path / "report")
    value = report["metrics"]["finetune"]["held-out retention"]
    assert value["mean"] == pytest.approx(0.75) and 0.5 <= value["lower"] < value["upper"] <= 1.0
    # Change: end - initial, -0.2 and 0.0.
    assert _mean(report, "held-out change") == pytest.approx(-0.1)
    held = report["details"]["methods"]["finetune"]["held_out"]
    assert held["initial"] == pytest.approx([0.45]) and held["end"] == pytest.approx([0.35])
    assert held["retention_per_run"] == pytest.approx([0.5, 1.0])
    assert (
        "| finetune | 0.45 -> 0.35 (0.75, 2/2) |" in (tmp_path / "report" / "report.md").read_text()
    )
    assert not [n for n in report["notes"] if "held-out" in n]


def test_held_out_retention_skips_runs_where_it_is_undefined(tmp_path):
    runs = [
        _held_out_run(tmp_path, "s0", [0.0, 0.0, 0.4], [0.4, 0.4, 0.2, 0.2]),  # 0.5
        _held_out_run(tmp_path, "s1", [0.0, 0.0, 0.5], [0.5, 0.5, 0.5, 0.5], seed=1),  # 1.0
        _held_out_run(tmp_path, "s2", [0.0, 0.0, 0.0], [0.1, 0.1, 0.3, 0.3], seed=2),  # undefined
    ]
    report = evaluate_continual_runs(runs, out_dir=tmp_path / "report")
    assert _mean(report, "held-out retention") == pytest.approx(0.75)  # over s0 and s1
    assert _mean(report, "held-out change") == pytest.approx((-0.2 + 0.0 + 0.3) / 3)
    assert any("held-out retention over 2 of 3 runs" in n for n in report["notes"])
    # Initial and end over all runs (0.3 and 1/3), retention over the 2 defined.
    assert (
        "| finetune | 0.30 -> 0.33 (0.75, 2/3) |" in (tmp_path / "report" / "report.md").read_text()
    )


def test_held_out_retention_is_omitted_when_undefined(tmp_path):
    never = _held_out_run(tmp_path, "never", [0.0, 0.0, 0.0], [0.0, 0.2, 0.0, 0.2])
    report = evaluate_continual_runs([never], out_dir=tmp_path / "r1")
    assert report["metrics"]["finetune"]["held-out retention"] is None
    assert _mean(report, "held-out change") == pytest.approx(0.1)
    assert any("no held-out task in any run" in n for n in report["notes"])
    assert "| finetune | 0.00 -> 0.10 (-, 0/1) |" in (tmp_path / "r1" / "report.md").read_text()
    uninitialised = _held_out_run(tmp_path, "old", None, [0.0, 0.2, 0.0, 0.2])
    report = evaluate_continual_runs([uninitialised], out_dir=tmp_path / "r2")
    assert any("a run has no initial evaluation" in n for n in report["notes"])
    assert report["metrics"]["finetune"]["held-out change"] is None
    assert retention_matrix(EvaluationLog.load(uninitialised)).stage_labels == ("0: a", "1: b")


def _pretraining_run(tmp_path, name, initial, p, q, seed=0):
    """Tasks a, b trained as in SUCCESS, c held out (as above), p and q pretraining tasks."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    log = EvaluationLog(
        task_names=("a", "b", "c", "p", "q"), steps_per_task=300, schedule=(0, 1), method="l2m",
        stream="test", seed=seed, eval_episodes=10, deterministic=True,
        held_out=("c", "p", "q"), pretraining=("p", "q"), learner="Offline fine-tuning",
    )  # fmt: skip
    log.set_initial(initial, [0.0] * 5)
    c = [0.4, 0.6, 0.2, 0.4]
    for step, row, *rest in zip((150, 300, 450, 600), SUCCESS, c, p, q, strict=True):
        log.append(step, [*row, *rest], [0.0] * 5)
    log.save(run_dir / "evaluations.json")
    return run_dir


def test_pretraining_columns_give_the_retention_of_pretraining_skill_apart_from_held_out(
    tmp_path,
):
    run = _pretraining_run(tmp_path, "x", [0.1, 0.0, 0.4, 0.8, 0.4],
                           p=[0.8, 0.6, 0.4, 0.2], q=[0.4, 0.4, 0.4, 0.4])  # fmt: skip
    report = evaluate_continual_runs([run], out_dir=tmp_path / "r1")
    assert report["title"] == "Offline fine-tuning on test: l2m (1 run)"
    assert _mean(report, "average performance", "l2m") == pytest.approx((0.4 + 0.375) / 2)
    # The frozen model's mean success 0.6; after the last task (the mean of the last window's
    # evaluations) p 0.3, q 0.4: 0.35 / 0.6.
    assert _mean(report, "pretraining retention", "l2m") == pytest.approx(0.35 / 0.6)
    assert _mean(report, "held-out retention", "l2m") == pytest.approx(0.75)  # c alone
    details = report["details"]["methods"]["l2m"]
    assert details["held_out"]["tasks"] == ["c"]
    assert details["pretraining"]["retention"] == pytest.approx([0.375, 1.0])
    markdown = (tmp_path / "r1" / "report.md").read_text()
    assert "| l2m | 0.58 | 0.80 -> 0.30 (0.38) | 0.40 -> 0.40 (1.00) |" in markdown
    assert "| 1: b | 0.30 | **0.75** | 0.30 | 0.30 | 0.40 |" in markdown  # the retention matrix
    # Two seeds: the mean of the runs' ratios, with an interval.
    other = _pretraining_run(tmp_path, "y", [0.1, 0.0, 0.4, 0.5, 0.5],
                             p=[0.5] * 4, q=[0.5] * 4, seed=1)  # fmt: skip
    report = evaluate_continual_runs([run, other], out_dir=tmp_path / "r2")
    value = report["metrics"]["l2m"]["pretraining retention"]
    assert value["mean"] == pytest.approx((0.35 / 0.6 + 1.0) / 2)
    assert value["lower"] < value["mean"] < value["upper"]


def test_per_task_tables_show_each_methods_tasks_and_windows():
    def details(final, forgetting, transfer):
        return {
            "per_task": {"task_names": ["a", "b"], "final_performance": final},
            "per_window": {"task_names": ["a", "b"][: len(forgetting)], "forgetting": forgetting,
                           "forward_transfer": transfer},
        }  # fmt: skip

    tables = per_task_tables({
        "finetune": details([0.1, 0.9], [0.8, 0.0], [0.25, -0.5]),
        "ewc": details([0.6, 0.7], [0.125], None),  # one window reached, no references
        "multitask": details([0.9, 1.0], [0.0, 0.0], None),
    })  # fmt: skip
    success, windows = tables.values()
    assert success.splitlines() == [
        "| method | a | b |", "|---|---|---|", "| finetune | 0.10 | 0.90 |",
        "| ewc | 0.60 | 0.70 |", "| multitask | 0.90 | 1.00 |",
    ]  # fmt: skip
    assert windows.splitlines() == [
        "| method | 1. a | 2. b |", "|---|---|---|", "| finetune | 0.80 / 0.25 | 0.00 / -0.50 |",
        "| ewc | 0.12 / - | - |", "| multitask | - | - |",
    ]  # fmt: skip
