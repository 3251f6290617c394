"""Continual World's evaluation of continual runs: metrics, retention, plots and the report.

A continual run's trainer logs every evaluation in ``evaluations.json``
(:class:`~memrl.agents.continual.evaluation_log.EvaluationLog`); this module turns those logs into
Continual World's metrics and the report. The trained tasks' columns of a log are the layout of
:class:`memrl.eval.metrics.EvaluationHistory` (:func:`evaluation_history` builds one), which
Continual World's metrics read; the held-out columns and the initial evaluation go into the
retention matrix (:func:`retention_matrix`).

- :func:`evaluate_continual` (``memrl eval RUN_DIR``): P, F, FT of one run, the success curves
  with the task boundaries, the retention heatmap; ``report.md``, ``report.json`` and PNGs.
- :func:`evaluate_continual_runs`: the same over several runs (seeds), one row per method, with
  Continual World's 90% bootstrap intervals over seeds, and the retention of held-out tasks.

Forward transfer needs single-task reference curves (:mod:`memrl.eval.reference_curves`);
without them FT is reported as unavailable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from memrl.agents.continual.config import suggested_eval_every
from memrl.agents.continual.evaluation_log import CONTINUAL_SAC, EvaluationLog
from memrl.agents.continual.trainer import learning_settings, saved_run_config
from memrl.agents.l2m.offline_config import RESUMABLE_CHANGES as OFFLINE_RESUMABLE_CHANGES
from memrl.eval.metrics import (
    LAST_EVALUATIONS,
    ConfidenceInterval,
    ContinualWorldMetrics,
    EvaluationHistory,
    bootstrap_mean_ci,
    continual_world_metrics,
)
from memrl.eval.pretraining_retention import pretraining_details, pretraining_table
from memrl.eval.reference_curves import default_reference_path, load_reference_curves
from memrl.eval.retention import (
    RetentionMatrix,
    format_table,
    held_out_retention,
    mean_retention,
)
from memrl.streams.catalogue import base_task_name

METRIC_NAMES = {
    "performance": "average performance",
    "forgetting": "forgetting",
    "forward_transfer": "forward transfer",
    "cycle_forgetting": "per-cycle forgetting",
    "held_out_change": "held-out change",
    "held_out_retention": "held-out retention",
    "pretraining_retention": "pretraining retention",
}
"""Column titles of the metrics in reports."""


# -- a log as the metrics' inputs ----------------------------------------------------------------


def evaluation_history(log: EvaluationLog, windows: int | None = None) -> EvaluationHistory:
    """The log's trained tasks as an ``EvaluationHistory``, the input of Continual World's metrics.

    Args:
        log: A continual run's evaluation log.
        windows: Keep the first this many windows (and the evaluations up to their end);
            None: every window reached, the last one possibly unfinished.

    Raises:
        ValueError: The log holds no evaluation yet, or fewer windows than asked for.
    """
    if not log.steps:
        raise ValueError("the evaluation log is empty: no evaluation has been made yet")
    if windows is None:
        windows = log.windows_reached
    if not 1 <= windows <= log.windows_reached:
        raise ValueError(f"windows must be in 1..{log.windows_reached}, got {windows}")
    steps = np.asarray(log.steps)
    keep = steps <= windows * log.steps_per_task
    return EvaluationHistory(
        steps=steps[keep],
        success=np.asarray(log.success)[keep, : len(log.trained_names)],
        task_names=log.trained_names,
        steps_per_task=log.steps_per_task,
        schedule=log.schedule[:windows],
    )


def retention_matrix(
    log: EvaluationLog, windows: int | None = None, last_evaluations: int = LAST_EVALUATIONS
) -> RetentionMatrix:
    """Success on every task after every window: the mean of the window's last evaluations.

    The mean of the last ``last_evaluations`` evaluations inside the window is Continual
    World's end-of-window value, so the trained task's cell is the value its forgetting starts
    from. The first row is the initial evaluation when the log has one; held-out tasks are
    the matrix's held-out columns.

    Args:
        log: A continual run's evaluation log (every column: held-out tasks too).
        windows: As in :func:`evaluation_history`.
        last_evaluations: Evaluations averaged at the end of each window (fewer when the
            window holds fewer).
    """
    history = evaluation_history(log, windows)
    success = np.asarray(log.success)  # every column; history's rows are its first rows
    rows, labels = [], []
    trained: list[tuple[str, ...]] = []
    if log.initial_success is not None:
        rows.append(np.asarray(log.initial_success))
        labels.append("initial")
        trained.append(())
    for window in range(history.num_windows):
        inside = np.flatnonzero(history.evaluations_in(window, window))
        if inside.size == 0:
            continue
        rows.append(success[inside[-last_evaluations:]].mean(axis=0))
        if log.method == "multitask":  # every window trains every task
            labels.append(f"{window}: all tasks")
            trained.append(())
        else:
            task = log.task_names[log.schedule[window]]
            labels.append(f"{window}: {task}")
            trained.append((task,))
    return RetentionMatrix(
        np.asarray(rows), log.task_names, tuple(labels), log.held_out, tuple(trained)
    )


def load_evaluation_history(run_dir: str | Path) -> EvaluationHistory:
    """The ``EvaluationHistory`` of a continual run directory (for ``memrl.eval.metrics``)."""
    return evaluation_history(EvaluationLog.load(run_dir))


# -- reports -----------------------------------------------------------------------------------


def _resolve_reference(
    reference: str | Path | Mapping[str, ArrayLike] | None, logs: Sequence[EvaluationLog]
) -> tuple[dict[str, np.ndarray] | None, str]:
    """Reference curves for the logs' tasks, and a note saying where they came from."""
    budget = logs[0].steps_per_task
    if reference is None and logs[0].learner != CONTINUAL_SAC:
        return None, (
            "no reference curves given (--reference FILE: single-task curves of the same learner "
            "and budget): forward transfer omitted"
        )
    if reference is None:
        path = default_reference_path(budget)
        if not path.exists():
            return None, f"no reference curves ({path} does not exist): forward transfer omitted"
        reference = path
    if isinstance(reference, str | Path):
        first = logs[0]
        curves = load_reference_curves(
            reference,
            steps_per_task=budget,
            eval_every=first.steps[0] if first.steps else None,
            deterministic=first.deterministic,
        )
        source = str(reference)
    else:
        curves = {name: np.asarray(value, dtype=np.float64) for name, value in reference.items()}
        source = "given reference curves"
    # A task's later occurrences ("hammer-v3#2", CW20) share the task's reference (reference_auc).
    needed = {base_task_name(name) for log in logs for name in evaluation_history(log).window_names}
    missing = sorted(needed - set(curves))
    if missing:
        return None, f"{source} lacks tasks {missing}: forward transfer omitted"
    runs = min(np.atleast_2d(curves[name]).shape[0] for name in needed)
    trimmed = {name: np.atleast_2d(curves[name])[:runs] for name in needed}
    return trimmed, f"reference curves: {source} ({runs} run{'s' if runs > 1 else ''} per task)"


