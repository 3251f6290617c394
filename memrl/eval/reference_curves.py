"""Single-task reference curves: SAC trained from scratch on each task, for forward transfer.

Continual World's forward transfer compares a task's success curve in the stream with the curve
of the same SAC trained on that task alone, from scratch, with the same budget and evaluation
schedule (its ``run_single.py``). :func:`train_reference_curves` runs those single-task trainings
(``train_continual`` on a one-task stream, so the recipe is identical) and
:func:`save_reference_curves` stores the curves as JSON::

    {"steps_per_task": 100000, "eval_every": 10000, "eval_episodes": 10,
     "seeds": [0, 1, 2], "curves": {"reach-v3": [[0.1, 0.6, ...], ...], ...}, ...}

A reference curve depends on the task and the budget, not on the stream, so the files are named by
budget: ``assets/reference_curves/sac-<steps_per_task>.json`` is where
:func:`~memrl.eval.continual.evaluate_continual` looks by default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from memrl.agents.continual.config import ContinualConfig
from memrl.agents.continual.evaluation_log import LOG_FILE, EvaluationLog
from memrl.agents.continual.trainer import train_continual
from memrl.streams.catalogue import base_task_name


def default_reference_path(steps_per_task: int) -> Path:
    """``assets/reference_curves/sac-<steps_per_task>.json`` of the source checkout memrl runs from.

    The curves are not package data: a ``pip install -e .`` of the repository finds them, a regular
    install does not (pass the file explicitly there).
    """
    import memrl

    root = Path(memrl.__file__).resolve().parents[1]
    return root / "assets" / "reference_curves" / f"sac-{steps_per_task}.json"


def save_reference_curves(
    path: str | Path,
    curves: Mapping[str, ArrayLike],
    *,
    steps_per_task: int,
    eval_every: int,
    eval_episodes: int,
    seeds: Sequence[int],
    **details: Any,
) -> Path:
    """Write reference curves (task -> ``[runs, evaluations]`` success) as JSON.

    Args:
        path: The JSON file (its directory is created).
        curves: Success of each task's single-task runs at each evaluation.
        steps_per_task: The budget of each run.
        eval_every: Env steps between evaluations.
        eval_episodes: Episodes per evaluation.
        seeds: The runs' seeds.
        **details: Anything else to record (command, machine, date).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "steps_per_task": int(steps_per_task),
        "eval_every": int(eval_every),
        "eval_episodes": int(eval_episodes),
        "seeds": [int(s) for s in seeds],
        "curves": {
            name: np.atleast_2d(np.asarray(c, float)).tolist() for name, c in curves.items()
        },
        **details,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def load_reference_curves(
    path: str | Path,
    steps_per_task: int | None = None,
    eval_every: int | None = None,
    deterministic: bool | None = None,
) -> dict[str, np.ndarray]:
    """Task -> ``[runs, evaluations]`` success from a reference file.

    Forward transfer compares areas under success curves, so the references must share the runs'
    budget, evaluation cadence and evaluation mode (a greedy policy succeeds more often than a
    sampling one); a field the file does not record is not checked.

    Args:
        path: A file written by :func:`save_reference_curves`.
        steps_per_task: If given, the budget the curves must have been trained with.
        eval_every: If given, the env steps between the curves' evaluations.
        deterministic: If given, whether the curves' evaluations acted with the mean action.

    Raises:
        ValueError: The file is not a reference file (not JSON, or no ``curves`` mapping task ->
            ``[runs, evaluations]`` success), or differs from a given field; the message names
            the file and both values.
    """
    document = _read_reference(Path(path))
    wanted = {"steps_per_task": steps_per_task, "eval_every": eval_every,
              "deterministic": deterministic}  # fmt: skip
    for name, value in wanted.items():
        if value is not None and name in document and document[name] != value:
            raise ValueError(
                f"reference curves in {path} have {name}={document[name]}, the runs "
                f"{name}={value}: forward transfer needs the same budget and evaluation schedule"
            )
    return {name: np.asarray(c, dtype=np.float64) for name, c in document["curves"].items()}


