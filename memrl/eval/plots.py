"""Plots: success curves, methods' average success, the retention heatmap, recall vs delay.

Each function draws on a fresh matplotlib ``Figure`` with the Agg canvas (no pyplot, no display,
no change to the process-wide backend), saves a PNG of exactly ``figsize * dpi`` pixels to the
given path (creating its directory) and returns the path. matplotlib is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from memrl.eval.metrics import EvaluationHistory, FloatArray
from memrl.eval.retention import RetentionMatrix

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SUBPLOT_SIZE = (3.0, 2.2)
"""Inches per task panel of :func:`plot_success_curves` when ``figsize`` is not given."""
MAX_COLUMNS = 5
"""Task panels per row of :func:`plot_success_curves`."""


def _png_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}")
    return path


def _check_figure(figsize: tuple[float, float], dpi: int) -> None:
    if len(figsize) != 2 or min(figsize) <= 0:
        raise ValueError(f"figsize must be two positive inches (width, height), got {figsize}")
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")


def _new_figure(figsize: tuple[float, float], dpi: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=figure.dpi)
    return path


def _checked_runs(
    runs: Sequence[EvaluationHistory], initial: ArrayLike | None
) -> FloatArray | None:
    """``initial`` as an array, after checking the runs and its shape.

    Raises:
        ValueError: No run, a run without run 0's tasks, schedule and evaluation steps, or
            ``initial`` not ``[runs, tasks]``.
    """
    if not runs:
        raise ValueError("need at least one EvaluationHistory")
    first = runs[0]
    for index, run in enumerate(runs[1:], start=1):
        same = (
            run.task_names == first.task_names
            and run.schedule == first.schedule
            and run.steps_per_task == first.steps_per_task
            and np.array_equal(run.steps, first.steps)
        )
        if not same:
            raise ValueError(
                f"run {index} differs from run 0 in tasks, schedule or evaluation steps: "
                "curves can only be averaged over runs evaluated at the same steps"
            )
    if initial is None:
        return None
    start = np.asarray(initial, dtype=np.float64)
    if start.shape != (len(runs), first.num_tasks):
        raise ValueError(
            f"initial must be [runs, tasks] = [{len(runs)}, {first.num_tasks}], "
            f"got shape {list(start.shape)}"
        )
    return start


def plot_success_curves(
    histories: EvaluationHistory | Sequence[EvaluationHistory],
    path: str | Path,
    *,
    title: str | None = None,
    initial: ArrayLike | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Path:
    """Success of every task over training, one panel per task, with the task boundaries.

    Each panel shows the mean over runs (with the min-max range over runs shaded when there are
    several), dotted vertical lines at every task switch, and the windows in which that task
    trains shaded.

    Args:
        histories: One run, or several runs with the same tasks, schedule and evaluation steps.
        path: Where to save the PNG.
        title: Figure title.
        initial: ``[runs, tasks]`` success before any training, drawn at step 0 (None: the
            curves start at the first evaluation).
        figsize: Inches (width, height); default ``SUBPLOT_SIZE`` per panel, ``MAX_COLUMNS``
            panels per row.
        dpi: Pixels per inch.

    Returns:
        ``path``.
    """
    path = _png_path(path)
    runs = [histories] if isinstance(histories, EvaluationHistory) else list(histories)
    start = _checked_runs(runs, initial)
    first = runs[0]
    columns = min(MAX_COLUMNS, first.num_tasks)
    rows = math.ceil(first.num_tasks / columns)
    if figsize is None:
        figsize = (SUBPLOT_SIZE[0] * columns, SUBPLOT_SIZE[1] * rows)
    _check_figure(figsize, dpi)
    success = np.stack([run.success for run in runs])  # [runs, evaluations, tasks]
    steps = first.steps
    if start is not None:
        success = np.concatenate([start[:, None, :], success], axis=1)
        steps = np.concatenate([[0], steps])
    delta = first.steps_per_task
    end = first.num_windows * delta
    repeated = len(set(first.task_names)) < first.num_tasks

    figure = _new_figure(figsize, dpi)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    for task in range(rows * columns):
        ax = axes[task // columns][task % columns]
        if task >= first.num_tasks:
            ax.set_visible(False)
            continue
        for window, column in enumerate(first.schedule):
            if column == task:
                ax.axvspan(window * delta, (window + 1) * delta, color="tab:blue", alpha=0.12)
        for boundary in range(1, first.num_windows):
            ax.axvline(boundary * delta, color="0.6", linestyle=":", linewidth=0.8)
        curves = success[:, :, task]
        if len(runs) > 1:
            ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), alpha=0.25, lw=0)
        ax.plot(steps, curves.mean(axis=0), color="tab:blue", linewidth=1.2)
        name = first.task_names[task]
        ax.set_title(f"{task}: {name}" if repeated else name, fontsize=8)
        ax.set_xlim(0, end)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("env steps", fontsize=8)
    for row in axes:
        row[0].set_ylabel("success", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def average_success_curve(
    histories: Sequence[EvaluationHistory], initial: ArrayLike | None = None
) -> tuple[NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
    """Success averaged over the tasks at every evaluation: its mean, min and max over runs.

    Continual World's average performance at time t, the curve that its figures compare methods
    by.

    Args:
        histories: Runs with the same tasks, schedule and evaluation steps.
        initial: ``[runs, tasks]`` success before any training, put first at step 0.

    Returns:
        ``steps``, and the mean, min and max over runs of each run's mean over tasks, each
        ``[evaluations]`` (one more with ``initial``).

    Raises:
        ValueError: No run, runs evaluated differently, or ``initial`` of the wrong shape.
    """
    runs = list(histories)
    start = _checked_runs(runs, initial)
    per_run = np.stack([run.success.mean(axis=1) for run in runs])  # [runs, evaluations]
    steps = runs[0].steps
    if start is not None:
        per_run = np.concatenate([start.mean(axis=1)[:, None], per_run], axis=1)
        steps = np.concatenate([[0], steps])
    return steps, per_run.mean(axis=0), per_run.min(axis=0), per_run.max(axis=0)


def plot_average_success(
    methods: Mapping[str, Sequence[EvaluationHistory]],
    path: str | Path,
    *,
    title: str | None = None,
    initial: Mapping[str, ArrayLike] | None = None,
    figsize: tuple[float, float] = (7.0, 3.2),
    dpi: int = 100,
) -> Path:
    """Average success over the tasks against env steps, one line per method.

    Each line is :func:`average_success_curve`'s mean over a method's runs, with the min-max
    range over runs shaded when there are several, and dotted vertical lines at every task
    switch.

    Args:
        methods: Each method's runs; every run of every method must have the same tasks and
            steps per task (a method's runs may stop earlier than another's: partial runs).
        path: Where to save the PNG.
        title: Figure title.
        initial: Per method, ``[runs, tasks]`` success before any training (drawn at step 0).
        figsize: Inches (width, height).
        dpi: Pixels per inch.

    Returns:
        ``path``.

    Raises:
        ValueError: No method, a method without runs, or methods of other tasks or budgets.
    """
    path = _png_path(path)
    if not methods:
        raise ValueError("need at least one method")
    _check_figure(figsize, dpi)
    curves = {}
    for method, runs in methods.items():
        start = None if initial is None else initial.get(method)
        curves[method] = average_success_curve(runs, start)
    first_method, first = next((m, runs[0]) for m, runs in methods.items())
    delta = first.steps_per_task
    for method, runs in methods.items():
        if (runs[0].task_names, runs[0].steps_per_task) != (first.task_names, delta):
            raise ValueError(
                f"{method}'s runs differ from {first_method}'s in tasks or steps per task: "
                "only methods of one stream and budget share a plot"
            )
    windows = max(runs[0].num_windows for runs in methods.values())  # partial runs stop earlier
    figure = _new_figure(figsize, dpi)
    ax = figure.subplots()
    for boundary in range(1, windows):
        ax.axvline(boundary * delta, color="0.6", linestyle=":", linewidth=0.8)
    for index, (method, (steps, mean, low, high)) in enumerate(curves.items()):
        color = f"C{index % 10}"
        if len(methods[method]) > 1:
            ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
        ax.plot(steps, mean, color=color, linewidth=1.4, label=method)
    ax.set_xlim(0, windows * delta)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("env steps", fontsize=8)
    ax.set_ylabel("average success over tasks", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(figure, path)


def plot_retention_heatmap(
    retention: RetentionMatrix,
    path: str | Path,
    *,
    annotate: bool = True,
    precision: int = 2,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Path:
    """The retention matrix as a heatmap: stages down, tasks across, success in colour.

    Held-out task labels end in ``*``; the cells of the tasks trained in a stage are outlined.

    Args:
        retention: The matrix.
        path: Where to save the PNG.
        annotate: Write each success rate in its cell.
        precision: Decimals of the annotations.
        title: Figure title.
        figsize: Inches (width, height); default grows with the matrix.
        dpi: Pixels per inch.

    Returns:
        ``path``.
    """
    path = _png_path(path)
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    stages, tasks = retention.matrix.shape
    if figsize is None:
        figsize = (2.5 + 0.7 * tasks, 1.5 + 0.45 * stages)
    _check_figure(figsize, dpi)
    figure = _new_figure(figsize, dpi)
    ax = figure.add_subplot()
    image = ax.imshow(retention.matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=ax, label="success")
    labels = [f"{n}*" if n in retention.held_out else n for n in retention.task_names]
    ax.set_xticks(range(tasks), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(stages), retention.stage_labels, fontsize=8)
    ax.set_xlabel("task (* held-out)" if retention.held_out else "task", fontsize=8)
    ax.set_ylabel("after stage", fontsize=8)
    if annotate:
        for stage in range(stages):
            for task in range(tasks):
                value = retention.matrix[stage, task]
                colour = "black" if value > 0.6 else "white"
                text = f"{value:.{precision}f}"
                ax.text(task, stage, text, ha="center", va="center", fontsize=7, color=colour)
    if retention.stage_tasks:
        from matplotlib.patches import Rectangle

        for stage, trained in enumerate(retention.stage_tasks):
            for name in trained:
                corner = (retention.column(name) - 0.5, stage - 0.5)
                ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    if title:
        ax.set_title(title, fontsize=10)
    return _save(figure, path)


@dataclass(frozen=True, eq=False)
class RecallCurve:
    """One agent's success as a function of the delay between cue and recall.

    Attributes:
        delays: ``[points]`` delays (steps), positive and strictly increasing (log x-axis).
        success: ``[points]`` success rate at each delay.
        lower: ``[points]`` lower bound of a confidence band, or None.
        upper: ``[points]`` upper bound of a confidence band, or None.
    """

    delays: NDArray[np.float64]
    success: NDArray[np.float64]
    lower: NDArray[np.float64] | None = None
    upper: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        delays = np.asarray(self.delays, dtype=np.float64)
        success = np.asarray(self.success, dtype=np.float64)
        if delays.ndim != 1 or delays.size == 0:
            raise ValueError(f"delays must be a non-empty 1-D array, got shape {delays.shape}")
        if np.any(delays <= 0) or np.any(np.diff(delays) <= 0):
            raise ValueError(
                f"delays must be positive (log axis) and strictly increasing, got {delays.tolist()}"
            )
        if success.shape != delays.shape:
            raise ValueError(
                f"success has shape {success.shape}, expected one value per delay {delays.shape}"
            )
        if (self.lower is None) != (self.upper is None):
            raise ValueError("give both lower and upper bounds, or neither")
        bounds: list[NDArray[np.float64] | None] = [None, None]
        if self.lower is not None and self.upper is not None:
            lower = np.asarray(self.lower, dtype=np.float64)
            upper = np.asarray(self.upper, dtype=np.float64)
            if lower.shape != delays.shape or upper.shape != delays.shape:
                raise ValueError(
                    f"lower/upper have shapes {lower.shape}/{upper.shape}, expected {delays.shape}"
                )
            if np.any(lower > success) or np.any(upper < success):
                raise ValueError("the band must contain the curve: lower <= success <= upper")
            bounds = [lower, upper]
        object.__setattr__(self, "delays", delays)
        object.__setattr__(self, "success", success)
        object.__setattr__(self, "lower", bounds[0])
        object.__setattr__(self, "upper", bounds[1])


def plot_recall_vs_delay(
    curves: Mapping[str, RecallCurve | tuple[ArrayLike, ArrayLike]],
    path: str | Path,
    *,
    chance: float | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 3.5),
    dpi: int = 100,
) -> Path:
    """Success against delay (log x-axis) for several agents, with their bands where given.

    Args:
        curves: Agent name -> :class:`RecallCurve`, or a ``(delays, success)`` pair.
        path: Where to save the PNG.
        chance: Success of guessing, drawn as a dashed line; None for none.
        title: Axes title.
        figsize: Inches (width, height).
        dpi: Pixels per inch.

    Returns:
        ``path``.
    """
    path = _png_path(path)
    if not curves:
        raise ValueError("curves must hold at least one agent")
    parsed = {
        name: curve
        if isinstance(curve, RecallCurve)
        else RecallCurve(np.asarray(curve[0], np.float64), np.asarray(curve[1], np.float64))
        for name, curve in curves.items()
    }
    if chance is not None and not 0 <= chance <= 1:
        raise ValueError(f"chance must be in [0, 1], got {chance}")
    _check_figure(figsize, dpi)
    figure = _new_figure(figsize, dpi)
    ax = figure.add_subplot()
    for name, curve in parsed.items():
        (line,) = ax.plot(curve.delays, curve.success, marker="o", markersize=3, label=name)
        if curve.lower is not None and curve.upper is not None:
            ax.fill_between(
                curve.delays, curve.lower, curve.upper, color=line.get_color(), alpha=0.2, lw=0
            )
    if chance is not None:
        ax.axhline(chance, color="0.5", linestyle="--", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("delay (steps)")
    ax.set_ylabel("success")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(figure, path)


def trailing_mean(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Mean of each value and the ``window - 1`` before it (fewer at the start)."""
    y = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    end = np.arange(1, len(y) + 1)
    width = np.minimum(end, window)
    return (cumulative[end] - cumulative[end - width]) / width


