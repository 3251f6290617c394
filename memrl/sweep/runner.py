"""Run a sweep on Ray Tune: every unfinished trial of a SPEC, retried, resumable, summarised.

The sweep directory holds:

- ``spec.toml``: a copy of the SPEC it runs;
- ``trials/<name>/``: each trial's run directory (:mod:`memrl.sweep.trial`);
- ``ray/run-<k>/``: Ray Tune's own results of the k-th invocation (``RunConfig.storage_path``);
- ``sweep.json``: the summary, rewritten as trials start and end: each trial's name, options,
  status, run directory, attempts and error.

Ray itself (a local instance started here, or the cluster of ``--address``) keeps its session
files (logs, sockets, the trials' working directories) in its temporary directory,
``/tmp/ray/session_*`` unless ``ray start --temp-dir`` or ``RAY_TMPDIR`` says otherwise: this
module does not move them, because Ray's socket paths must stay short.

"Finished" is decided from each trial's own run directory, so a sweep run again with ``resume``
skips the trials that finished (whichever invocation ran them) and continues the others from
their checkpoints. A trial that raises is retried ``max_failures`` times; one that still fails is
reported with its error while the others go on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memrl.sweep.spec import SweepSpec
from memrl.sweep.trainable import Command, run_trial
from memrl.sweep.trial import TRIALS_DIR, Trial, TrialRecord, is_finished

SUMMARY_FILE = "sweep.json"
"""The sweep's summary in its directory."""
SPEC_FILE = "spec.toml"
"""The copy of the SPEC in the sweep directory."""
RAY_DIR = "ray"
"""Ray Tune's results in the sweep directory (one ``run-<k>`` per invocation)."""
DONE = ("finished", "finished earlier")
"""Statuses of a trial that has run to its end."""


@dataclass
class TrialSummary:
    """One line of the sweep's summary.

    Attributes:
        name: The trial's name.
        options: Its SPEC options.
        status: ``pending``, ``running``, ``retrying``, ``finished``, ``finished earlier``
            (skipped: an earlier invocation finished it), ``failed``, ``interrupted`` (started,
            not finished) or ``not started``.
        run_dir: Its run directory.
        attempts: Attempts over every invocation (its record's count).
        error: The error of a failed trial, else None.
    """

    name: str
    options: dict[str, Any]
    status: str
    run_dir: str
    attempts: int = 0
    error: str | None = None


@dataclass
class SweepResult:
    """What a sweep did: its summary, and Ray's start-up and Tune's run times.

    Attributes:
        sweep_dir: The sweep directory.
        trials: One summary per trial, in the SPEC's order.
        ray_init_seconds: Time to start (or join) Ray; 0 when Ray was running in this process
            already or no trial was left to run.
        fit_seconds: Wall time of Tune's run of the pending trials.
    """

    sweep_dir: Path
    trials: list[TrialSummary]
    ray_init_seconds: float = 0.0
    fit_seconds: float = 0.0

    @property
    def failed(self) -> list[TrialSummary]:
        """The trials that did not run to their end."""
        return [t for t in self.trials if t.status not in DONE]

    def table(self) -> str:
        """One line per trial: name, status, attempts, run directory, error."""
        width = max(len(t.name) for t in self.trials)
        lines = []
        for t in self.trials:
            run_dir = os.path.relpath(t.run_dir, self.sweep_dir)
            error = f"  {t.error.splitlines()[0]}" if t.error else ""
            lines.append(f"{t.name:<{width}}  {t.status:<16}  attempts {t.attempts}  "
                         f"{run_dir}{error}")  # fmt: skip
        done = sum(t.status in DONE for t in self.trials)
        lines.append(f"{done} of {len(self.trials)} trials finished; summary: "
                     f"{self.sweep_dir / SUMMARY_FILE}")  # fmt: skip
        return "\n".join(lines)


