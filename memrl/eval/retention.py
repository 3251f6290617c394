"""The retention matrix: success on every task (seen, future, held-out) after every stage.

A *stage* is a point at which the agent is evaluated on every task: typically the initial (or
frozen, pre-trained) policy before any training, then the end of each task's training in the
stream. A *held-out* task is evaluated but never trained on. Pure numpy.

Ratios (retention) are undefined when the denominator is 0: the functions here return NaN for
them, never ``inf`` or an error, and the means skip NaN (a mean of only NaN is NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RetentionMatrix:
    """Success on every task after every stage.

    Layout, for a stream that trains ``reach`` then ``push`` and holds out ``pick``::

        stage        reach   push   pick (held-out)
        initial      0.10    0.00   0.20             <- no task trained yet
        reach        0.90    0.05   0.25             <- after training reach
        push         0.60    0.80   0.15             <- after training push: the end of the stream

    Attributes:
        matrix: ``[stages, tasks]`` success rate in ``[0, 1]`` of each task after each stage.
        task_names: ``[tasks]`` unique task names (columns).
        stage_labels: ``[stages]`` a label per stage (row), e.g. ``"initial"`` or the task trained.
        held_out: Names of the tasks never trained on (a subset of ``task_names``).
        stage_tasks: ``[stages]`` names of the tasks trained during each stage (empty for the
            initial stage). Empty (the default) when unknown: then no task counts as seen.
    """

    matrix: FloatArray
    task_names: tuple[str, ...]
    stage_labels: tuple[str, ...]
    held_out: tuple[str, ...] = ()
    stage_tasks: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        matrix = np.asarray(self.matrix, dtype=np.float64)
        names = tuple(str(n) for n in self.task_names)
        labels = tuple(str(label) for label in self.stage_labels)
        held_out = tuple(str(n) for n in self.held_out)
        stage_tasks = tuple(tuple(str(n) for n in tasks) for tasks in self.stage_tasks)
        if matrix.ndim != 2 or matrix.size == 0:
            raise ValueError(f"matrix must be a non-empty 2-D array, got shape {matrix.shape}")
        if matrix.shape != (len(labels), len(names)):
            raise ValueError(
                f"matrix has shape {matrix.shape}, expected (len(stage_labels), len(task_names))"
                f" = ({len(labels)}, {len(names)})"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"task_names must be unique, got {list(names)}")
        if not np.all(np.isfinite(matrix)) or matrix.min() < 0 or matrix.max() > 1:
            raise ValueError("matrix must hold success rates: finite and in [0, 1]")
        unknown = sorted(set(held_out) - set(names))
        if unknown:
            raise ValueError(f"held_out names {unknown} are not in task_names {list(names)}")
        if stage_tasks:
            if len(stage_tasks) != len(labels):
                raise ValueError(
                    f"stage_tasks has {len(stage_tasks)} entries, expected one per stage "
                    f"({len(labels)})"
                )
            trained = {name for tasks in stage_tasks for name in tasks}
            if trained - set(names):
                raise ValueError(
                    f"stage_tasks names {sorted(trained - set(names))} are not in task_names"
                )
            if trained & set(held_out):
                raise ValueError(
                    f"held-out tasks {sorted(trained & set(held_out))} are trained in stage_tasks"
                )
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "task_names", names)
        object.__setattr__(self, "stage_labels", labels)
        object.__setattr__(self, "held_out", held_out)
        object.__setattr__(self, "stage_tasks", stage_tasks)

    @property
    def num_stages(self) -> int:
        """Number of stages (rows)."""
        return len(self.stage_labels)

    def column(self, task: str) -> int:
        """Column index of ``task``."""
        if task not in self.task_names:
            raise ValueError(f"unknown task {task!r}; tasks are {list(self.task_names)}")
        return self.task_names.index(task)

    def seen_mask(self) -> NDArray[np.bool_]:
        """``[stages, tasks]`` True where the task was trained at or before the stage."""
        trained = np.zeros(self.matrix.shape, dtype=bool)
        for stage, tasks in enumerate(self.stage_tasks):
            for task in tasks:
                trained[stage, self.column(task)] = True
        return np.logical_or.accumulate(trained, axis=0)

    def held_out_mask(self) -> NDArray[np.bool_]:
        """``[tasks]`` True for held-out tasks."""
        return np.array([name in self.held_out for name in self.task_names])

    def future_mask(self) -> NDArray[np.bool_]:
        """``[stages, tasks]`` True where a task that the stream trains is not yet trained."""
        return ~self.seen_mask() & ~self.held_out_mask()[None, :]


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """``numerator / denominator`` with NaN where the denominator is 0."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _nanmean(values: FloatArray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def held_out_retention(
    retention: RetentionMatrix,
    baseline: Literal["first"] | ArrayLike | Mapping[str, float] = "first",
) -> dict[str, float]:
    """Retention of each held-out task: success after the stream / success of the baseline policy.

    Args:
        retention: The matrix; its last stage is "after the stream".
        baseline: ``"first"`` to divide by the first stage (the initial policy, before any
            training; refused when the matrix says that stage trained a task), or the baseline
            (e.g. frozen pre-trained) policy's success on the held-out tasks: a mapping name ->
            success, or a sequence in the order of ``retention.held_out``.

    Returns:
        Held-out task name -> retention (1 = fully retained; NaN where the baseline's success is
        0, i.e. there was nothing to retain). Empty if there are no held-out tasks.
    """
    columns = [retention.column(name) for name in retention.held_out]
    after = retention.matrix[-1, columns]
    if isinstance(baseline, str):
        if baseline != "first":
            raise ValueError(f"baseline must be 'first', a mapping or a sequence, got {baseline!r}")
        if retention.stage_tasks and retention.stage_tasks[0]:
            raise ValueError(
                f"baseline='first' divides by the first stage, which must be the initial policy "
                f"(no task trained), but stage {retention.stage_labels[0]!r} trained "
                f"{list(retention.stage_tasks[0])}: pass the initial or frozen policy's success "
                "on the held-out tasks as the baseline instead"
            )
        before = retention.matrix[0, columns]
    elif isinstance(baseline, Mapping):
        missing = sorted(set(retention.held_out) - set(baseline))
        if missing:
            raise ValueError(f"baseline has no success for held-out tasks {missing}")
        before = np.array([float(baseline[name]) for name in retention.held_out])
    else:
        before = np.asarray(baseline, dtype=np.float64).reshape(-1)
        if before.size != len(columns):
            raise ValueError(
                f"baseline has {before.size} values, expected one per held-out task "
                f"({len(columns)}: {list(retention.held_out)})"
            )
    if np.any(~np.isfinite(before)) or np.any(before < 0) or np.any(before > 1):
        raise ValueError("baseline success must be finite and in [0, 1]")
    ratios = _ratio(after, before)
    return {name: float(value) for name, value in zip(retention.held_out, ratios, strict=True)}


