"""A sweep's speed-up over running its trials one after another, and Ray's cost per trial.

``trials`` equal ``memrl train`` runs (seeds 0, 1, ...; one torch thread each) are timed twice:

- **plain**: one after another, each a ``memrl train`` process of its own (the wall time of each
  process, Python's and torch's start included);
- **sweep**: all of them through :func:`memrl.sweep.runner.run_sweep` on a local Ray (started
  and stopped inside the measurement) with ``cpus`` CPUs per trial.

The speed-up is the plain total over the sweep's wall time. Ray's overhead per trial is what a
trial costs in the sweep beyond a plain run: the sweep's wall time times the trials it runs at
once, divided by the trials, minus the mean plain run; it holds Ray's start-up, each trial's
worker start and imports, and whatever the trials running side by side cost each other. The
CPU seconds of each run, plain and inside the trials, and the cores the trials got on average
(their CPU seconds over Tune's wall time) tell the machine's other work apart from Ray's cost.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memrl.bench.machine import machine_info
from memrl.sweep.runner import run_sweep
from memrl.sweep.spec import SweepSpec
from memrl.sweep.trainable import Command
from memrl.sweep.trial import Trial, TrialRecord


def bench_sweep(
    command: Command,
    *,
    trials: int = 4,
    env_id: str = "memrl/DelayedMatch-Easy-v0",
    agent: str = "lstm",
    steps: int = 131_072,
    cpus: float = 1.0,
) -> dict[str, Any]:
    """Time ``trials`` equal training runs one after another and as a sweep.

    Args:
        command: ``memrl``'s ``main`` (the sweep's trials call it in their workers).
        trials: How many runs (seeds ``0..trials-1``).
        env_id: Their env.
        agent: Their agent.
        steps: Env steps of each.
        cpus: CPUs per trial in the sweep.

    Returns:
        The figures, with the machine and its load.
    """
    options = ("--env", env_id, "--agent", agent, "--steps", str(steps), "--threads", "1",
               "--no-tensorboard")  # fmt: skip
    grid = tuple(
        Trial(f"seed-{seed}", {"seed": seed}, {}, (*options, "--seed", str(seed)))
        for seed in range(trials)
    )
    with tempfile.TemporaryDirectory(prefix="memrl-bench-sweep-") as tmp:
        plain, plain_cpu = [], []
        for trial in grid:
            argv = trial.commands(Path(tmp) / "plain" / trial.name, resume=False)[0]
            start, cpu_start = time.perf_counter(), _children_cpu()
            subprocess.run([sys.executable, "-m", "memrl.cli", *argv], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            plain.append(time.perf_counter() - start)
            plain_cpu.append(_children_cpu() - cpu_start)
        spec = SweepSpec(path=Path("bench"), name="bench", trials=grid, cpus=cpus, max_failures=0)
        load_before = _load()
        start = time.perf_counter()
        result = run_sweep(spec, Path(tmp) / "sweep", command=command, verbose=0)
        sweep_seconds = time.perf_counter() - start
        inside = [TrialRecord.load(t.run_dir(result.sweep_dir)) for t in grid]
        if result.failed:
            raise RuntimeError(f"the sweep's trials failed: {[t.error for t in result.failed]}")
    machine = machine_info(("memrl", "torch", "ray"))
    at_once = min(trials, max(1, int((machine["cores"] or 1) // cpus)))
    plain_total = sum(plain)
    return {
        "machine": machine,
        "load_average_before_sweep": load_before,
        "trials": trials,
        "trial": f"memrl train {' '.join(options)}",
        "cpus_per_trial": cpus,
        "trials_at_once": at_once,
        "plain_seconds": plain,
        "plain_total_seconds": plain_total,
        "sweep_seconds": sweep_seconds,
        "ray_init_seconds": result.ray_init_seconds,
        "tune_fit_seconds": result.fit_seconds,
        "trial_train_seconds": [r.seconds[-1] for r in inside if r and r.seconds],
        "plain_cpu_seconds": plain_cpu,
        "trial_train_cpu_seconds": [r.cpu_seconds[-1] for r in inside if r and r.cpu_seconds],
        "speedup": plain_total / sweep_seconds,
        "speedup_without_ray_start": plain_total / result.fit_seconds,
        "overhead_per_trial_seconds": sweep_seconds * at_once / trials - plain_total / trials,
    }


def _children_cpu() -> float:
    """CPU seconds (user and system) of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages (empty where unknown)."""
    try:
        return list(os.getloadavg())
    except OSError:
        return []


def format_report(report: dict[str, Any]) -> str:
    """The figures as a few lines."""
    plain = report["plain_seconds"]
    inside = report["trial_train_seconds"]
    return "\n".join([
        f"{report['trials']} trials of `{report['trial']}`, {report['cpus_per_trial']:g} CPU "
        f"each, {report['trials_at_once']} at once on {report['machine']['cores']} cores "
        f"(load average before the sweep: "
        f"{', '.join(f'{v:.1f}' for v in report['load_average_before_sweep'])})",
        f"plain memrl train, one after another: {report['plain_total_seconds']:.1f} s "
        f"({', '.join(f'{s:.1f}' for s in plain)})",
        f"memrl sweep on local Ray: {report['sweep_seconds']:.1f} s (Ray start "
        f"{report['ray_init_seconds']:.1f} s, Tune {report['tune_fit_seconds']:.1f} s; inside "
        f"the trials, memrl train took {', '.join(f'{s:.1f}' for s in inside)} s)",
        f"CPU seconds per run: plain {_mean(report['plain_cpu_seconds']):.1f}, inside the sweep's "
        f"trials {_mean(report['trial_train_cpu_seconds']):.1f}; the sweep's trials got "
        f"{sum(report['trial_train_cpu_seconds']) / report['tune_fit_seconds']:.2f} cores on "
        "average",
        f"speed-up {report['speedup']:.2f}x ({report['speedup_without_ray_start']:.2f}x without "
        f"Ray's start); Ray's overhead per trial {report['overhead_per_trial_seconds']:.1f} s",
    ])  # fmt: skip


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