def run_sweep(
    spec: SweepSpec,
    sweep_dir: str | Path,
    *,
    command: Command,
    address: str | None = None,
    resume: bool = False,
    verbose: int = 1,
) -> SweepResult:
    """Run every trial of ``spec`` that has not finished, on Ray Tune.

    Args:
        spec: The checked SPEC.
        sweep_dir: The sweep directory (created).
        command: ``memrl``'s ``main``, which each trial calls in its worker.
        address: A Ray cluster to join (``auto``: the one ``ray start`` made here); None: join
            the Ray instance of this process if there is one, else start a local one on this
            machine's cores.
        resume: Continue the sweep in ``sweep_dir``: finished trials are skipped, interrupted
            ones continue from their checkpoints.
        verbose: Ray Tune's console output (0: none, 1: a status table now and then).

    Returns:
        The summary (also written to ``SWEEP_DIR/sweep.json``).

    Raises:
        FileExistsError: ``sweep_dir`` holds a sweep and ``resume`` is False.
        FileNotFoundError: ``resume`` and ``sweep_dir`` holds no sweep.
        ValueError: A trial asks for more CPUs than the Ray cluster has.
    """
    sweep_dir = Path(sweep_dir).absolute()
    summary_path = sweep_dir / SUMMARY_FILE
    if resume and not summary_path.exists():
        raise FileNotFoundError(
            f"--resume: {sweep_dir} holds no sweep ({SUMMARY_FILE} is missing); drop --resume "
            "to start the sweep there"
        )
    if not resume and (summary_path.exists() or (sweep_dir / TRIALS_DIR).exists()):
        raise FileExistsError(
            f"{sweep_dir} already holds a sweep; pass --resume to continue it (finished trials "
            "are skipped), or give another --out"
        )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SPEC_FILE).write_text(spec.text)
    result = SweepResult(sweep_dir, [_summary(t, sweep_dir) for t in spec.trials])
    for line in result.trials:
        line.status = "finished earlier" if line.status == "finished" else "pending"
    _write(result)
    pending = [i for i, t in enumerate(result.trials) if t.status == "pending"]
    errors: dict[int, str] = {}
    if pending:
        errors = _fit(spec, result, pending, command, address, verbose)
    for index in pending:
        result.trials[index] = _final(spec.trials[index], sweep_dir, errors.get(index))
    _write(result)
    return result


def _fit(
    spec: SweepSpec,
    result: SweepResult,
    pending: Sequence[int],
    command: Command,
    address: str | None,
    verbose: int,
) -> dict[int, str]:
    """Run the pending trials with Ray Tune; returns the error of each trial that failed."""
    import ray
    from ray import tune

    from memrl.sweep.progress import SummaryUpdates

    start = time.perf_counter()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=False)
    result.ray_init_seconds = time.perf_counter() - start if started else 0.0
    try:
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if spec.cpus > cpus:
            raise ValueError(
                f"[resources] cpus = {spec.cpus:g} per trial, but the Ray cluster has {cpus:g} "
                "CPUs: no trial could start"
            )

        def update(index: int, status: str) -> None:
            result.trials[index].status = status
            _write(result)

        trainable = tune.with_parameters(
            run_trial, command=command, trials=list(spec.trials),
            sweep_dir=str(result.sweep_dir), cwd=os.getcwd(),
        )  # fmt: skip
        storage = result.sweep_dir / RAY_DIR
        runs = len(list(storage.glob("run-*"))) if storage.exists() else 0
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": spec.cpus}),
            param_space={"index": tune.grid_search(list(pending))},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.max_concurrent,
                # A finished trial's worker takes the next trial: memrl and torch stay imported.
                reuse_actors=True,
                trial_name_creator=lambda trial: spec.trials[trial.config["index"]].name,
                trial_dirname_creator=lambda trial: f"trial-{trial.config['index']:04d}",
            ),
            run_config=tune.RunConfig(
                name=f"run-{runs + 1}",
                storage_path=str(storage),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                callbacks=[SummaryUpdates(update)],
                verbose=verbose,
            ),
        )
        fit_start = time.perf_counter()
        grid = tuner.fit()
        result.fit_seconds = time.perf_counter() - fit_start
        results = [grid[i] for i in range(len(grid))]
        return {
            r.config["index"]: f"{type(r.error).__name__}: {r.error}"
            for r in results
            if r.error is not None and r.config
        }
    finally:
        if started:
            ray.shutdown()


def _summary(trial: Trial, sweep_dir: Path) -> TrialSummary:
    """A trial's summary from its run directory: finished, failed, interrupted or not started."""
    run_dir = trial.run_dir(sweep_dir)
    record = TrialRecord.load(run_dir)
    if record is None:
        status = "not started"
    elif is_finished(trial, run_dir):
        status = "finished"
    else:
        status = "failed" if record.status == "failed" else "interrupted"
    return TrialSummary(
        name=trial.name,
        options=trial.options,
        status=status,
        run_dir=str(run_dir),
        attempts=record.attempts if record else 0,
        error=record.error if record and status == "failed" else None,
    )


def _final(trial: Trial, sweep_dir: Path, error: str | None) -> TrialSummary:
    """The summary of a trial this invocation ran, with Tune's error if its record has none."""
    summary = _summary(trial, sweep_dir)
    if error is not None and summary.status not in DONE:
        summary.status = "failed"
        summary.error = summary.error or error
    return summary


def _write(result: SweepResult) -> None:
    """Write the summary to ``SWEEP_DIR/sweep.json``, atomically."""
    path = result.sweep_dir / SUMMARY_FILE
    document = {
        "sweep_dir": str(result.sweep_dir),
        "trials": [asdict(t) for t in result.trials],
        "ray_init_seconds": result.ray_init_seconds,
        "fit_seconds": result.fit_seconds,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)