def plot_training_curves(
    curves: Mapping[str, Sequence[tuple[ArrayLike, ArrayLike]]],
    path: str | Path,
    *,
    chance: float | None = None,
    smooth: int = 1,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 3.5),
    dpi: int = 100,
) -> Path:
    """Training success against env steps: one colour per agent, one thin line per seed.

    Args:
        curves: Agent name -> one ``(steps, success)`` pair per seed (e.g. the
            ``global_step`` and ``charts/success_rate`` columns of a run's ``metrics.csv``).
        path: Where to save the PNG.
        chance: Success of guessing, drawn as a dashed line; None for none.
        smooth: Width of a trailing moving average over logged points (1: raw).
        title: Axes title.
        figsize: Inches (width, height).
        dpi: Pixels per inch.

    Returns:
        ``path``.
    """
    path = _png_path(path)
    if not curves or any(len(runs) == 0 for runs in curves.values()):
        raise ValueError("curves must hold at least one agent, each with at least one run")
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    if chance is not None and not 0 <= chance <= 1:
        raise ValueError(f"chance must be in [0, 1], got {chance}")
    _check_figure(figsize, dpi)
    figure = _new_figure(figsize, dpi)
    ax = figure.add_subplot()
    for index, (name, runs) in enumerate(curves.items()):
        colour = f"C{index % 10}"
        for run, (steps, success) in enumerate(runs):
            x = np.asarray(steps, dtype=np.float64)
            y = np.asarray(success, dtype=np.float64)
            if x.shape != y.shape or x.ndim != 1:
                raise ValueError(f"{name}: steps and success must be 1-D of equal length")
            if smooth > 1:
                y = trailing_mean(y, smooth)
            ax.plot(x, y, color=colour, linewidth=1, alpha=0.8, label=name if run == 0 else None)
    if chance is not None:
        ax.axhline(chance, color="0.5", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("env steps")
    ax.set_ylabel("training success")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(figure, path)
