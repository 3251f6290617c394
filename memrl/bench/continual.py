"""``memrl bench continual``: what continual SAC costs per env step, and what a run costs.

Each method trains continual SAC (the defaults of :class:`ContinualConfig`: 4x256 networks,
batch 128, 50 gradient steps every 50 env steps, one torch thread) on a short two-task Meta-World
stream in a temporary run directory. Every env step of :meth:`ContinualTrainer.step` is timed
and filed under one of:

- ``random``: a task's first ``random_steps`` steps, uniform-random actions and no gradient steps
  (``start_steps = update_after = random_steps``);
- ``learning``: the policy acting and, every 50 steps, 50 gradient steps; ``first_task`` and
  ``later_tasks`` apart, since L2, EWC and PackNet only add their work from the second task on;
- ``task_switch``: the last step of a task and the first of the next, which also run the
  method's end of task (PackNet's pruning and retraining), an evaluation of every task, a
  checkpoint, and the method's start of task (EWC's Fisher estimate, the replay and optimiser
  resets).

The stream's very last step is not taken; instead an evaluation of every task is timed on its own
(``eval_episodes`` episodes per task).

:func:`project_run_hours` turns the rates into the expected wall time of a whole run (one method,
one seed, one process) for a given number of tasks and steps per task: random steps at the random
rate, every other step at the learning rate (Continual World's steps between ``update_after`` and
``start_steps`` act randomly but learn, and the policy's forward pass is a small part of a learning
step), PackNet's retraining (after every task but the last) at one gradient step per learning
step's time, and evaluations at the
measured time per episode.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from memrl.agents.continual.config import METHODS, ContinualConfig, packnet_retrain_steps

DEFAULT_TASKS: tuple[str, str] = ("reach-v3", "button-press-v3")
"""The two tasks of the measured stream (any two Box-action tasks of a named stream work)."""


def _whole_update_periods(steps: int) -> int:
    """``steps`` rounded up to a multiple of the update period (``update_every``)."""
    period = ContinualConfig.update_every
    return -(-steps // period) * period


def continual_sac_rates(
    method: str,
    tasks: Sequence[str] = DEFAULT_TASKS,
    random_steps: int = 500,
    learning_steps: int = 1_000,
    eval_episodes: int = 2,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time continual SAC with ``method`` on a stream of ``tasks``; see the module docstring.

    Args:
        method: One of :data:`~memrl.agents.continual.config.METHODS`.
        tasks: Meta-World v3 tasks of the stream (at least two, so that later tasks are timed).
        random_steps: Random-action steps at the start of every task.
        learning_steps: Learning steps per task after them (rounded up to a multiple of 50, the
            update period, so that every 50 env steps carry their 50 gradient steps).
        eval_episodes: Episodes per task of the timed evaluation.
        seed: Seed of the run.
        progress: Called with 1 after every env step (e.g. a progress bar's ``update``).

    Returns:
        ``{"method", "tasks", "batch_size", "random_steps_per_s", "learning_steps_per_s":
        {"first_task", "later_tasks"}, "task_switch_seconds": [per switch],
        "eval_seconds_per_episode", "steps"}``; ``later_tasks`` is None for ``multitask``,
        whose whole run is one segment.

    Raises:
        ValueError: An unknown method, fewer than two tasks or a non-positive budget.
    """
    from memrl.agents.continual.trainer import ContinualTrainer

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if len(tasks) < 2:
        raise ValueError(f"tasks must name at least two tasks, got {list(tasks)}")
    for name, value in (("random_steps", random_steps), ("learning_steps", learning_steps),
                        ("eval_episodes", eval_episodes)):  # fmt: skip
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    learning_steps = _whole_update_periods(learning_steps)
    steps_per_task = random_steps + learning_steps
    config = ContinualConfig(
        stream="CW10",
        tasks=",".join(tasks),
        steps_per_task=steps_per_task,
        method=method,
        seed=seed,
        eval_every=steps_per_task,
        eval_episodes=eval_episodes,
        start_steps=random_steps,
        update_after=random_steps,
        checkpoint_every=steps_per_task,
        log_every=steps_per_task,
        tensorboard=False,
        threads=1,
    )
    with tempfile.TemporaryDirectory(prefix="memrl-bench-") as run_dir:
        trainer = ContinualTrainer(config, run_dir, progress=False)
        seconds: dict[str, float] = {"random": 0.0, "first": 0.0, "later": 0.0}
        counts: dict[str, int] = {"random": 0, "first": 0, "later": 0}
        task_switch: list[float] = []
        try:
            while trainer.global_step < trainer.total_steps - 1:
                segment = trainer.segment_at(trainer.global_step)
                task_step = trainer.global_step - segment.start
                start = time.perf_counter()
                trainer.step()
                elapsed = time.perf_counter() - start
                if trainer.global_step == segment.end:
                    task_switch.append(elapsed)
                elif task_step == 0 and segment.index > 0:
                    task_switch[-1] += elapsed
                else:
                    phase = (
                        "random"
                        if task_step < random_steps
                        else ("first" if segment.index == 0 else "later")
                    )
                    seconds[phase] += elapsed
                    counts[phase] += 1
                if progress is not None:
                    progress(1)
            start = time.perf_counter()
            trainer.evaluate()
            eval_seconds = time.perf_counter() - start
            batch_size = trainer.method.batch_size
        finally:
            trainer.close()
    return {
        "method": method,
        "tasks": list(tasks),
        "batch_size": batch_size,
        "random_steps_per_s": counts["random"] / seconds["random"],
        "learning_steps_per_s": {
            "first_task": counts["first"] / seconds["first"],
            "later_tasks": counts["later"] / seconds["later"] if counts["later"] else None,
        },
        "task_switch_seconds": task_switch,
        "eval_seconds_per_episode": eval_seconds / (len(tasks) * eval_episodes),
        "steps": {"random": random_steps, "learning": learning_steps, "per_task": steps_per_task},
    }


