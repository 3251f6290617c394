"""Retention of pretraining skill: how much of a pretrained model's success survives fine-tuning.

A run that fine-tunes a pretrained model on a stream (``memrl train --offline``) also plays a
sample of the model's pretraining tasks at every evaluation, and once before the stream with the
frozen model (the retention matrix's initial row). The retention of pretraining skill is

    mean success on the sample after the last task / the frozen model's mean success on it,

a ratio of means (1: everything retained; undefined when the frozen model solves none of the
sample), and per task the same ratio of that task's success (undefined where the frozen model
never succeeded: nothing to retain). Over several runs (seeds) a method's value is the mean of the
runs' ratios, with a 90% bootstrap interval (a plain mean for one run). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memrl.eval.metrics import bootstrap_mean_ci
from memrl.eval.retention import RetentionMatrix


def pretraining_retention(
    retention: RetentionMatrix, tasks: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """The retention of pretraining skill of one run.

    Args:
        retention: The run's matrix; its first stage must be the frozen (initial) model, its last
            the end of the stream.
        tasks: The pretraining tasks (columns of the matrix).

    Returns:
        ``(ratio of the means, {task: ratio})``, NaN where the frozen model's success is 0.

    Raises:
        ValueError: No tasks, or a first stage that trained a task.
    """
    if not tasks:
        raise ValueError("tasks must name at least one pretraining task")
    if retention.stage_tasks and retention.stage_tasks[0]:
        raise ValueError(
            f"the first stage must be the frozen model, but {retention.stage_labels[0]!r} trained "
            f"{list(retention.stage_tasks[0])}"
        )
    columns = [retention.column(task) for task in tasks]
    before, after = retention.matrix[0, columns], retention.matrix[-1, columns]
    overall = float(after.mean() / before.mean()) if before.mean() > 0 else float("nan")
    per_task = {
        task: float(a / b) if b > 0 else float("nan")
        for task, a, b in zip(tasks, after, before, strict=True)
    }
    return overall, per_task


def pretraining_details(
    matrices: Sequence[RetentionMatrix], tasks: Sequence[str]
) -> tuple[dict[str, Any], str | None]:
    """One method's retention of pretraining skill over its runs, for a report.

    Args:
        matrices: Each run's retention matrix (initial row first).
        tasks: The pretraining tasks.

    Returns:
        The details (``"row"``: the report table's value, a 90% interval over the runs where it is
        defined, a plain mean for one, None for none; ``"tasks"``, ``"initial"`` and ``"end"``:
        mean success per task over the runs; ``"retention"``: each task's mean ratio over the
        runs where it is defined; ``"per_run"``), and a note when some runs leave it undefined.
    """
    results = [pretraining_retention(matrix, tasks) for matrix in matrices]
    per_run = np.array([overall for overall, _ in results])
    defined = per_run[np.isfinite(per_run)]
    columns = [matrices[0].column(task) for task in tasks]
    initial = np.array([m.matrix[0, columns] for m in matrices]).mean(axis=0)
    end = np.array([m.matrix[-1, columns] for m in matrices]).mean(axis=0)
    ratios = np.array([[by_task[task] for task in tasks] for _, by_task in results])
    note = None
    if defined.size == 0:
        note = (
            "pretraining retention undefined: the frozen model solved none of the pretraining "
            "tasks evaluated (nothing to retain)"
        )
    elif defined.size < per_run.size:
        note = (
            f"pretraining retention over {defined.size} of {per_run.size} runs: in the others "
            "the frozen model solved none of the pretraining tasks evaluated (nothing to retain)"
        )
    row: Any = None
    if defined.size > 1:
        row = bootstrap_mean_ci(defined)
    elif defined.size == 1:
        row = float(defined[0])
    return {
        "row": row,
        "tasks": list(tasks),
        "initial": initial.tolist(),
        "end": end.tolist(),
        "retention": [
            float(np.mean(c[np.isfinite(c)])) if np.isfinite(c).any() else None for c in ratios.T
        ],
        "per_run": [float(v) if np.isfinite(v) else None for v in per_run],
    }, note


def pretraining_table(methods: Mapping[str, Mapping[str, Any]], precision: int = 2) -> str:
    """A Markdown table per method: the retention, then every task's ``frozen -> end (ratio)``.

    Args:
        methods: Method -> its details (``"pretraining"``: :func:`pretraining_details`' output,
            or None for a method without pretraining tasks).
        precision: Decimals.
    """

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.{precision}f}"

    tasks = next(info["pretraining"]["tasks"] for info in methods.values()
                 if info.get("pretraining"))  # fmt: skip
    lines = [
        "| method | retention | " + " | ".join(tasks) + " |",
        "|---|---|" + "---|" * len(tasks),
    ]
    for method, info in methods.items():
        details = info.get("pretraining")
        if not details:
            lines.append(f"| {method} | - | " + " | ".join("-" for _ in tasks) + " |")
            continue
        runs = [v for v in details["per_run"] if v is not None]
        overall = number(float(np.mean(runs))) if runs else "-"
        cells = [
            f"{number(a)} -> {number(b)} ({number(r)})"
            for a, b, r in zip(
                details["initial"], details["end"], details["retention"], strict=True
            )
        ]
        lines.append(f"| {method} | {overall} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