def _metrics_row(metrics: ContinualWorldMetrics, method: str) -> dict[str, Any]:
    """The report row of a method: P, F and FT where they mean something.

    Per-cycle forgetting is added when tasks re-occur. With one seed the row holds plain means: an
    interval over one seed would be a point.
    """
    per_window = method != "multitask"
    row = {
        METRIC_NAMES["performance"]: metrics.performance,
        METRIC_NAMES["forgetting"]: metrics.forgetting if per_window else None,
        METRIC_NAMES["forward_transfer"]: metrics.forward_transfer if per_window else None,
    }
    if per_window and metrics.cycle_forgetting is not None:  # tasks re-occur
        row[METRIC_NAMES["cycle_forgetting"]] = metrics.cycle_forgetting
    if metrics.num_seeds == 1:
        return {name: None if v is None else v.mean for name, v in row.items()}
    return row


def _metrics(
    histories: Sequence[EvaluationHistory], reference: Mapping[str, np.ndarray] | None
) -> tuple[ContinualWorldMetrics, str | None]:
    """Continual World's metrics; without FT (and a note) when the references do not allow it."""
    if reference is not None:
        try:
            return continual_world_metrics(histories, reference), None
        except ValueError as error:
            return continual_world_metrics(histories), f"forward transfer omitted: {error}"
    return continual_world_metrics(histories), None


