"""L2M's pre-training data: Meta-World scripted-expert datasets and dm_control SAC replay buffers.

Three steps, each resumable, all output under `--out` (default runs/l2m_data):

1. Meta-World: `memrl data collect --tasks MT50` into OUT/datasets (one Minari dataset per task,
   memrl/metaworld/<task>/scripted-v0; complete tasks are skipped, a half-written one redone).
2. dm_control: no scripted experts exist, so as L2M did, single-task SAC (memrl's continual SAC,
   Continual World's recipe, `--method finetune` on one task) trains on each task for
   `--steps-per-task` env steps (default 100,000), each run in OUT/dmc_sac/<task>, or in
   DIR/<task> with `--dmc-runs DIR` (which adopts runs started by hand, e.g. by
   `memrl train --stream DMC6 --tasks cartpole-balance --method finetune --steps-per-task 100000
   --eval-every 10000 --eval-episodes 5 --threads 1 --out DIR/cartpole-balance`). A finished run
   is skipped, a killed one resumed from its checkpoint, a run another process is training is
   left to it (and exported when the script runs again after it finished).
3. Each finished run's whole replay buffer becomes the dataset
   memrl/dm_control/<task>/sac-replay-v0 in OUT/datasets (`memrl.agents.continual.replay_export`).

Then OUT/l2m_data.json (small, for docs/RESULTS.md) says which tasks, the budget and the returns
reached. Datasets are not committed: regenerating takes about 27 min for MT50 (1M steps at about
620 steps/s) and, per dm_control task, 100,000 steps of SAC at about 40 learning steps/s on one
unloaded core (about 42 min; several times longer on a loaded machine), exports a few seconds.
`--dry-run` prints what is left and its cost at `--sac-rate` and `--collect-rate`, and each run's
own rate so far (`charts/sps` of its metrics.csv). `--jobs 2` runs two of these jobs at a time
(the collection and the SAC runs), one per core.

    python scripts/l2m_data.py --dry-run --dmc-runs runs/dmc_sac   # what is left, how long
    python scripts/l2m_data.py --out runs/l2m_data --dmc-runs runs/dmc_sac --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memrl.agents.checkpoints import CheckpointStore, NoIntactCheckpointError
from memrl.agents.continual import ContinualConfig, train_continual
from memrl.agents.continual.replay_export import export_sac_replay, sac_replay_dataset_id
from memrl.agents.continual.trainer import learning_settings, saved_run_config
from memrl.agents.run_lock import LOCK_FILE, RunInUseError
from memrl.data import (
    DEFAULT_EPISODES_PER_TASK,
    collect_metaworld,
    metaworld_dataset_id,
    resolve_metaworld_tasks,
)
from memrl.data.minari_io import completed_metadata
from memrl.envs.metaworld import EPISODE_LENGTH as METAWORLD_EPISODE_LENGTH
from memrl.streams.catalogue import DMC16

DMC_TASKS = "cartpole-balance,point_mass-easy,walker-stand,reacher-hard"
"""Four of L2M's ten dm_control pre-training tasks (one, two, six and two action dimensions)."""
SAC_RATE = 40.0
"""Env steps per second of one SAC process (measured here: 35-45 learning steps/s, unloaded)."""
COLLECT_RATE = 620.0
"""Env steps per second of Meta-World scripted collection (measured here, one process)."""


def sac_config(task: str, args: argparse.Namespace) -> ContinualConfig:
    """The SAC run of ``task``: what `memrl train --stream DMC6 --tasks TASK` trains."""
    return ContinualConfig(
        stream="DMC6",
        tasks=task,
        method="finetune",
        steps_per_task=args.steps_per_task,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        threads=1,
    )


@dataclass(frozen=True)
class RunState:
    """What to do with a run directory.

    Attributes:
        action: "start" (nothing there), "restart" (killed before its first checkpoint: trained
            again from step 0), "resume" (from its checkpoint), "finished", "busy" (another
            process trains it), "refused" (another config, or no intact checkpoint).
        step: Env steps its checkpoint holds.
        detail: Why, for the progress lines.
    """

    action: str
    step: int = 0
    detail: str = ""

    @property
    def trains(self) -> bool:
        """Whether this script trains the run."""
        return self.action in ("start", "restart", "resume")


