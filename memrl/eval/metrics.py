"""Continual World's metrics, exactly, and CORA-style per-cycle forgetting.

One run's evaluation log is an :class:`EvaluationHistory`: the success rate of every task at every
evaluation, the env steps at which the evaluations happened, and the schedule (which task trains in
which window of ``steps_per_task`` steps). Several runs (seeds) of one method are a sequence of
histories with the same tasks and schedule. Pure numpy.

The definitions mirror Continual World's results-processing code (Wołczyk et al. 2021,
``continualworld/results_processing/tables.py``), detail for detail:

- **Windows.** Window ``w`` covers steps ``(w * steps_per_task, (w + 1) * steps_per_task]``. An
  evaluation made after ``t`` env steps belongs to the window that contains ``t``; the evaluation
  made exactly at a task switch belongs to the task that has just finished (CW logs
  ``train/active_env`` from the last training step, and evaluates every 20k steps from 20k on). An
  evaluation at step 0 (before any training) belongs to no window.
- **"The last 5 evaluations".** A value "at the end" is the plain mean of the last 5 evaluations
  (pandas ``tail(5)``; fewer if fewer exist). *At the end of the run* means the last 5 evaluations
  of the whole log, whatever window they are in; *at the end of window w* means the last 5
  evaluations inside window ``w``.
- **Average performance** ``P`` = mean over all evaluated tasks (columns) of ``p_i(end)``.
- **Forgetting** ``F_w = p_i(end of window w) - p_i(end)`` for the task ``i`` trained in window
  ``w``; the average is over all windows, the last one included (its forgetting is 0 by
  construction when the last window holds at least 5 evaluations; CW divides by all tasks).
- **Forward transfer** ``FT_w = (AUC_w - AUC_w^ref) / (1 - AUC_w^ref)``, where ``AUC_w`` is the
  plain mean (not a trapezoid) of task ``i``'s evaluations inside window ``w``, and ``AUC^ref`` is
  the plain mean of all evaluations of a single-task reference run of the same task. Across seeds
  CW averages the AUCs first (over seeds ``s`` and reference runs ``r``), then the ratio:
  ``FT_w = (mean_s AUC_sw - mean_r REF_rw) / (1 - mean_r REF_rw)``; ``FT`` = mean over windows.
- **Confidence intervals**: percentile bootstrap over seeds, 90%, 4000 resamples, numpy's legacy
  generator seeded with 0 (``np.random.seed(0)``), resampling indices with
  ``choice(n, (n_resamples, n))``, bounds by ``np.quantile(..., method="midpoint")``. For forward
  transfer the runs and the reference runs are resampled independently (runs first, from the same
  generator), and the reference runs of all tasks jointly, row by row, which is why CW needs the
  same number of reference runs for every task. With these defaults and the runs in CW's order
  (sorted by experiment id), the intervals are CW's to floating-point rounding.

Repeated tasks (CW20). Continual World logs CW20 with one column per *position* (20 columns, task
names repeated, each position its own output head), so every column trains in exactly one window;
build the history with ``schedule=()`` to get that layout and CW's numbers (memrl's CW20 stream
has it, its second pass's columns named ``"hammer-v3#2"``, ...). A history may also have
one column per *distinct* task with a schedule in which columns repeat (``schedule=(0, ..., 9, 0,
..., 9)``): the per-window metrics are then per occurrence (window), with the same formulas.

CORA-style per-cycle forgetting (:func:`cycle_forgetting`) is for such streams in which a task
trains again after other tasks (see its docstring for the definition and its relation to CORA's
isolated forgetting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

LAST_EVALUATIONS = 5
"""Continual World's "end" value: the mean of the last 5 evaluations."""
CONFIDENCE = 0.9
"""Continual World's confidence level."""
N_RESAMPLES = 4000
"""Continual World's number of bootstrap resamples."""
BOOTSTRAP_SEED = 0
"""Continual World's bootstrap seed (``np.random.seed(0)``)."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class EvaluationHistory:
    """One run's evaluation log: success of every task at every evaluation, and the schedule.

    Layout, for three tasks trained for ``steps_per_task = 100`` steps each and evaluated every 50
    steps (``schedule = (0, 1, 2)``)::

        steps    success[:, 0]  success[:, 1]  success[:, 2]    window (task trained)
          50         0.2            0.0            0.0          0 (task 0)
         100         0.6            0.1            0.0          0 (task 0)  <- end of window 0
         150         0.4            0.5            0.1          1 (task 1)
         200         0.3            0.9            0.1          1 (task 1)  <- end of window 1
         250         0.3            0.7            0.6          2 (task 2)
         300         0.2            0.6            1.0          2 (task 2)  <- end of the run

    Attributes:
        steps: ``[evaluations]`` env steps of training done before each evaluation, strictly
            increasing, ``0 <= steps <= len(schedule) * steps_per_task``.
        success: ``[evaluations, tasks]`` success rate in ``[0, 1]`` of each column's task at each
            evaluation.
        task_names: ``[tasks]`` name of each column's task (repeats allowed: CW20 in Continual
            World's layout has 20 columns, ten names twice). Reference curves are looked up by name.
        steps_per_task: Steps per window (Continual World's Δ, 1M).
        schedule: ``[windows]`` column trained in each window, in order. Empty (the default) means
            each column trains once, in column order (Continual World's layout).
    """

    steps: NDArray[np.int64]
    success: FloatArray
    task_names: tuple[str, ...]
    steps_per_task: int
    schedule: tuple[int, ...] = ()
    _window_of: NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps)
        success = np.asarray(self.success, dtype=np.float64)
        names = tuple(str(name) for name in self.task_names)
        if steps.ndim != 1 or steps.size == 0:
            raise ValueError(f"steps must be a non-empty 1-D array, got shape {steps.shape}")
        if not np.all(np.equal(np.mod(steps, 1), 0)):
            raise ValueError(f"steps must be whole env-step counts, got {steps.tolist()}")
        steps = steps.astype(np.int64)
        if success.ndim != 2:
            raise ValueError(
                f"success must be a 2-D array [evaluations, tasks], got shape {success.shape}"
            )
        if success.shape != (steps.size, len(names)):
            raise ValueError(
                f"success has shape {success.shape}, expected (len(steps), len(task_names)) = "
                f"({steps.size}, {len(names)})"
            )
        if not names:
            raise ValueError("task_names must name at least one task")
        invalid = ~(np.isfinite(success) & (success >= 0) & (success <= 1))
        if invalid.any():
            where = [(int(e), int(t), float(success[e, t])) for e, t in np.argwhere(invalid)[:5]]
            raise ValueError(
                "success rates must be finite and in [0, 1], got (evaluation, task, value) "
                f"{where}{' ...' if invalid.sum() > 5 else ''}"
            )
        if np.any(steps < 0) or np.any(np.diff(steps) <= 0):
            raise ValueError(f"steps must be >= 0 and strictly increasing, got {steps.tolist()}")
        if int(self.steps_per_task) != self.steps_per_task or self.steps_per_task <= 0:
            raise ValueError(
                f"steps_per_task must be a positive integer, got {self.steps_per_task}"
            )
        steps_per_task = int(self.steps_per_task)
        schedule = tuple(int(c) for c in self.schedule) or tuple(range(len(names)))
        bad = [c for c in schedule if not 0 <= c < len(names)]
        if bad:
            raise ValueError(
                f"schedule refers to columns {bad}; allowed are 0..{len(names) - 1} "
                f"({len(names)} task_names)"
            )
        end = len(schedule) * steps_per_task
        if steps[-1] > end:
            raise ValueError(
                f"evaluation at step {steps[-1]} is after the end of the schedule: "
                f"{len(schedule)} windows x {steps_per_task} steps_per_task = {end} steps"
            )
        # Window w holds the evaluations with w * Δ < step <= (w + 1) * Δ; step 0 is in none (-1).
        window_of = np.ceil(steps / steps_per_task).astype(np.int64) - 1
        empty = sorted(set(range(len(schedule))) - set(window_of.tolist()))
        if empty:
            raise ValueError(
                f"windows {empty} hold no evaluation (window w covers steps "
                f"(w * {steps_per_task}, (w + 1) * {steps_per_task}]); every window of the "
                "schedule needs at least one evaluation: pass the schedule of the windows reached"
            )
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "success", success)
        object.__setattr__(self, "task_names", names)
        object.__setattr__(self, "steps_per_task", steps_per_task)
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "_window_of", window_of)

    @property
    def num_tasks(self) -> int:
        """Number of columns (evaluated tasks)."""
        return len(self.task_names)

    @property
    def num_windows(self) -> int:
        """Number of training windows in the schedule."""
        return len(self.schedule)

    @property
    def window_names(self) -> tuple[str, ...]:
        """Name of the task trained in each window."""
        return tuple(self.task_names[c] for c in self.schedule)

    def window_success(self, window: int) -> FloatArray:
        """Success of the task trained in ``window`` at each evaluation inside that window."""
        if not 0 <= window < self.num_windows:
            raise ValueError(f"window must be in 0..{self.num_windows - 1}, got {window}")
        return self.success[self._window_of == window, self.schedule[window]]

    def evaluations_in(self, first_window: int, last_window: int) -> NDArray[np.bool_]:
        """Mask of the evaluations inside windows ``first_window..last_window`` (inclusive)."""
        return (self._window_of >= first_window) & (self._window_of <= last_window)


def _tail_mean(values: FloatArray, last_evaluations: int) -> float:
    """Mean of the last ``last_evaluations`` values (pandas' ``tail(k).mean()``)."""
    return float(np.mean(values[-last_evaluations:]))


def _check_last(last_evaluations: int) -> None:
    if last_evaluations < 1:
        raise ValueError(f"last_evaluations must be >= 1, got {last_evaluations}")


def final_performance(
    history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS
) -> FloatArray:
    """Performance of every column at the end: mean of the last evaluations of the whole log.

    Args:
        history: One run's evaluation log.
        last_evaluations: How many final evaluations to average (Continual World: 5).

    Returns:
        ``[tasks]`` ``p_i(end)``.
    """
    _check_last(last_evaluations)
    return np.asarray(history.success[-last_evaluations:].mean(axis=0), dtype=np.float64)


def average_performance(
    history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS
) -> float:
    """Continual World's average performance ``P``: mean over columns of ``p_i(end)``."""
    return float(final_performance(history, last_evaluations).mean())


def end_of_window_performance(
    history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS
) -> FloatArray:
    """Performance of each window's task at the end of that window.

    Args:
        history: One run's evaluation log.
        last_evaluations: How many evaluations at the end of the window to average.

    Returns:
        ``[windows]`` mean of the last evaluations, inside window ``w``, of the task it trains.
    """
    _check_last(last_evaluations)
    return np.array(
        [
            _tail_mean(history.window_success(w), last_evaluations)
            for w in range(history.num_windows)
        ]
    )


def forgetting(history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS) -> FloatArray:
    """Continual World's forgetting of each window's task: ``p_i(end of window) - p_i(end)``.

    Args:
        history: One run's evaluation log.
        last_evaluations: How many evaluations to average at both ends.

    Returns:
        ``[windows]`` forgetting ``F_w``; positive means the task was forgotten.
    """
    end = final_performance(history, last_evaluations)
    return end_of_window_performance(history, last_evaluations) - end[list(history.schedule)]


def average_forgetting(
    history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS
) -> float:
    """Mean of :func:`forgetting` over all windows, the last one included (as Continual World)."""
    return float(forgetting(history, last_evaluations).mean())


def window_auc(history: EvaluationHistory) -> FloatArray:
    """Area under each window's own success curve: the plain mean of its evaluations.

    Returns:
        ``[windows]`` ``AUC_w`` = mean of the trained task's evaluations inside window ``w``
        (Continual World averages the points; no trapezoid, no step weighting).
    """
    return np.array([history.window_success(w).mean() for w in range(history.num_windows)])


def reference_auc(reference: Mapping[str, ArrayLike], task_names: Sequence[str]) -> FloatArray:
    """AUC of the single-task reference runs of each named task.

    Args:
        reference: Task name -> success of its single-task reference runs, ``[runs, evaluations]``
            (or ``[evaluations]`` for one run): the evaluations made during the reference run's
            training (Continual World: SAC from scratch for Δ steps, evaluated every 20k steps from
            20k on, no evaluation at step 0).
        task_names: Which tasks, in order (one per window; repeats allowed). A later occurrence
            ``"<name>#<k>"`` without a curve of its own takes ``<name>``'s.

    Returns:
        ``[runs, len(task_names)]`` mean of all evaluations of each reference run. Every task must
        have the same number of runs: Continual World's bootstrap resamples reference runs of all
        tasks jointly (it cuts every task to the smallest count when loading; do it before).

    Raises:
        ValueError: A task has no reference curve, a curve is empty or not a success rate, or the
            number of runs differs between tasks.
    """
    from memrl.streams.catalogue import base_task_name  # "hammer-v3#2" -> "hammer-v3"

    # A later occurrence of a task shares the task's curve unless the reference has one of its own.
    source = {name: name if name in reference else base_task_name(name) for name in task_names}
    missing = sorted({name for name, key in source.items() if key not in reference})
    if missing:
        raise ValueError(
            f"missing reference curve for tasks {missing}; reference has {sorted(reference)}"
        )
    aucs: dict[str, FloatArray] = {}
    for name in dict.fromkeys(task_names):
        runs = _reference_runs(name, reference[source[name]])
        aucs[name] = np.array([_reference_run_auc(name, run) for run in runs])
    counts = {name: auc.size for name, auc in aucs.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(
            f"reference tasks have different numbers of runs {counts}; Continual World's "
            "bootstrap needs the same number per task: cut them to the smallest"
        )
    return np.stack([aucs[name] for name in task_names], axis=1)


def _reference_runs(name: str, curves: ArrayLike) -> list[FloatArray]:
    """The runs of a task's reference: one curve, or several (their lengths may differ)."""
    try:
        array = np.asarray(curves, dtype=np.float64)
    except ValueError:  # runs of different lengths: Continual World averages each on its own
        return [np.asarray(run, dtype=np.float64) for run in curves]  # type: ignore[union-attr]
    if array.ndim == 1:
        return [array]
    if array.ndim == 2 and array.shape[0] > 0:
        return list(array)
    raise ValueError(
        f"reference curve of {name!r} must be [runs, evaluations] and non-empty, got shape "
        f"{array.shape}"
    )


def _reference_run_auc(name: str, run: ArrayLike) -> float:
    """The AUC of one reference run: the plain mean of its evaluations (as Continual World)."""
    values = np.asarray(run, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"each reference run of {name!r} must be a non-empty list of success rates, got "
            f"shape {values.shape}"
        )
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"reference curve of {name!r} must hold success rates in [0, 1]")
    return float(values.mean())


def _normalized_transfer(auc: FloatArray, auc_reference: FloatArray) -> FloatArray:
    """``(AUC - AUC_ref) / (1 - AUC_ref)``, elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((auc - auc_reference) / (1.0 - auc_reference), dtype=np.float64)


def forward_transfer(
    histories: EvaluationHistory | Sequence[EvaluationHistory],
    reference: Mapping[str, ArrayLike],
) -> FloatArray:
    """Continual World's forward transfer of each window, from the seed-averaged AUCs.

    ``FT_w = (mean_s AUC_{s,w} - mean_r AUC^ref_{r,w}) / (1 - mean_r AUC^ref_{r,w})``; the average
    forward transfer is the mean of this over windows.

    Args:
        histories: One run, or the runs (seeds) of one method.
        reference: Task name -> single-task reference curves (see :func:`reference_auc`).

    Returns:
        ``[windows]`` forward transfer ``FT_w``.

    Raises:
        ValueError: Bad reference curves, or a task's mean reference AUC is 1 (FT undefined).
    """
    runs = _as_runs(histories)
    auc = np.stack([window_auc(h) for h in runs])  # [seeds, windows]
    auc_reference = reference_auc(reference, runs[0].window_names)  # [reference runs, windows]
    windows = list(range(runs[0].num_windows))
    return _transfer(auc, auc_reference, runs[0].window_names, windows)


def _transfer(
    auc: FloatArray, auc_reference: FloatArray, names: Sequence[str], windows: Sequence[int]
) -> FloatArray:
    """``FT_w`` of ``windows`` from ``[seeds, windows]`` and ``[reference runs, windows]`` AUCs.

    Raises:
        ValueError: The mean reference AUC of a selected window is 1 (FT undefined).
    """
    mean_reference = auc_reference.mean(axis=0)[windows]
    solved = sorted({names[w] for w, m in zip(windows, mean_reference, strict=True) if m >= 1.0})
    if solved:
        raise ValueError(
            f"reference AUC of {solved} is 1: forward transfer (AUC - AUC_ref) / (1 - AUC_ref) "
            "is undefined for a task its reference solves at every evaluation"
        )
    return _normalized_transfer(auc.mean(axis=0)[windows], mean_reference)


@dataclass(frozen=True)
class ConfidenceInterval:
    """A mean over seeds with its percentile-bootstrap confidence interval."""

    mean: float
    lower: float
    upper: float
    confidence: float

    def to_dict(self) -> dict[str, float]:
        """The four numbers as a JSON-ready dict."""
        return {
            "mean": self.mean,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
        }

    def __str__(self) -> str:
        return f"{self.mean:.2f} [{self.lower:.2f}, {self.upper:.2f}]"


def _check_bootstrap(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def _percentiles(samples: FloatArray, confidence: float) -> tuple[float, float]:
    significance = (1.0 - confidence) / 2.0
    lower = np.quantile(samples, significance, method="midpoint")
    upper = np.quantile(samples, 1.0 - significance, method="midpoint")
    return float(lower), float(upper)


def bootstrap_mean_ci(
    values: ArrayLike,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> ConfidenceInterval:
    """Percentile-bootstrap confidence interval of the mean of per-seed values (CW's recipe).

    Draws ``n_resamples`` resamples of the seeds with replacement from
    ``np.random.RandomState(seed).choice(n, (n_resamples, n))``, takes each resample's mean and
    returns the ``(1 - confidence) / 2`` and ``1 - (1 - confidence) / 2`` quantiles (midpoint
    interpolation): Continual World's ``compute_mean_and_ci`` with its defaults.

    Args:
        values: ``[seeds]`` one value per seed (e.g. each seed's average performance).
        confidence: Confidence level.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        The mean over seeds and its interval.
    """
    _check_bootstrap(confidence, n_resamples)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"values must be a non-empty 1-D array of finite numbers, got {x!r}")
    rng = np.random.RandomState(seed)
    resamples = rng.choice(x.size, (n_resamples, x.size))  # [resamples, seeds]
    lower, upper = _percentiles(x[resamples].mean(axis=1), confidence)
    return ConfidenceInterval(float(x.mean()), lower, upper, confidence)


def _as_runs(histories: EvaluationHistory | Sequence[EvaluationHistory]) -> list[EvaluationHistory]:
    """The runs as a list, checked to share tasks, schedule and window length."""
    runs = [histories] if isinstance(histories, EvaluationHistory) else list(histories)
    if not runs:
        raise ValueError("need at least one EvaluationHistory")
    first = runs[0]
    for index, run in enumerate(runs[1:], start=1):
        for attribute in ("task_names", "schedule", "steps_per_task"):
            if getattr(run, attribute) != getattr(first, attribute):
                raise ValueError(
                    f"run {index} has {attribute}={getattr(run, attribute)!r}, run 0 has "
                    f"{getattr(first, attribute)!r}: runs of one method must share them"
                )
    return runs


def forward_transfer_ci(
    histories: Sequence[EvaluationHistory],
    reference: Mapping[str, ArrayLike],
    *,
    windows: Sequence[int] | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> ConfidenceInterval:
    """Average forward transfer over ``windows`` with Continual World's bootstrap interval.

    Runs and reference runs are resampled independently from one ``RandomState(seed)`` (runs
    first); reference runs are resampled as whole rows across tasks, as Continual World does. Each
    resample's ``FT_w`` is computed from its seed-averaged AUCs and averaged over ``windows``.

    Args:
        histories: The runs (seeds) of one method.
        reference: Task name -> single-task reference curves (see :func:`reference_auc`).
        windows: Which windows to average (CW also reports each task and each half); all if None.
        confidence: Confidence level.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling generator.

    Returns:
        The point estimate (mean of :func:`forward_transfer` over ``windows``) and its interval;
        NaN bounds when some resample is undefined (it drew only reference runs that solve a task
        at every evaluation, so ``1 - AUC_ref = 0``) although the point estimate is not.
    """
    _check_bootstrap(confidence, n_resamples)
    runs = _as_runs(histories)
    selected = list(range(runs[0].num_windows)) if windows is None else [int(w) for w in windows]
    bad = [w for w in selected if not 0 <= w < runs[0].num_windows]
    if not selected or bad:
        raise ValueError(f"windows must be a non-empty subset of 0..{runs[0].num_windows - 1}")
    auc = np.stack([window_auc(h) for h in runs])  # [seeds, windows]
    auc_reference = reference_auc(reference, runs[0].window_names)  # [reference runs, windows]
    point = _transfer(auc, auc_reference, runs[0].window_names, selected)
    rng = np.random.RandomState(seed)
    run_rows = rng.choice(auc.shape[0], (n_resamples, auc.shape[0]))
    reference_rows = rng.choice(auc_reference.shape[0], (n_resamples, auc_reference.shape[0]))
    resampled = auc[run_rows].mean(axis=1)  # [resamples, windows]
    resampled_reference = auc_reference[reference_rows].mean(axis=1)  # [resamples, windows]
    transfer = _normalized_transfer(resampled, resampled_reference)[:, selected]
    if not np.all(np.isfinite(transfer)):  # a resample drew only reference runs with AUC 1
        return ConfidenceInterval(float(point.mean()), math.nan, math.nan, confidence)
    lower, upper = _percentiles(transfer.mean(axis=1), confidence)
    return ConfidenceInterval(float(point.mean()), lower, upper, confidence)


@dataclass(frozen=True, eq=False)
class CycleForgetting:
    """Per-cycle forgetting of the tasks that re-occur in a stream.

    Attributes:
        task_names: ``[tasks]`` the history's columns.
        by_task: ``[tasks, cycles]`` forgetting of each task between its ``c``-th and ``c+1``-th
            occurrence (cycle ``c`` counts from 0); NaN where a task has no such re-occurrence.
    """

    task_names: tuple[str, ...]
    by_task: FloatArray

    @property
    def per_cycle(self) -> FloatArray:
        """``[cycles]`` mean over the tasks that re-occur in each cycle."""
        return np.array([np.mean(col[~np.isnan(col)]) for col in self.by_task.T])

    @property
    def mean(self) -> float:
        """Mean over all (task, cycle) pairs with a re-occurrence."""
        return float(np.mean(self.by_task[~np.isnan(self.by_task)]))


def _occurrences(schedule: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive windows training one column: ``(column, first, last)``."""
    runs: list[tuple[int, int, int]] = []
    for window, column in enumerate(schedule):
        if runs and runs[-1][0] == column and runs[-1][2] == window - 1:
            runs[-1] = (column, runs[-1][1], window)
        else:
            runs.append((column, window, window))
    return runs


def cycle_forgetting(
    history: EvaluationHistory, last_evaluations: int = LAST_EVALUATIONS
) -> CycleForgetting:
    """CORA-style forgetting of each task between consecutive occurrences of its training.

    An *occurrence* of a task is a maximal run of consecutive windows that train it. For each task
    and each occurrence ``k`` followed by another ``k + 1`` (cycle ``k``)::

        F[task, k] = p(end of occurrence k) - p(just before occurrence k + 1)

    where ``p(end of occurrence k)`` is the mean of the task's last evaluations inside the last
    window of occurrence ``k`` (as Continual World's end-of-window value) and
    ``p(just before occurrence k + 1)`` is the mean of its last evaluations in the windows in
    between (steps in ``(end of occurrence k, start of occurrence k + 1]``). Per-cycle forgetting
    is the mean over the tasks that re-occur in that cycle.

    Relation to CORA (Powers et al. 2022, ``continual_rl/utils/metrics.py``): CORA's *isolated
    forgetting* of task ``i`` caused by window ``j`` is ``p_i(last evaluation before window j) -
    p_i(last evaluation of window j)`` on returns scaled by the task's largest absolute return and
    smoothed by a trailing moving average. Summed over the windows between two occurrences it
    telescopes to ``F`` above with single evaluations (``last_evaluations=1``). Success rates are
    not rescaled here, and averaging the last evaluations replaces CORA's smoothing.

    Args:
        history: One run whose schedule trains some column in more than one occurrence (one
            column per distinct task; Continual World's one-column-per-position CW20 layout has no
            re-occurrences).
        last_evaluations: How many evaluations to average at both ends.

    Returns:
        Forgetting by task and cycle.

    Raises:
        ValueError: No task re-occurs in the schedule.
    """
    _check_last(last_evaluations)
    by_column = _spans_by_column(history.schedule)
    cycles = max(len(spans) for spans in by_column.values()) - 1
    if cycles == 0:
        raise ValueError(
            f"no task re-occurs in schedule {history.schedule}: per-cycle forgetting needs a "
            "stream in which a task trains again after others (one column per distinct task)"
        )
    by_task = np.full((history.num_tasks, cycles), np.nan)
    for column, spans in by_column.items():
        for cycle, ((_, last), (next_first, _)) in enumerate(zip(spans, spans[1:], strict=False)):
            end = _tail_mean(history.window_success(last), last_evaluations)
            gap = history.evaluations_in(last + 1, next_first - 1)
            before = _tail_mean(history.success[gap, column], last_evaluations)
            by_task[column, cycle] = end - before
    return CycleForgetting(history.task_names, by_task)


@dataclass(frozen=True, eq=False)
class ContinualWorldMetrics:
    """Continual World's table row for one method: P, F and FT with their CIs, plus details.

    Attributes:
        task_names: ``[tasks]`` the histories' columns.
        window_names: ``[windows]`` task trained in each window.
        num_seeds: Number of runs.
        performance: Average performance ``P`` over seeds, with its CI.
        forgetting: Average forgetting ``F`` over seeds, with its CI.
        forward_transfer: Average forward transfer ``FT`` with its CI; None without references.
        cycle_forgetting: Mean CORA-style per-cycle forgetting over seeds with its CI; None when no
            task re-occurs.
        final_performance: ``[seeds, tasks]`` each seed's ``p_i(end)``.
        window_forgetting: ``[seeds, windows]`` each seed's ``F_w``.
        window_forward_transfer: ``[windows]`` ``FT_w`` from seed-averaged AUCs; None without
            references.
    """

    task_names: tuple[str, ...]
    window_names: tuple[str, ...]
    num_seeds: int
    performance: ConfidenceInterval
    forgetting: ConfidenceInterval
    forward_transfer: ConfidenceInterval | None
    cycle_forgetting: ConfidenceInterval | None
    final_performance: FloatArray
    window_forgetting: FloatArray
    window_forward_transfer: FloatArray | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the headline metrics (with CIs) and the per-task details."""

        def ci(value: ConfidenceInterval | None) -> dict[str, float] | None:
            return None if value is None else value.to_dict()

        transfer = self.window_forward_transfer
        return {
            "num_seeds": self.num_seeds,
            "metrics": {
                "performance": ci(self.performance),
                "forgetting": ci(self.forgetting),
                "forward_transfer": ci(self.forward_transfer),
                "cycle_forgetting": ci(self.cycle_forgetting),
            },
            "per_task": {
                "task_names": list(self.task_names),
                "final_performance": self.final_performance.mean(axis=0).tolist(),
            },
            "per_window": {
                "task_names": list(self.window_names),
                "forgetting": self.window_forgetting.mean(axis=0).tolist(),
                "forward_transfer": None if transfer is None else transfer.tolist(),
            },
        }


def continual_world_metrics(
    histories: EvaluationHistory | Sequence[EvaluationHistory],
    reference: Mapping[str, ArrayLike] | None = None,
    *,
    last_evaluations: int = LAST_EVALUATIONS,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> ContinualWorldMetrics:
    """All of Continual World's metrics for the runs (seeds) of one method.

    Args:
        histories: The runs, in a fixed order (the bootstrap resamples them by index; Continual
            World orders them by experiment id).
        reference: Task name -> single-task reference curves for forward transfer, or None.
        last_evaluations: How many evaluations make a value "at the end" (Continual World: 5).
        confidence: Confidence level of the intervals (Continual World: 0.9).
        n_resamples: Bootstrap resamples (Continual World: 4000).
        seed: Bootstrap seed (Continual World: 0).

    Returns:
        P, F, FT (and per-cycle forgetting where tasks re-occur) with their intervals.
    """
    runs = _as_runs(histories)
    final = np.stack([final_performance(h, last_evaluations) for h in runs])
    window_forgetting = np.stack([forgetting(h, last_evaluations) for h in runs])
    transfer_ci = transfer = None
    if reference is not None:
        transfer = forward_transfer(runs, reference)
        transfer_ci = forward_transfer_ci(
            runs, reference, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    cycle_ci = None
    if any(len(spans) > 1 for spans in _spans_by_column(runs[0].schedule).values()):
        per_seed = [cycle_forgetting(h, last_evaluations).mean for h in runs]
        cycle_ci = bootstrap_mean_ci(
            per_seed, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    return ContinualWorldMetrics(
        task_names=runs[0].task_names,
        window_names=runs[0].window_names,
        num_seeds=len(runs),
        performance=bootstrap_mean_ci(
            final.mean(axis=1), confidence=confidence, n_resamples=n_resamples, seed=seed
        ),
        forgetting=bootstrap_mean_ci(
            window_forgetting.mean(axis=1),
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        ),
        forward_transfer=transfer_ci,
        cycle_forgetting=cycle_ci,
        final_performance=final,
        window_forgetting=window_forgetting,
        window_forward_transfer=transfer,
    )


def _spans_by_column(schedule: tuple[int, ...]) -> dict[int, list[tuple[int, int]]]:
    spans: dict[int, list[tuple[int, int]]] = {}
    for column, first, last in _occurrences(schedule):
        spans.setdefault(column, []).append((first, last))
    return spans