def evaluate_continual(
    run_dir: str | Path, reference: str | Path | Mapping[str, ArrayLike] | None = None
) -> dict[str, Any]:
    """Continual World's metrics of one run, written as ``report.md``, ``report.json`` and plots.

    Args:
        run_dir: A continual run directory (``memrl train --stream ...``); a run still in progress
            is evaluated on the windows it has reached.
        reference: Single-task reference curves for forward transfer: a JSON file written by
            :func:`memrl.eval.reference_curves.save_reference_curves`, a mapping task ->
            ``[runs, evaluations]`` success, or None for
            ``assets/reference_curves/sac-<steps_per_task>.json`` when it exists.

    Returns:
        The report (``report.json``'s content).
    """
    return evaluate_continual_runs([run_dir], reference=reference, out_dir=run_dir)


def evaluate_continual_runs(
    run_dirs: Sequence[str | Path],
    reference: str | Path | Mapping[str, ArrayLike] | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Continual World's table over several runs: one row per method, 90% CIs over seeds.

    Every run must have the same tasks, windows and budget (methods and seeds differ). Each method
    is evaluated on the windows that all of its runs have completed: evaluations past the last
    completed window are left out, so runs stopped at different points compare like with like, and
    an unfinished window does not bias forgetting and forward transfer. A report on fewer windows
    than the stream has says so in its notes.

    Args:
        run_dirs: Continual run directories (any mix of methods and seeds).
        reference: As in :func:`evaluate_continual`.
        out_dir: Where ``report.md``, ``report.json`` and the plots go (default: the runs' common
            parent directory): each method's success curves and retention heatmap, and with
            several methods ``average_success.png``, their average success against env steps.

    Returns:
        The report (``report.json``'s content), with ``details["table"]`` a Markdown table of
        P, F and FT per method.

    Raises:
        ValueError: No run, runs of different tasks, windows or budgets, runs of one method
            evaluated at different steps, or a method none of whose windows is complete yet.
    """
    from memrl.eval.plots import plot_average_success, plot_retention_heatmap, plot_success_curves
    from memrl.eval.report import write_report

    if not run_dirs:
        raise ValueError("run_dirs must name at least one run directory")
    logs = [EvaluationLog.load(run_dir) for run_dir in run_dirs]
    _check_same_layout(logs, run_dirs)
    _check_distinct_runs(logs, run_dirs)
    out = Path(out_dir) if out_dir is not None else Path(os.path.commonpath(
        [Path(d).resolve().parent for d in run_dirs]))  # fmt: skip
    by_method: dict[str, list[EvaluationLog]] = {}
    dirs_by_method: dict[str, list[str]] = {}
    for run_dir, log in zip(run_dirs, logs, strict=True):
        by_method.setdefault(log.method, []).append(log)
        dirs_by_method.setdefault(log.method, []).append(str(run_dir))
    curves, reference_note = _resolve_reference(reference, logs)
    rows: dict[str, dict[str, Any]] = {}
    details: dict[str, Any] = {"reference": reference_note, "methods": {}}
    plots: dict[str, Path] = {}
    single = len(logs) == 1
    partial: list[str] = []
    histories_by_method: dict[str, list[EvaluationHistory]] = {}
    initial_by_method: dict[str, list[list[float]]] = {}
    matrices: dict[str, RetentionMatrix] = {}  # each method's first run's
    for method, method_logs in by_method.items():
        windows, histories = _completed_histories(method, method_logs, dirs_by_method[method])
        if windows < len(method_logs[0].schedule):
            partial.append(
                f"{method}: partial, the first {windows} of {len(method_logs[0].schedule)} "
                "windows (the ones every run has completed)"
            )
        metrics, note = _metrics(histories, curves)
        rows[method] = _metrics_row(metrics, method)
        held_out, held_out_note = _held_out_details(method_logs, windows)
        if held_out is not None:
            rows[method].update(held_out.pop("rows"))
        pretraining, pretraining_note = _pretraining_details(method_logs, windows)
        if pretraining is not None:
            rows[method][METRIC_NAMES["pretraining_retention"]] = pretraining.pop("row")
        note = "; ".join(n for n in (note, held_out_note, pretraining_note) if n) or None
        details["methods"][method] = {
            **metrics.to_dict(),
            "runs": dirs_by_method[method],
            "seeds": [log.seed for log in method_logs],
            "windows_completed": windows,
            "windows": len(method_logs[0].schedule),
            "held_out": held_out,
            "pretraining": pretraining,
            "note": note,
        }
        matrices[method] = retention_matrix(method_logs[0], windows)
        suffix = "" if single else f"_{method}"
        # Drawn at step 0 when every run evaluated before training.
        initial = [log.initial_success[: len(log.trained_names)]
                   for log in method_logs if log.initial_success is not None]  # fmt: skip
        histories_by_method[method] = histories
        if len(initial) == len(method_logs):
            initial_by_method[method] = initial
        plots[f"success curves ({method})"] = plot_success_curves(
            histories, out / f"success_curves{suffix}.png", title=f"{method}: success per task",
            initial=initial_by_method.get(method),
        )  # fmt: skip
        plots[f"retention ({method}, seed {method_logs[0].seed})"] = plot_retention_heatmap(
            matrices[method], out / f"retention{suffix}.png",
            title=f"{method}: success after each task",
        )  # fmt: skip
    if len(by_method) > 1:
        plots["average success (all methods)"] = plot_average_success(
            histories_by_method, out / "average_success.png", initial=initial_by_method,
            title="average success over the tasks (mean over seeds)",
        )  # fmt: skip
    details["table"] = results_table(rows)
    sections = per_task_tables(details["methods"])
    details["per_task_tables"] = sections
    if any((info["held_out"] or {}).get("tasks") for info in details["methods"].values()):
        heading = "Held-out tasks: success before training -> at the end (retention, runs)"
        sections[f"{heading}, mean over seeds"] = held_out_table(details["methods"])
    if any(info["pretraining"] for info in details["methods"].values()):
        heading = "Pretraining tasks: success of the frozen model -> after the last task"
        sections[f"{heading} (retention), mean over seeds"] = pretraining_table(details["methods"])
    for method, matrix in matrices.items():
        heading = f"Retention matrix ({method}, seed {by_method[method][0].seed})"
        sections[heading] = format_table(matrix)
    first = logs[0]
    title = (
        f"{first.learner} on {first.stream}: {', '.join(by_method)}"
        f" ({len(logs)} run{'s' if len(logs) > 1 else ''})"
    )
    scored = sorted({task for log in logs for task in log.return_scored})
    details["score"] = "success rate" + (
        f"; {', '.join(scored)} define no success: their score is the normalised return "
        "(episode return / its maximum, in [0, 1])" if scored else ""
    )  # fmt: skip
    short = _short_window_note(first)
    notes = [reference_note, *partial, *([details["score"]] if scored else []), *short] + [
        f"{method}: {info['note']}" for method, info in details["methods"].items() if info["note"]
    ]
    _, json_path = write_report(
        out, rows, plots, title=title, details=details, notes=notes, sections=sections
    )
    report: dict[str, Any] = json.loads(json_path.read_text())
    return report


def _check_same_layout(logs: Sequence[EvaluationLog], run_dirs: Sequence[str | Path]) -> None:
    """Refuse runs whose columns, windows or evaluations differ: one table cannot hold them."""
    first = logs[0]
    fields = ("task_names", "held_out", "schedule", "steps_per_task", "deterministic",
              "eval_episodes")  # fmt: skip
    for run_dir, log in zip(run_dirs, logs, strict=True):
        for name in fields:
            if getattr(log, name) != getattr(first, name):
                raise ValueError(
                    f"runs must share their tasks, windows, budget and evaluation: {run_dir} has "
                    f"{name} {getattr(log, name)}, {run_dirs[0]} has {getattr(first, name)}"
                )


def _check_distinct_runs(logs: Sequence[EvaluationLog], run_dirs: Sequence[str | Path]) -> None:
    """Refuse a run given twice, and runs of one method that differ in more than their seed.

    A method's row averages its runs as seeds: a directory given twice, two runs of one seed, or
    runs of different settings (an ``ewc_coef`` sweep) would pass for seeds they are not.
    """
    seen: dict[Path, str | Path] = {}
    for run_dir in run_dirs:
        resolved = Path(run_dir).resolve()
        if resolved in seen:
            raise ValueError(f"{run_dir} is given twice (as {seen[resolved]} too)")
        seen[resolved] = run_dir
    seeds: dict[tuple[str, int], str | Path] = {}  # (method, seed) -> its run
    firsts: dict[str, tuple[str | Path, dict[str, Any] | None]] = {}  # method -> its first run
    for run_dir, log in zip(run_dirs, logs, strict=True):
        same_seed = seeds.setdefault((log.method, log.seed), run_dir)
        if same_seed != run_dir:
            raise ValueError(
                f"{log.method}: {run_dir} and {same_seed} both have seed {log.seed}; a method's "
                "runs are averaged as seeds, so each must have its own"
            )
        config = _varying_config(run_dir)
        other_dir, other_config = firsts.setdefault(log.method, (run_dir, config))
        if config is not None and other_config is not None and config != other_config:
            changed = sorted(k for k in config if config[k] != other_config.get(k))
            raise ValueError(
                f"{log.method}: {run_dir} and {other_dir} differ in {changed}, not only in their "
                "seed; evaluate each setting on its own (one row averages seeds of one setting)"
            )


def _varying_config(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's settings (``learning_settings``) from its ``config.json``; None without one."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if saved.pop("offline", False):  # offline fine-tuning: its settings but the seed and paths
        return {k: v for k, v in saved.items() if k not in ("seed", *OFFLINE_RESUMABLE_CHANGES)}
    saved.pop("agent", None)
    return learning_settings(saved_run_config(saved))


def _short_window_note(log: EvaluationLog) -> list[str]:
    """A note when a window holds fewer evaluations than a value "at the end" averages."""
    per_window = sum(0 < step <= log.steps_per_task for step in log.steps)
    if not log.steps or log.steps[-1] < log.steps_per_task or per_window >= LAST_EVALUATIONS:
        return []
    if log.learner == CONTINUAL_SAC:
        option = f"--eval-every {suggested_eval_every(log.steps_per_task, LAST_EVALUATIONS)}"
    else:  # offline fine-tuning
        option = f"--evaluations-per-task {LAST_EVALUATIONS}"
    return [
        f"each task's window holds {per_window} evaluation{'s' if per_window > 1 else ''}, fewer "
        f"than the {LAST_EVALUATIONS} that Continual World averages for a value 'at the end', so "
        "those values reach back before the window and mix in success from before the task was "
        f"trained; evaluate more often, e.g. {option}"
    ]


def _completed_histories(
    method: str, logs: Sequence[EvaluationLog], run_dirs: Sequence[str]
) -> tuple[int, list[EvaluationHistory]]:
    """The windows every run of a method has completed, and the runs' histories cut to them.

    Raises:
        ValueError: No window is complete in every run, or the runs were evaluated at other steps.
    """
    windows = min(log.windows_completed for log in logs)
    if windows == 0:
        raise ValueError(
            f"{method}: no window is complete in every run yet (a window ends after "
            f"{logs[0].steps_per_task} steps; the last evaluations are at steps "
            f"{[log.steps[-1] if log.steps else 0 for log in logs]})"
        )
    histories = [evaluation_history(log, windows) for log in logs]
    for run_dir, history in zip(run_dirs, histories, strict=True):
        if not np.array_equal(history.steps, histories[0].steps):
            raise ValueError(
                f"{method}: runs must be evaluated at the same steps to be averaged: {run_dir} "
                f"at {history.steps.tolist()}, {run_dirs[0]} at {histories[0].steps.tolist()}"
            )
    return windows, histories


def _held_out_details(
    logs: Sequence[EvaluationLog], windows: int
) -> tuple[dict[str, Any] | None, str | None]:
    """Success of the held-out tasks before training and at the end, its change, and retention.

    Per run, over its held-out tasks: the mean change, success at the end (the last window's
    end-of-window value) minus success before any training, and the mean retention, the ratio of
    the two (undefined for a task the initial policy never solved: nothing to retain). Per method:
    the mean over runs with a 90% bootstrap interval (a plain mean for one run); retention over
    the runs where it is defined.

    Returns:
        None (no held-out tasks), or the details (``"rows"``: the table's values), and a note when
        retention is undefined in some runs or a run has no initial evaluation.
    """
    held = logs[0].held_out_only
    if not held:
        return None, None
    if any(log.initial_success is None for log in logs):
        rows = dict.fromkeys((METRIC_NAMES["held_out_change"], METRIC_NAMES["held_out_retention"]))
        return {"rows": rows}, "held-out metrics omitted: a run has no initial evaluation"
    # The pretraining columns have a section of their own (_pretraining_details).
    matrices = [replace(retention_matrix(log, windows), held_out=held) for log in logs]
    columns = [matrices[0].column(name) for name in held]
    initial = np.array([m.matrix[0, columns] for m in matrices])  # [runs, held-out tasks]
    end = np.array([m.matrix[-1, columns] for m in matrices])
    change = (end - initial).mean(axis=1)  # [runs]
    by_task = [held_out_retention(m) for m in matrices]
    ratios = np.array([list(r.values()) for r in by_task])  # [runs, held-out tasks]
    per_run = np.array([mean_retention(r) for r in by_task])
    defined = per_run[np.isfinite(per_run)]
    note = None
    if defined.size == 0:
        note = (
            "held-out retention undefined: the initial policy solved no held-out task in any run "
            "(nothing to retain)"
        )
    elif defined.size < per_run.size:
        note = (
            f"held-out retention over {defined.size} of {per_run.size} runs: in the other "
            f"{per_run.size - defined.size} the initial policy solved no held-out task"
        )

    def summary(values: np.ndarray) -> ConfidenceInterval | float | None:
        if values.size == 0:
            return None
        return bootstrap_mean_ci(values) if values.size > 1 else float(values[0])

    def task_means(values: np.ndarray) -> list[float | None]:
        return [float(np.mean(c[np.isfinite(c)])) if np.isfinite(c).any() else None
                for c in values.T]  # fmt: skip

    return {
        "rows": {
            METRIC_NAMES["held_out_change"]: summary(change),
            METRIC_NAMES["held_out_retention"]: summary(defined),
        },
        "tasks": list(held),
        "initial": task_means(initial),
        "end": task_means(end),
        "retention": task_means(ratios),
        "retention_runs": [int(n) for n in np.isfinite(ratios).sum(axis=0)],
        "change_per_run": [float(v) for v in change],
        "retention_per_run": [None if not np.isfinite(v) else float(v) for v in per_run],
    }, note


def _pretraining_details(
    logs: Sequence[EvaluationLog], windows: int
) -> tuple[dict[str, Any] | None, str | None]:
    """The retention of pretraining skill (offline fine-tuning runs), or None without it.

    See :mod:`memrl.eval.pretraining_retention`; the frozen model's success is the initial
    evaluation's.
    """
    tasks = logs[0].pretraining
    if not tasks:
        return None, None
    if any(log.initial_success is None for log in logs):
        return {"row": None}, "pretraining retention omitted: a run has no initial evaluation"
    return pretraining_details([retention_matrix(log, windows) for log in logs], tasks)


def held_out_table(methods: Mapping[str, Mapping[str, Any]], precision: int = 2) -> str:
    """A Markdown table of each held-out task per method: ``initial -> end (retention, k/n)``.

    Initial and end are means over all runs; retention over the ``k`` of ``n`` runs in which the
    initial policy solved the task.

    Args:
        methods: ``details["methods"]`` of :func:`evaluate_continual_runs` (with ``held_out``).
        precision: Decimals.
    """

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.{precision}f}"

    tasks = next(info["held_out"]["tasks"] for info in methods.values()
                 if (info["held_out"] or {}).get("tasks"))  # fmt: skip
    lines = ["| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for method, info in methods.items():
        held = info["held_out"] or {}
        if "tasks" not in held:
            cells = ["-"] * len(tasks)
        else:
            runs = len(held["change_per_run"])
            cells = [
                f"{number(a)} -> {number(b)} ({number(r)}, {k}/{runs})"
                for a, b, r, k in zip(
                    held["initial"],
                    held["end"],
                    held["retention"],
                    held["retention_runs"],
                    strict=True,
                )
            ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_task_tables(methods: Mapping[str, Mapping[str, Any]], precision: int = 2) -> dict[str, str]:
    """Markdown tables of the per-task details, means over seeds: heading -> table.

    "Success at the end" has a column per task (``p_i(end)``, the number P averages over its last
    evaluations). "Forgetting / forward transfer per window" has a column per training window,
    ``F_w / FT_w`` (``-``: no references, and for multitask, which has no windows of its own).

    Args:
        methods: ``details["methods"]`` of :func:`evaluate_continual_runs`: method ->
            ``ContinualWorldMetrics.to_dict()`` (plus run bookkeeping).
        precision: Decimals.
    """

    def row(method: str, cells: Sequence[str]) -> str:
        return f"| {method} | " + " | ".join(cells) + " |"

    def header(columns: Sequence[str]) -> list[str]:
        return [row("method", columns), "|---|" + "---|" * len(columns)]

    first = next(iter(methods.values()))
    tasks = first["per_task"]["task_names"]
    success = header(tasks)
    for method, info in methods.items():
        success.append(row(method, [f"{v:.{precision}f}" for v in
                                    info["per_task"]["final_performance"]]))  # fmt: skip
    columns = max((info["per_window"]["task_names"] for info in methods.values()), key=len)
    numbered = [f"{i + 1}. {name}" for i, name in enumerate(columns)]
    window = header(numbered)
    for method, info in methods.items():
        per_window = info["per_window"]
        transfer = per_window["forward_transfer"]
        cells = []
        for index in range(len(columns)):
            if method == "multitask" or index >= len(per_window["forgetting"]):
                cells.append("-")
                continue
            ft = "-" if transfer is None else f"{transfer[index]:.{precision}f}"
            cells.append(f"{per_window['forgetting'][index]:.{precision}f} / {ft}")
        window.append(row(method, cells))
    return {
        "Success at the end, per task (mean over seeds)": "\n".join(success),
        "Forgetting / forward transfer per window (mean over seeds)": "\n".join(window),
    }


def results_table(rows: Mapping[str, Mapping[str, Any]], precision: int = 2) -> str:
    """A Markdown table of the metrics per method, ``mean [lower, upper]`` (``-``: n/a).

    Columns: P, F and FT, and per-cycle forgetting when a row has it.
    """
    columns = [name for name in METRIC_NAMES.values() if any(name in row for row in rows.values())]
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method, values in rows.items():
        cells = []
        for column in columns:
            value = values.get(column)
            if value is None:
                cells.append("-")
            elif hasattr(value, "lower"):
                cells.append(
                    f"{value.mean:.{precision}f} [{value.lower:.{precision}f}, "
                    f"{value.upper:.{precision}f}]"
                )
            else:
                cells.append(f"{float(value):.{precision}f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