def lock_holder(run_dir: Path) -> int | None:
    """The pid of a live process holding the run's lock (read-only: the lock is not touched)."""
    try:
        text = (run_dir / LOCK_FILE).read_text().split()
        pid = int(text[1])
    except (OSError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a killed trainer's stale lock file
    except PermissionError:
        pass  # alive, another user's
    return pid


def run_state(run_dir: Path, config: ContinualConfig) -> RunState:
    """Whether to start, restart, resume or leave ``run_dir`` (its checkpoint decides)."""
    total = config.build_stream().timeline.total_steps
    store = CheckpointStore(run_dir / "checkpoints")
    step = 0
    if store.exists():
        try:
            _, payload = store.load(required=("config", "global_step"))
        except NoIntactCheckpointError as error:  # the trainer could not resume it either
            return RunState("refused", 0, str(error))
        theirs = learning_settings(saved_run_config(payload["config"]), with_seed=True)
        mine = learning_settings(config, with_seed=True)
        changed = [key for key in mine if theirs.get(key) != mine[key]]
        step = int(payload["global_step"])
        if changed:
            details = ", ".join(f"{k} {theirs.get(k)!r} there, {mine[k]!r} here" for k in changed)
            return RunState("refused", step, f"trained with other settings ({details})")
        if step >= total:
            return RunState("finished", step)
    holder = lock_holder(run_dir)
    if holder is not None:
        return RunState("busy", step, f"being trained by pid {holder}")
    if store.exists():
        return RunState("resume", step)
    if (run_dir / "config.json").exists():
        return RunState("restart", 0, "killed before its first checkpoint")
    return RunState("start")


def observed_rate(run_dir: Path) -> float | None:
    """The run's own env steps per second so far (its last ``charts/sps``), if it logged one."""
    try:
        with (run_dir / "metrics.csv").open() as file:
            rates = [row["charts/sps"] for row in csv.DictReader(file) if row.get("charts/sps")]
    except (OSError, KeyError):
        return None
    return float(rates[-1]) if rates else None


def export_state(datasets: Path, task: str, total: int) -> str:
    """ "exported", "stale" (exported before the run finished) or "to do"."""
    found = completed_metadata(datasets / sac_replay_dataset_id(task))
    if found is None:
        return "to do"
    return "exported" if found.get("steps", 0) >= total else "stale"


def train_and_export(
    config: ContinualConfig, run_dir: str, datasets: str, progress: bool = False
) -> str:
    """Train (start, resume, or skip) one task's run, then export its buffer; a line for the log."""
    path, task = Path(run_dir), config.tasks
    state = run_state(path, config)
    start = time.perf_counter()
    line = f"{task}: "
    if state.trains:
        try:
            train_continual(config, path, resume=state.action != "start", progress=progress)
        except RunInUseError as error:
            return line + f"not trained: {error}"
        minutes = (time.perf_counter() - start) / 60
        line += f"trained from step {state.step} ({state.action}) in {minutes:.1f} min"
    elif state.action != "finished":
        return line + f"left alone ({state.detail})"
    else:
        line += "finished before"
    total = config.build_stream().timeline.total_steps
    exported = export_state(Path(datasets), task, total)
    if exported == "to do":
        dataset = export_sac_replay(path, datasets)
        return line + f"; exported to {dataset}"
    if exported == "stale":
        return line + f"; {Path(datasets) / sac_replay_dataset_id(task)} holds an export of the "
        "unfinished run: delete it and run again to export the finished one"
    return line + "; exported before"


def collect(tasks: list[str], datasets: str, episodes_per_task: int, progress: bool = False) -> str:
    """Collect the Meta-World datasets (complete ones are skipped); a line for the log."""
    start = time.perf_counter()
    paths = collect_metaworld(
        tasks, datasets, episodes_per_task=episodes_per_task, progress=progress
    )
    minutes = (time.perf_counter() - start) / 60
    return f"Meta-World: {len(paths)} datasets under {datasets} ({minutes:.1f} min)"


def makespan(hours: list[float], jobs: int) -> float:
    """Wall hours of jobs taken in order by ``jobs`` workers, each taking the next when free."""
    workers = [0.0] * jobs
    for job in hours:
        workers[workers.index(min(workers))] += job
    return max(workers)


def summary(
    args: argparse.Namespace, runs: dict[str, Path], metaworld: list[str]
) -> dict[str, Any]:
    """Tasks, budget, returns reached and datasets: OUT/l2m_data.json."""
    datasets = Path(args.out) / "datasets"
    dm_control = {}
    for task, run_dir in runs.items():
        found = completed_metadata(datasets / sac_replay_dataset_id(task))
        if found is None:
            dm_control[task] = {"run": str(run_dir), "exported": False}
            continue
        evaluations = found["evaluations"]
        dm_control[task] = {
            "run": str(run_dir),
            "exported": True,
            "steps": found["steps"],
            "transitions": found["transitions"],
            "episodes": found["episodes"],
            "final_return": evaluations["returns"][-1],
            "best_return": max(evaluations["returns"]),
            "initial_return": evaluations["initial_return"],
            "evaluation": f"{evaluations['episodes']} stochastic episodes every "
            f"{args.eval_every} steps",
        }
    complete = [t for t in metaworld if completed_metadata(datasets / metaworld_dataset_id(t))]
    return {
        "command": "python scripts/l2m_data.py " + " ".join(sys.argv[1:]),
        "datasets": str(datasets),
        "metaworld": {
            "tasks": len(metaworld),
            "complete": len(complete),
            "episodes_per_task": args.metaworld_episodes,
        },  # fmt: skip
        "dm_control": {
            "steps_per_task": args.steps_per_task,
            "method": "finetune (single task)",
            "tasks": dm_control,
        },  # fmt: skip
    }


def plan_lines(
    args: argparse.Namespace,
    configs: dict[str, ContinualConfig],
    runs: dict[str, Path],
    metaworld: list[str],
) -> list[str]:
    """What is done and left, with the time it takes (the --dry-run report)."""
    datasets = Path(args.out) / "datasets"
    left = [t for t in metaworld if completed_metadata(datasets / metaworld_dataset_id(t)) is None]
    collect_steps = len(left) * args.metaworld_episodes * METAWORLD_EPISODE_LENGTH
    collect_hours = collect_steps / args.collect_rate / 3600
    lines = [
        f"L2M pre-training data under {args.out} (datasets in {datasets})",
        f"Meta-World: {len(metaworld)} tasks x {args.metaworld_episodes} scripted episodes, "
        f"{len(metaworld) - len(left)} done, {len(left)} left: {collect_steps:,} steps, about "
        f"{collect_hours * 60:.0f} min at {args.collect_rate:g} steps/s",
        f"dm_control: single-task SAC, {args.steps_per_task:,} steps per task:",
    ]
    job_hours = [collect_hours] if left else []
    at_own_rate, sac_steps = 0.0, 0
    for task, run_dir in runs.items():
        config = configs[task]
        total = config.build_stream().timeline.total_steps
        state = run_state(run_dir, config)
        steps_left = 0 if state.action in ("finished", "refused") else total - state.step
        hours = steps_left / args.sac_rate / 3600
        own = observed_rate(run_dir)
        at_own_rate += steps_left / (own or args.sac_rate) / 3600
        sac_steps += steps_left
        if state.trains:
            job_hours.append(hours)
        rate = f", {own:.1f} steps/s so far" if own else ""
        detail = f", {state.detail}" if state.detail else ""
        lines.append(
            f"  {task}: {run_dir} at step {state.step:,} of {total:,} [{state.action}{detail}]; "
            f"{steps_left:,} steps left, about {hours:.2f} h{rate}; "
            f"export {export_state(datasets, task, total)}"
        )
    lines.append(
        f"left for this script: about {sum(job_hours):.1f} h in one process, "
        f"{makespan(job_hours, 2):.1f} h with --jobs 2 (at --sac-rate {args.sac_rate:g}); "
        f"the SAC runs' {sac_steps:,} steps left take {at_own_rate:.1f} h at each run's own "
        "rate so far (--sac-rate for a run without one)"
    )
    return lines


def _task_names(text: str) -> list[str]:
    """An argparse type: comma-separated dm_control tasks of L2M."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in DMC16]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"must be dm_control tasks of L2M among {list(DMC16)}, got {unknown or text!r}"
        )
    return names


def _metaworld_tasks(text: str) -> list[str]:
    """An argparse type: Meta-World tasks or lists (MT50, MT40, CW10), or "none"."""
    if text == "none":
        return []
    try:
        return resolve_metaworld_tasks([t.strip() for t in text.split(",") if t.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(kind: type) -> Any:
    """An argparse type: a number of ``kind`` > 0."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--out", default="runs/l2m_data",
        help="output directory: OUT/datasets, OUT/dmc_sac, OUT/l2m_data.json "
             "(default runs/l2m_data)")  # fmt: skip
    add("--tasks", type=_task_names, default=_task_names(DMC_TASKS), metavar="A,B,...",
        help=f"dm_control tasks to train SAC on (default {DMC_TASKS})")  # fmt: skip
    add("--steps-per-task", type=_positive(int), default=100_000,
        help="SAC env steps per dm_control task (default 100,000)")  # fmt: skip
    add("--eval-every", type=_positive(int), default=10_000,
        help="SAC evaluation period in env steps; must divide --steps-per-task "
             "(default 10,000)")  # fmt: skip
    add("--eval-episodes", type=_positive(int), default=5,
        help="episodes per SAC evaluation (default 5)")  # fmt: skip
    add("--dmc-runs", default=None, metavar="DIR",
        help="SAC run directories, one per task named by the task, adopted if there "
             "(default OUT/dmc_sac)")  # fmt: skip
    add("--metaworld-tasks", type=_metaworld_tasks, default=_metaworld_tasks("MT50"),
        metavar="A,B,...",
        help="Meta-World tasks or lists (MT50, MT40, CW10) to collect, or none "
             "(default MT50)")  # fmt: skip
    add("--metaworld-episodes", type=_positive(int), default=DEFAULT_EPISODES_PER_TASK,
        help="scripted episodes per Meta-World task (default %(default)s)")  # fmt: skip
    add("--jobs", type=int, choices=(1, 2), default=1,
        help="processes at a time, one per core (default 1)")  # fmt: skip
    add("--sac-rate", type=_positive(float), default=SAC_RATE,
        help="SAC env steps/s for the estimate (default %(default)s)")  # fmt: skip
    add("--collect-rate", type=_positive(float), default=COLLECT_RATE,
        help="Meta-World collection steps/s for the estimate (default %(default)s)")  # fmt: skip
    add("--dry-run", action="store_true",
        help="print what is done and left and how long it takes; change nothing")  # fmt: skip
    args = parser.parse_args(argv)
    if args.steps_per_task % args.eval_every:
        parser.error(
            f"--eval-every must divide --steps-per-task ({args.steps_per_task}), got "
            f"{args.eval_every}"
        )
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    runs_root = Path(args.dmc_runs) if args.dmc_runs else Path(args.out) / "dmc_sac"
    runs = {task: runs_root / task for task in args.tasks}
    configs = {task: sac_config(task, args) for task in args.tasks}
    print("\n".join(plan_lines(args, configs, runs, args.metaworld_tasks)), flush=True)
    if args.dry_run:
        return

    datasets = str(Path(args.out) / "datasets")
    progress = args.jobs == 1  # one progress bar at a time
    jobs: list[tuple[Any, tuple]] = []
    if args.metaworld_tasks:
        metaworld = (args.metaworld_tasks, datasets, args.metaworld_episodes, progress)
        jobs.append((collect, metaworld))
    jobs += [(train_and_export, (configs[t], str(runs[t]), datasets, progress)) for t in args.tasks]
    if args.jobs > 1:
        spawn = multiprocessing.get_context("spawn")  # no fork after torch's threads start
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
            futures = [pool.submit(function, *job_args) for function, job_args in jobs]
            for future in futures:
                print(future.result(), flush=True)
    else:
        for function, job_args in jobs:
            print(function(*job_args), flush=True)

    report = summary(args, runs, args.metaworld_tasks)
    path = Path(args.out) / "l2m_data.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # `--dry-run | head`: stop quietly, as the memrl command does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
