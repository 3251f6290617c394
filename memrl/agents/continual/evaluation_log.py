"""A continual run's evaluation log (``evaluations.json``): plain data, written while training.

The trainers (continual SAC's :mod:`~memrl.agents.continual.trainer`, offline fine-tuning's
:mod:`~memrl.agents.l2m.offline_trainer`) append to an :class:`EvaluationLog` at every evaluation
and save it beside their checkpoints; :mod:`memrl.eval.continual` reads it back for Continual
World's metrics, the retention matrix and the report. This module is the format both sides share,
and nothing else: numbers in, JSON out.

The log holds the success rate and mean return of every task of the stream (held-out tasks
included) at every evaluation, the env steps at which the evaluations happened, the stream's
windows, and the initial evaluation made before any training. Its trained tasks' columns are
exactly the layout of Continual World's evaluation history: one column per distinct trained task
of the stream, ``schedule`` = the column trained in each window (stage), and the window convention
of Continual World (an evaluation made exactly at a task switch belongs to the task that has just
finished, because the trainer evaluates after the last step of the task).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOG_FILE = "evaluations.json"
"""Name of the evaluation log in a run directory."""
CONTINUAL_SAC = "Continual SAC"
"""The evaluation log's ``learner`` of continual-SAC runs."""


@dataclass
class EvaluationLog:
    """Every evaluation of one continual run (``evaluations.json``).

    Attributes:
        task_names: The stream's distinct tasks (columns, in one-hot order): the trained tasks,
            then the held-out ones.
        steps_per_task: Env steps per window (stage).
        schedule: Column trained in each window of the stream (all windows, reached or not).
        method: The continual-learning method.
        stream: The stream's name.
        seed: The run's seed.
        eval_episodes: Episodes per task and evaluation.
        deterministic: Whether the evaluations acted with the mean action.
        steps: Env steps of training before each evaluation.
        success: ``[evaluations][tasks]`` success rates (the score the metrics read).
        returns: ``[evaluations][tasks]`` mean episode returns.
        return_scored: Tasks without a success signal (dm_control), whose ``success`` entries are
            the mean normalised return (episode return / its maximum, in [0, 1]) instead.
        held_out: The tasks evaluated but never trained (the last columns).
        initial_success: ``[tasks]`` success before any training (None: not evaluated, as in runs
            made before memrl evaluated initially).
        initial_returns: ``[tasks]`` mean returns of that evaluation.
        pretraining: The held-out columns that are tasks a pretrained model was trained on
            (offline fine-tuning runs): their success relative to the initial evaluation (the
            frozen model's) is the retention of pretraining skill.
        learner: What learnt the stream (a report's title): continual SAC, or offline
            fine-tuning of the pretrained model.
    """

    task_names: tuple[str, ...]
    steps_per_task: int
    schedule: tuple[int, ...]
    method: str
    stream: str
    seed: int
    eval_episodes: int
    deterministic: bool
    steps: list[int] = field(default_factory=list)
    success: list[list[float]] = field(default_factory=list)
    returns: list[list[float]] = field(default_factory=list)
    return_scored: tuple[str, ...] = ()
    held_out: tuple[str, ...] = ()
    initial_success: list[float] | None = None
    initial_returns: list[float] | None = None
    pretraining: tuple[str, ...] = ()
    learner: str = CONTINUAL_SAC

    def __post_init__(self) -> None:
        if self.held_out and self.task_names[-len(self.held_out) :] != tuple(self.held_out):
            raise ValueError(
                f"held_out {list(self.held_out)} must be the last of task_names "
                f"{list(self.task_names)}"
            )
        if not set(self.pretraining) <= set(self.held_out):
            raise ValueError(
                f"pretraining {list(self.pretraining)} must be among the held-out tasks "
                f"{list(self.held_out)} (evaluated, never trained)"
            )

    @property
    def held_out_only(self) -> tuple[str, ...]:
        """The held-out columns that are not pretraining tasks."""
        return tuple(name for name in self.held_out if name not in self.pretraining)

    @property
    def trained_names(self) -> tuple[str, ...]:
        """The columns of the tasks the stream trains (every column but the held-out ones)."""
        return self.task_names[: len(self.task_names) - len(self.held_out)]

    def set_initial(self, success: Sequence[float], returns: Sequence[float]) -> None:
        """Record the evaluation made before any training."""
        if self.steps:
            raise ValueError("the initial evaluation must come before every other evaluation")
        self.initial_success = [float(s) for s in success]
        self.initial_returns = [float(r) for r in returns]

    def append(self, step: int, success: Sequence[float], returns: Sequence[float]) -> None:
        """Record one evaluation made after ``step`` env steps."""
        if self.steps and step <= self.steps[-1]:
            raise ValueError(f"evaluation steps must increase: {step} after {self.steps[-1]}")
        self.steps.append(int(step))
        self.success.append([float(s) for s in success])
        self.returns.append([float(r) for r in returns])

    @property
    def windows_reached(self) -> int:
        """Windows that hold at least one evaluation (``ceil(last step / steps_per_task)``)."""
        return math.ceil(self.steps[-1] / self.steps_per_task) if self.steps else 0

    @property
    def windows_completed(self) -> int:
        """Windows whose last evaluation (at the window's end) is in the log."""
        return self.steps[-1] // self.steps_per_task if self.steps else 0

    @property
    def total_steps(self) -> int:
        """Env steps of the whole stream (every window, reached or not)."""
        return len(self.schedule) * self.steps_per_task

    @property
    def finished(self) -> bool:
        """Whether the log reaches the end of the stream."""
        return bool(self.steps) and self.steps[-1] == self.total_steps

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The log as plain data."""
        data = asdict(self)
        data["task_names"] = list(self.task_names)
        data["schedule"] = list(self.schedule)
        data["return_scored"] = list(self.return_scored)
        data["held_out"] = list(self.held_out)
        data["pretraining"] = list(self.pretraining)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationLog:
        """The log from :meth:`to_dict`'s data."""
        values = dict(data)
        values["task_names"] = tuple(values["task_names"])
        values["schedule"] = tuple(int(c) for c in values["schedule"])
        values["return_scored"] = tuple(values.get("return_scored", ()))
        values["held_out"] = tuple(values.get("held_out", ()))
        values["pretraining"] = tuple(values.get("pretraining", ()))
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        """Write the log as JSON, atomically (a temporary file, then a rename)."""
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationLog:
        """Read a log from a JSON file or from a run directory.

        Raises:
            FileNotFoundError: No log there.
        """
        path = Path(path)
        if path.is_dir():
            path = path / LOG_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no evaluation log at {path}; is this a continual run directory "
                "(memrl train --stream ...) that has evaluated at least once?"
            )
        return cls.from_dict(json.loads(path.read_text()))
