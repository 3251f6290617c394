"""What ``memrl report`` reads from a run directory: which run it is, and its scores.

A run directory is any directory with a ``config.json`` written by ``memrl train``. Its
``config.json`` says what ran (memory PPO, an SB3 baseline, continual SAC or offline fine-tuning;
the agent or method, the env or stream, the seed, every setting), and its scores are:

- **memory runs** (an env): the success rate of each condition of its evaluation, when
  ``memrl eval RUN_DIR`` has written its ``report.json`` (every Ballet level, recall at each
  delay, each RoomBallet question type); else its training success, the mean of
  ``charts/success_rate`` over the last 10% of the rows of ``metrics.csv`` that log it;
- **continual runs** (a stream): the success of each trained task at the end, ``p_i(end)`` of
  Continual World (the mean of its last 5 evaluations), over the windows the run has completed.

Runs whose settings differ only in their seed (and in what does not change learning: threads,
logging, checkpoints) are seeds of one *setting*; :func:`settings_of` gives what makes them
differ otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memrl.agents.continual.evaluation_log import CONTINUAL_SAC, EvaluationLog
from memrl.agents.continual.trainer import learning_settings, saved_run_config
from memrl.agents.run_log import read_metric
from memrl.eval.continual import evaluation_history
from memrl.eval.metrics import final_performance

TRAINING_TAIL = 0.1
"""The share of a memory run's last logged updates whose success is its training success."""
NOT_LEARNING = ("seed", "checkpoint_every", "log_every", "tensorboard", "threads")
"""Memory-run settings that do not change what is learnt (runs differing only there are seeds
of one setting)."""
SKIPPED_DIRS = ("checkpoints", "tb", "report")
"""Directories searched for no run (a run's own, and reports)."""


@dataclass(frozen=True)
class RunResult:
    """One run's identity and scores.

    Attributes:
        run_dir: The run directory.
        kind: ``memory`` (trained on an env) or ``continual`` (trained on a task stream).
        agent: The agent (memory runs: ``hcam``, ``sb3-ppo``, ...) or the continual method.
        task: The env id (with its keyword arguments when given) or the stream.
        seed: The run's seed.
        settings: Its settings but the seed: runs of equal ``(kind, settings)`` are seeds of one
            setting.
        conditions: Names of the scores: evaluation conditions, ``training success``, or the
            stream's trained tasks.
        scores: ``[conditions]`` success rates in [0, 1].
        source: Where the scores come from, in words.
        delays: For a recall-vs-delay evaluation, the delay of each condition; else None.
        chance: Success of guessing in the evaluated env, when known; else None.
    """

    run_dir: Path
    kind: str
    agent: str
    task: str
    seed: int
    settings: dict[str, Any]
    conditions: tuple[str, ...]
    scores: np.ndarray
    source: str
    delays: tuple[int, ...] | None = None
    chance: float | None = None


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Every run directory given, or found under the directories given, once each, in order.

    A path with a ``config.json`` is a run; any other directory is searched (a sweep directory,
    a study's output, an archive), not descending into runs, their checkpoints or reports.

    Raises:
        FileNotFoundError: A path does not exist.
    """
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such run or directory: {path}")
        for run_dir in _runs_under(path):
            found.setdefault(run_dir.resolve(), None)
    return list(found)


def _runs_under(path: Path) -> list[Path]:
    """The run directories at or under ``path``, sorted."""
    if (path / "config.json").is_file():
        return [path]
    if not path.is_dir():
        return []
    children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [run for child in children if child.name not in SKIPPED_DIRS
            for run in _runs_under(child)]  # fmt: skip


def read_run(run_dir: str | Path) -> RunResult:
    """A run's identity and scores.

    Raises:
        ValueError: The run has no score yet (no evaluation, no logged success, no completed
            window); the message says why.
    """
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    if "stream" in config or config.get("offline"):
        return _continual_run(run_dir, config)
    return _memory_run(run_dir, config)


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """A memory run's settings that change learning: ``config.json`` less ``NOT_LEARNING``."""
    return {k: v for k, v in config.items() if k not in NOT_LEARNING}


def _memory_run(run_dir: Path, config: dict[str, Any]) -> RunResult:
    """A memory-PPO or SB3 run: its evaluation's conditions, or its training success."""
    agent = str(config.get("agent") or config.get("core"))
    env_kwargs = config.get("env_kwargs") or {}
    task = config["env_id"] + (f" {json.dumps(env_kwargs, sort_keys=True)}" if env_kwargs else "")
    identity = dict(run_dir=run_dir, kind="memory", agent=agent, task=task,
                    seed=int(config.get("seed", 0)), settings=settings_of(config))  # fmt: skip
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if "kind" in report and report.get("results"):
        results = report["results"]
        delays = None
        chance = None
        if report["kind"] == "recall_vs_delay":
            delays = tuple(int(r["env_kwargs"]["delay"]) for r in results)
            chance = 1 / results[0]["env_kwargs"]["num_symbols"]
        mode = "greedy" if report.get("deterministic") else "sampled"
        return RunResult(
            **identity,
            conditions=tuple(r["label"] for r in results),
            scores=np.array([r["success_rate"] for r in results], dtype=np.float64),
            source=f"memrl eval: {report['episodes']} episodes per condition, {mode} actions",
            delays=delays,
            chance=chance,
        )
    _, success = read_metric(run_dir, "charts/success_rate")
    if not success:
        raise ValueError(f"{run_dir}: no evaluation (memrl eval) and no logged success rate yet")
    tail = success[-max(1, math.ceil(TRAINING_TAIL * len(success))) :]
    return RunResult(
        **identity,
        conditions=("training success",),
        scores=np.array([float(np.mean(tail))]),
        source="training success: mean over the last 10% of logged updates",
    )


def _continual_run(run_dir: Path, config: dict[str, Any]) -> RunResult:
    """A continual run: ``p_i(end)`` of each trained task over its completed windows."""
    log = EvaluationLog.load(run_dir)
    windows = log.windows_completed
    if windows == 0:
        raise ValueError(f"{run_dir}: no task window completed yet")
    history = evaluation_history(log, windows)
    return RunResult(
        run_dir=run_dir,
        kind="continual",
        agent=log.method,
        task=("" if log.learner == CONTINUAL_SAC else f"{log.learner}: ")
        + f"{log.stream} ({log.steps_per_task:,} steps per task)",
        seed=log.seed,
        settings=continual_settings(config),
        conditions=history.task_names,
        scores=final_performance(history),
        source="Continual World's p_i(end): mean of each task's last 5 evaluations",
    )


def continual_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A continual run's settings but its seed (offline runs: also without their data paths)."""
    saved = dict(config)
    if saved.pop("offline", False):
        from memrl.agents.l2m.offline_config import RESUMABLE_CHANGES

        return {k: v for k, v in saved.items() if k not in ("seed", *RESUMABLE_CHANGES)}
    saved.pop("agent", None)
    return {"learner": "continual SAC", **learning_settings(saved_run_config(saved))}


def differing(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in every one of ``settings``."""
    keys = dict.fromkeys(k for s in settings for k in s)
    return [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in settings}) > 1]
