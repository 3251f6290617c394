"""One trial of a sweep: its ``memrl train`` options, its run directory, and its record.

A trial's run directory, ``SWEEP_DIR/trials/<name>``, is an ordinary ``memrl train`` run
directory (``memrl eval`` and ``memrl train --out RUN_DIR --resume`` work on it alone) with two
files more, written by the trial's worker:

- ``sweep_trial.json`` (:class:`TrialRecord`): the commands the trial runs, its status
  (``running``, ``finished``, ``failed``), how many attempts it took, the last error, the wall
  time of each attempt's commands and the run's last logged metrics. A trial is *finished* when
  this record says so for the same commands: a resumed sweep skips it, and a changed SPEC (a
  larger ``steps``, say) makes it run again with ``--resume``.
- ``sweep_trial.log``: everything the trial's commands printed, attempt after attempt, each
  under a ``== attempt N: memrl ...`` line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_FILE = "sweep_trial.json"
"""The trial's record in its run directory."""
LOG_FILE = "sweep_trial.log"
"""What the trial's commands printed, in its run directory."""
RUN_FILES = ("config.json", "metrics.csv", "evaluations.json")
"""Files by which a trainer knows that a run directory already holds a run (to resume)."""
TRIALS_DIR = "trials"
"""The directory of the trials' run directories in a sweep directory."""


@dataclass(frozen=True)
class Trial:
    """One point of a sweep's grid.

    Attributes:
        name: The trial's name and its run directory under ``SWEEP_DIR/trials`` (``/`` makes
            sub-directories: ``ewc/seed0``).
        options: The SPEC's options of this trial, by key (``{"agent": "hcam", "seed": 0}``).
        sources: Where each option was set in the SPEC (``{"agent": "[grid]"}``), for messages.
        train_arguments: ``memrl train``'s options, without ``--out``, ``--resume`` and
            ``--no-progress`` (the trial adds them).
        eval_arguments: ``memrl eval``'s options, run on the trial's run directory after
            training; None: no evaluation.
    """

    name: str
    options: dict[str, Any]
    sources: dict[str, str]
    train_arguments: tuple[str, ...]
    eval_arguments: tuple[str, ...] | None = None

    def run_dir(self, sweep_dir: str | Path) -> Path:
        """The trial's run directory in ``sweep_dir``."""
        return Path(sweep_dir) / TRIALS_DIR / self.name

    def commands(self, run_dir: str | Path, resume: bool) -> list[list[str]]:
        """The ``memrl`` command lines of the trial (train, then eval if asked for)."""
        train = ["train", *self.train_arguments, "--out", str(run_dir), "--no-progress"]
        commands = [[*train, "--resume"] if resume else train]
        if self.eval_arguments is not None:
            commands.append(["eval", str(run_dir), *self.eval_arguments])
        return commands

    def signature(self) -> list[list[str]]:
        """What makes two trials the same run: the commands without the run directory."""
        return [list(self.train_arguments), list(self.eval_arguments or [])]

    def where(self, key: str) -> str:
        """A SPEC key as a message names it: ``[grid] agent``."""
        return f"{self.sources.get(key, '[train]')} {key}"


@dataclass
class TrialRecord:
    """``sweep_trial.json``: what a trial's worker did in its run directory.

    Attributes:
        name: The trial's name.
        signature: :meth:`Trial.signature` of the commands it ran.
        status: ``running``, ``finished`` or ``failed``.
        attempts: Attempts started, over every invocation of the sweep.
        error: The last attempt's error, or None.
        seconds: Wall time of each attempt's commands (a killed attempt has none).
        cpu_seconds: CPU time of the worker's process during each attempt's commands.
        metrics: The run's last logged metrics (the last row of ``metrics.csv``).
    """

    name: str
    signature: list[list[str]]
    status: str = "running"
    attempts: int = 0
    error: str | None = None
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: str | Path) -> TrialRecord | None:
        """The record of ``run_dir``; None when it has none (or not a readable one)."""
        path = Path(run_dir) / RECORD_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, run_dir: str | Path) -> None:
        """Write the record into ``run_dir``, atomically."""
        path = Path(run_dir) / RECORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        tmp.replace(path)


def is_finished(trial: Trial, run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds ``trial`` run to its end (its record, for the same commands)."""
    record = TrialRecord.load(run_dir)
    return (
        record is not None
        and record.status == "finished"
        and (record.signature == trial.signature())
    )


def holds_run(run_dir: str | Path) -> bool:
    """Whether a trainer has started in ``run_dir`` (so the trial continues it with --resume)."""
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


def last_metrics(run_dir: str | Path) -> dict[str, float]:
    """The last row of a run's ``metrics.csv`` (its finite numbers); empty without one."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    metrics = {}
    for key, text in rows[-1].items():
        try:
            value = float(text)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            metrics[key] = value
    return metrics