def _read_reference(path: Path) -> dict[str, Any]:
    """A reference file's document, checked to hold ``curves``: task -> 2-D success rates."""
    what = "a reference-curves file (written by save_reference_curves or continual_study.py)"
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error}); expected {what}") from None
    curves = document.get("curves") if isinstance(document, dict) else None
    if not isinstance(curves, dict) or not curves:
        raise ValueError(
            f"{path} has no 'curves' mapping task -> [runs][evaluations] success; expected {what}"
        )
    for name, curve in curves.items():
        try:
            values = np.asarray(curve, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.empty(0)
        if values.ndim != 2 or values.size == 0:
            raise ValueError(
                f"{path}: curves[{name!r}] must be a non-empty [runs][evaluations] list of "
                f"success rates, got {str(curve)[:80]}"
            )
    return document


def reference_from_runs(run_dirs: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Task -> ``[runs, evaluations]`` from finished single-task run directories.

    Every task keeps as many runs as the task with the fewest (Continual World's bootstrap
    resamples reference runs of all tasks jointly).
    """
    by_task: dict[str, list[list[float]]] = {}
    for run_dir in run_dirs:
        log = EvaluationLog.load(run_dir)
        if len(log.trained_names) != 1:
            raise ValueError(f"{run_dir} is not a single-task run (tasks {log.trained_names})")
        if not log.finished:
            raise ValueError(f"{run_dir} has not finished: its reference curve is incomplete")
        by_task.setdefault(log.trained_names[0], []).append([row[0] for row in log.success])
    runs = min(len(curves) for curves in by_task.values())
    return {name: np.asarray(curves[:runs]) for name, curves in by_task.items()}


def reference_config(base: ContinualConfig, task: str, seed: int) -> ContinualConfig:
    """``base`` reduced to a single-task run of ``task`` (plain SAC, one stage, no held-out)."""
    return dataclasses.replace(
        base,
        tasks=task,
        schedule={"kind": "sequential"},
        method="finetune",
        seed=seed,
        held_out="",
    )


def train_reference_curves(
    tasks: Sequence[str],
    base: ContinualConfig,
    out_dir: str | Path,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = True,
) -> Path:
    """Train single-task SAC on every task and seed, and save the curves.

    Runs go to ``out_dir/<task>/seed<k>`` (a run that exists is resumed, a finished one skipped);
    the curves to ``out_dir/reference_curves.json``.

    Args:
        tasks: Task names (a later occurrence, ``"hammer-v3#2"``, shares its task's runs).
        base: The recipe (budget, evaluation schedule, SAC hyper-parameters) of the continual runs
            the curves are for; its tasks (one per run), schedule, method and seed are
            replaced.
        out_dir: Directory for the runs and the curves.
        seeds: One run per seed and task.
        progress: Show progress bars.

    Returns:
        The path of the curves' JSON file.
    """
    out = Path(out_dir)
    run_dirs = []
    for task in dict.fromkeys(base_task_name(t) for t in tasks):  # "x#2" shares x's runs
        for seed in seeds:
            run_dir = out / task / f"seed{seed}"
            run_dirs.append(run_dir)
            config = reference_config(base, task, seed)
            if (run_dir / LOG_FILE).exists() and EvaluationLog.load(run_dir).finished:
                continue
            train_continual(config, run_dir, resume=run_dir.exists(), progress=progress)
    steps = base.build_stream().steps_per_task
    return save_reference_curves(
        out / "reference_curves.json",
        reference_from_runs(run_dirs),
        steps_per_task=steps,
        eval_every=base.eval_every,
        eval_episodes=base.eval_episodes,
        seeds=seeds,
        deterministic=base.eval_deterministic,
    )
