"""Runs grouped by setting, and their aggregate over seeds with rliable.

A *study* is the runs that can be compared score for score: the same kind of run (memory or
continual), the same env or stream and budget, the same conditions. Within a study a *group* is
the seeds of one setting: one agent or method with one set of options (runs that differ in more
than their seed are separate groups, labelled by what differs).

The statistics are rliable's (Agarwal et al. 2021), called, not re-implemented: the interquartile
mean (IQM) and the mean over every run and condition of a group, with 95% stratified bootstrap
confidence intervals (``rly.get_interval_estimates``: runs resampled within each condition), the
same per condition for a curve (recall vs delay), and performance profiles, the fraction of
(run, condition) scores above each threshold, with their bands
(``rly.create_performance_profile``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memrl.eval.run_results import RunResult, differing

CONFIDENCE = 0.95
"""Coverage of the bootstrap intervals."""
BOOTSTRAP_REPS = 2000
"""Bootstrap resamples (rliable's default for performance profiles)."""
BOOTSTRAP_SEED = 0
"""Seed of the interval estimates' resampling (the profiles' bands are not seeded by rliable)."""
THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""Score thresholds of the performance profiles (success rates)."""


@dataclass(frozen=True)
class Group:
    """The seeds of one setting in one study.

    Attributes:
        study: The study's label (env or stream, and budget).
        label: The group's label: its agent or method, and the settings that set it apart from
            the study's other groups of that agent.
        runs: Its runs, by seed.
    """

    study: str
    label: str
    runs: tuple[RunResult, ...]

    @property
    def kind(self) -> str:
        """``memory`` or ``continual``."""
        return self.runs[0].kind

    @property
    def conditions(self) -> tuple[str, ...]:
        """The names of the score columns."""
        return self.runs[0].conditions

    @property
    def scores(self) -> np.ndarray:
        """``[runs, conditions]`` success rates."""
        return np.stack([run.scores for run in self.runs])

    @property
    def seeds(self) -> list[int]:
        """The runs' seeds."""
        return [run.seed for run in self.runs]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    point: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        """As ``memrl.eval.report`` takes a value: mean, lower, upper, confidence."""
        return {"mean": self.point, "lower": self.lower, "upper": self.upper,
                "confidence": CONFIDENCE}  # fmt: skip


def group_runs(results: Sequence[RunResult]) -> list[Group]:
    """The runs as groups, study by study (in order of first appearance), seeds sorted.

    Raises:
        ValueError: Two runs of one group have the same seed (a run copied, or one setting run
            twice with one seed): averaging them as seeds would mislead.
    """
    studies: dict[tuple, list[RunResult]] = {}
    for result in results:
        studies.setdefault((result.kind, result.task, result.conditions), []).append(result)
    labels = _study_labels(list(studies))
    groups = []
    for key, members in studies.items():
        settings: dict[str, list[RunResult]] = {}
        for run in members:
            settings.setdefault(json.dumps([run.agent, run.settings], sort_keys=True),
                                []).append(run)  # fmt: skip
        by_agent: dict[str, list[list[RunResult]]] = {}
        for runs in settings.values():
            by_agent.setdefault(runs[0].agent, []).append(runs)
        for agent, variants in by_agent.items():
            varying = differing([runs[0].settings for runs in variants])
            for runs in variants:
                label = agent
                if varying:
                    label += " (" + ", ".join(f"{k}={json.dumps(runs[0].settings.get(k))}"
                                              for k in varying) + ")"  # fmt: skip
                runs = sorted(runs, key=lambda run: run.seed)
                _check_seeds(label, runs)
                groups.append(Group(labels[key], label, tuple(runs)))
    return groups


def _study_labels(keys: Sequence[tuple]) -> dict[tuple, str]:
    """Each study's label: its env or stream, told apart by its conditions where needed."""
    tasks = [task for _, task, _ in keys]
    labels = {}
    for key in keys:
        _, task, conditions = key
        if tasks.count(task) > 1:
            what = conditions[0] if len(conditions) == 1 else f"{len(conditions)} conditions"
            task = f"{task}, {what}"
        labels[key] = task
    return labels


def _check_seeds(label: str, runs: Sequence[RunResult]) -> None:
    seen: dict[int, RunResult] = {}
    for run in runs:
        other = seen.setdefault(run.seed, run)
        if other is not run:
            raise ValueError(
                f"{label}: {run.run_dir} and {other.run_dir} are both seed {run.seed} of one "
                "setting; report each copy on its own (runs of a group are averaged as seeds)"
            )


def interval_estimates(
    scores: Mapping[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
) -> dict[str, dict[str, Estimate]]:
    """IQM and mean of each group's ``[runs, conditions]`` scores, with 95% CIs (rliable).

    Returns:
        Label -> ``{"IQM": Estimate, "mean": Estimate}``.
    """
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    points, intervals = _rliable(scores, aggregate, reps, seed)
    return {
        label: {
            name: Estimate(
                float(points[label][i]),
                float(intervals[label][0, i]),
                float(intervals[label][1, i]),
            )  # fmt: skip
            for i, name in enumerate(("IQM", "mean"))
        }
        for label in scores
    }


def condition_estimates(
    scores: Mapping[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The IQM over runs of each condition (a curve, e.g. recall vs delay), with 95% CIs.

    Returns:
        Label -> ``(iqm, lower, upper)``, each ``[conditions]``.
    """
    from rliable import metrics

    def per_condition(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x[:, [c]]) for c in range(x.shape[1])])

    points, intervals = _rliable(scores, per_condition, reps, seed)
    return {label: (points[label], intervals[label][0], intervals[label][1]) for label in scores}


def performance_profiles(
    scores: Mapping[str, np.ndarray], thresholds: np.ndarray = THRESHOLDS,
    reps: int = BOOTSTRAP_REPS,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """Score distributions: the fraction of (run, condition) scores above each threshold (rliable).

    Returns:
        Label -> ``(profile, lower, upper)``, each ``[thresholds]``, the band a 95% interval.
    """
    from rliable import library as rly

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arch's notice about random_state
        profiles, bands = rly.create_performance_profile(
            dict(scores), thresholds, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return {label: (profiles[label], bands[label][0], bands[label][1]) for label in scores}


def _rliable(
    scores: Mapping[str, np.ndarray],
    aggregate: Callable[[np.ndarray], np.ndarray],
    reps: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``rly.get_interval_estimates`` with a seeded resampling, quietly."""
    from rliable import library as rly

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arch's notice about random_state
        points, intervals = rly.get_interval_estimates(
            dict(scores), aggregate, reps=reps, confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )  # fmt: skip
    return points, {label: np.asarray(value) for label, value in intervals.items()}


def group_details(group: Group, estimate: Mapping[str, Estimate]) -> dict[str, Any]:
    """A group as plain data for ``report.json``."""
    return {
        "study": group.study,
        "label": group.label,
        "kind": group.kind,
        "runs": [str(run.run_dir) for run in group.runs],
        "seeds": group.seeds,
        "conditions": list(group.conditions),
        "scores": group.scores.tolist(),
        "source": group.runs[0].source,
        **{name: value.to_dict() for name, value in estimate.items()},
    }