def project_run_hours(
    rates: dict[str, Any],
    num_tasks: int,
    steps_per_task: int,
    eval_every: int,
    eval_episodes: int = 10,
    random_steps: int = 1_000,
    retrain_steps: int = -1,
    evaluated_tasks: int | None = None,
) -> float:
    """Expected wall hours of one run (one method, one seed) from :func:`continual_sac_rates`.

    Args:
        rates: One method's measured rates.
        num_tasks: Stages of the stream (CW10: 10, CW20: 20).
        steps_per_task: Env steps per task.
        eval_every: Env steps between evaluations of every task.
        eval_episodes: Episodes per task and evaluation.
        random_steps: Steps per task without gradient steps (``update_after``).
        retrain_steps: PackNet's ``packnet_retrain_steps`` (-1: a tenth of ``steps_per_task``),
            after every task but the last.
        evaluated_tasks: Tasks evaluated at every evaluation (the stream's distinct tasks:
            CW20 20, as its stages, CW10 repeated by task 10); None: ``num_tasks``.

    Returns:
        Hours.
    """
    learning = rates["learning_steps_per_s"]
    later = learning["later_tasks"] or learning["first_task"]
    segments = 1 if rates["method"] == "multitask" else num_tasks  # multitask: one segment
    learning_steps = num_tasks * steps_per_task - segments * random_steps
    first_learning = learning_steps // segments
    seconds = segments * random_steps / rates["random_steps_per_s"]
    seconds += first_learning / learning["first_task"]
    seconds += (learning_steps - first_learning) / later
    if rates["method"] == "packnet":  # retraining after every task but the last
        retrain = packnet_retrain_steps(retrain_steps, steps_per_task)
        seconds += (num_tasks - 1) * retrain / later
    evaluations = num_tasks * steps_per_task // eval_every
    evaluated = num_tasks if evaluated_tasks is None else evaluated_tasks
    seconds += evaluations * evaluated * eval_episodes * rates["eval_seconds_per_episode"]
    return seconds / 3600


PROJECTIONS: tuple[tuple[str, int, int, int], ...] = (
    ("CW10 (10 tasks x 1M)", 10, 1_000_000, 20_000),
    ("CW20 (20 tasks x 1M)", 20, 1_000_000, 20_000),
    ("3 tasks x 30k (scripts/continual_study.py)", 3, 30_000, 2_000),
)
"""Runs whose cost the report projects: (name, tasks, steps per task, eval_every)."""


def bench_continual(
    methods: Sequence[str] = METHODS,
    tasks: Sequence[str] = DEFAULT_TASKS,
    random_steps: int = 500,
    learning_steps: int = 1_000,
    eval_episodes: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Rates of every method and the projected cost of the runs in :data:`PROJECTIONS`.

    Args:
        methods: Methods to time.
        tasks: Tasks of the measured stream.
        random_steps: Random-action steps per task.
        learning_steps: Learning steps per task.
        eval_episodes: Episodes per task of the timed evaluation.
        seed: Seed of every run.
        progress: Show a progress bar (on stderr).

    Returns:
        ``{"methods": {method: rates}, "projected_hours": {run: {method: hours}}, "machine"}``.
    """
    from tqdm import tqdm

    from memrl.bench.machine import machine_info

    steps = len(methods) * (len(tasks) * (random_steps + _whole_update_periods(learning_steps)) - 1)
    bar = tqdm(total=steps, unit="step", desc="bench continual", disable=not progress)
    rows = {}
    try:
        for method in methods:
            bar.set_postfix_str(method)
            rows[method] = continual_sac_rates(
                method, tasks, random_steps, learning_steps, eval_episodes, seed, bar.update
            )
    finally:
        bar.close()
    projected = {
        name: {m: project_run_hours(rows[m], n, per_task, every) for m in rows}
        for name, n, per_task, every in PROJECTIONS
    }
    return {
        "methods": rows,
        "projected_hours": projected,
        "machine": machine_info(("memrl", "torch", "metaworld", "mujoco")),
    }


def format_report(report: dict[str, Any]) -> str:
    """The rates as a table, then the projected hours per run."""
    lines = [
        f"{'method':<10} {'batch':>5} {'random steps/s':>15} {'learning steps/s':>17} "
        f"{'(later tasks)':>14} {'switch s':>9} {'eval s/episode':>15}"
    ]
    for method, row in report["methods"].items():
        learning = row["learning_steps_per_s"]
        later = learning["later_tasks"]
        switches = row["task_switch_seconds"]
        switch = f"{max(switches):.1f}" if switches else "-"  # multitask: one segment
        lines.append(
            f"{method:<10} {row['batch_size']:>5} {row['random_steps_per_s']:>15,.0f} "
            f"{learning['first_task']:>17.1f} {'-' if later is None else f'{later:.1f}':>14} "
            f"{switch:>9} {row['eval_seconds_per_episode']:>15.3f}"
        )
    lines.append("")
    lines.append("projected wall hours of one run (one method, one seed, one process):")
    for name, hours in report["projected_hours"].items():
        cells = ", ".join(f"{m} {h:,.1f}" for m, h in hours.items())
        lines.append(f"  {name}: {cells}")
    return "\n".join(lines)
