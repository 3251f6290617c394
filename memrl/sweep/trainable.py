"""The Ray Tune function trainable: one trial, run in a Ray worker as ``memrl train`` would run.

Ray imports this module in the worker, and with it :mod:`memrl`, which registers memrl's
Gymnasium ids there (Gymnasium's registry is per process: the driver's registrations do not reach
Ray's workers).
The trial calls the ``main`` of the ``memrl`` command that the sweep hands in (through
``tune.with_parameters``) with the trial's command lines, in the worker's process: the code path
of ``memrl train`` itself. A run directory that already holds a run (an attempt that was killed
or raised) is continued with ``--resume``, from its last checkpoint.

Everything the commands print goes to ``RUN_DIR/sweep_trial.log``; the record
``RUN_DIR/sweep_trial.json`` says how the trial went (:mod:`memrl.sweep.trial`). The run's last
logged metrics are reported to Tune when the trial ends.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memrl.sweep.trial import (
    LOG_FILE,
    Trial,
    TrialRecord,
    holds_run,
    is_finished,
    last_metrics,
)

Command = Callable[[Sequence[str]], int]
"""The ``memrl`` command's ``main``: a command line -> its exit status."""


class TrialError(RuntimeError):
    """A trial's ``memrl`` command exited with an error."""


def run_trial(
    config: dict[str, Any], command: Command, trials: Sequence[Trial], sweep_dir: str, cwd: str
) -> None:
    """Run the trial ``config["index"]`` of ``trials`` (Ray Tune's function-trainable signature).

    Args:
        config: Tune's config of the trial: its ``index`` into ``trials``.
        command: ``memrl``'s ``main``.
        trials: The sweep's trials.
        sweep_dir: The sweep directory (absolute): the trial runs in its run directory there.
        cwd: The driver's working directory, where relative paths in options point.

    Raises:
        TrialError: A command exited with an error (the message is its ``error:`` line).
    """
    from ray import tune

    trial = trials[config["index"]]
    metrics = run_commands(trial, trial.run_dir(sweep_dir), command, cwd=cwd)
    tune.report(metrics)


def run_commands(trial: Trial, run_dir: Path, command: Command, cwd: str | None = None) -> dict:
    """Run a trial's commands in ``run_dir`` unless it has finished; returns its last metrics.

    Args:
        trial: The trial.
        run_dir: Its run directory (absolute).
        command: ``memrl``'s ``main``.
        cwd: Run the commands from this directory when it exists here (Ray Tune starts each
            trial in a directory of its own).

    Raises:
        TrialError: A command exited with an error; the record says ``failed``, with it.
    """
    if is_finished(trial, run_dir):
        record = TrialRecord.load(run_dir)
        assert record is not None
        return {**record.metrics, "attempts": float(record.attempts)}
    if cwd is not None and Path(cwd).is_dir():
        os.chdir(cwd)
    record = TrialRecord.load(run_dir) or TrialRecord(trial.name, trial.signature())
    record.signature, record.status, record.error = trial.signature(), "running", None
    record.attempts += 1
    commands = trial.commands(run_dir, resume=holds_run(run_dir))
    record.save(run_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    with (run_dir / LOG_FILE).open("a") as log:
        try:
            for argv in commands:
                _run_logged(argv, command, log, record.attempts)
        except BaseException as error:
            record.status, record.error = "failed", f"{type(error).__name__}: {error}"
            if not isinstance(error, TrialError):
                traceback.print_exc(file=log)
            record.save(run_dir)
            raise
    record.seconds.append(time.perf_counter() - start)
    record.cpu_seconds.append(time.process_time() - cpu_start)
    record.status, record.metrics = "finished", last_metrics(run_dir)
    record.save(run_dir)
    return {**record.metrics, "attempts": float(record.attempts)}


def _run_logged(argv: list[str], command: Command, log: Any, attempt: int) -> None:
    """Run one command line with its output in ``log``; ``TrialError`` if it fails."""
    log.write(f"== attempt {attempt}: memrl {' '.join(argv)}\n")
    log.flush()
    start = log.tell()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        status = command(argv)
    log.flush()
    if status != 0:
        with open(log.name) as f:
            f.seek(start)
            errors = [line.strip() for line in f if line.startswith("error: ")]
        detail = errors[-1].removeprefix("error: ") if errors else f"exit status {status}"
        raise TrialError(f"memrl {argv[0]} failed: {detail}")