def seen_retention(retention: RetentionMatrix) -> dict[str, float]:
    """Retention of each trained task: success at the end / success right after its last training.

    For a task last trained in stage ``s``: ``matrix[-1, task] / matrix[s, task]`` (so a task
    trained in the last stage has retention 1, or NaN if its success there is 0).

    Args:
        retention: The matrix, with ``stage_tasks``.

    Returns:
        Trained task name -> retention (NaN where the success after its training is 0).

    Raises:
        ValueError: The matrix has no ``stage_tasks``.
    """
    if not retention.stage_tasks:
        raise ValueError("seen_retention needs stage_tasks (which tasks each stage trains)")
    last_trained: dict[str, int] = {}
    for stage, tasks in enumerate(retention.stage_tasks):
        for task in tasks:
            last_trained[task] = stage
    result = {}
    for task in retention.task_names:
        if task in last_trained:
            column = retention.column(task)
            after = retention.matrix[last_trained[task], column]
            result[task] = float(_ratio(retention.matrix[-1:, column], np.array([after]))[0])
    return result


def mean_retention(ratios: Mapping[str, float]) -> float:
    """Mean of the defined (non-NaN) retention ratios; NaN if none is defined."""
    return _nanmean(np.array(list(ratios.values()), dtype=np.float64))


def format_table(retention: RetentionMatrix, *, markdown: bool = True, precision: int = 2) -> str:
    """The matrix as a Markdown (or aligned text) table.

    Rows are stages, columns tasks; held-out columns are marked ``(held-out)``; the cells of the
    tasks trained during a stage are marked: bold in Markdown, ``*`` in text.

    Args:
        retention: The matrix.
        markdown: Markdown (default) or aligned plain text.
        precision: Decimals of each success rate.

    Returns:
        The table, without a trailing newline.
    """
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    header = ["stage"] + [
        f"{name} (held-out)" if name in retention.held_out else name
        for name in retention.task_names
    ]
    rows = []
    for stage, label in enumerate(retention.stage_labels):
        trained = set(retention.stage_tasks[stage]) if retention.stage_tasks else set()
        cells = [label]
        for column, name in enumerate(retention.task_names):
            value = f"{retention.matrix[stage, column]:.{precision}f}"
            if name in trained:
                value = f"**{value}**" if markdown else f"{value}*"
            cells.append(value)
        rows.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def retention_from_rows(
    rows: Sequence[Mapping[str, float]],
    stage_labels: Sequence[str],
    *,
    held_out: Sequence[str] = (),
    stage_tasks: Sequence[Sequence[str]] = (),
) -> RetentionMatrix:
    """Build a matrix from one ``{task: success}`` mapping per stage (all with the same tasks).

    Args:
        rows: Per stage, success of every task (column order: the first row's key order).
        stage_labels: A label per stage.
        held_out: Names of the held-out tasks.
        stage_tasks: Per stage, the tasks trained during it (or empty if unknown).

    Returns:
        The retention matrix.
    """
    if not rows:
        raise ValueError("rows must hold at least one stage")
    names = tuple(rows[0])
    for stage, row in enumerate(rows):
        if set(row) != set(names):
            raise ValueError(
                f"stage {stage} has tasks {sorted(row)}, stage 0 has {sorted(names)}: every "
                "stage must evaluate the same tasks"
            )
    matrix = np.array([[row[name] for name in names] for row in rows], dtype=np.float64)
    return RetentionMatrix(
        matrix,
        names,
        tuple(stage_labels),
        tuple(held_out),
        tuple(tuple(tasks) for tasks in stage_tasks),
    )
