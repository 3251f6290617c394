"""Continual World's method comparison on a stream this machine can afford.

Three easy Meta-World v3 tasks in sequence (by default reach, button-press, window-open), every
method (finetune, l2, ewc, packnet,
replay, multitask) with 3 seeds, plus single-task SAC reference runs of every task and seed for
forward transfer. Everything is Continual World's recipe (`memrl.agents.continual`) except the
budget: `--budget` steps per task (default 50,000) instead of 1M, evaluations every `budget / 10`
steps.

Why these tasks: single-task SAC with this recipe but 5k random steps instead of 10k (then 50
updates every 50 steps), evaluated with 10 stochastic episodes at 5k/10k/15k/20k steps, measured
here:
reach 0 / 0 / 0.3 / 0.6, button-press 0 / 0 / 0.9 / 1.0, window-open 0 / 0 / 0.1 / 0.9; so each
is learnt well within 100k steps but not at once. drawer-close (0.2 under random actions, 1.0 from
10k on) was left out: its reference curve would be 1 at every evaluation, where Continual World's
forward transfer (AUC - AUC_ref) / (1 - AUC_ref) is undefined.

Finished runs are skipped and killed ones resumed, so the script can be re-run after an
interruption. Results: OUT/report.md and OUT/report.json (P, F, FT with 90% bootstrap CIs over
seeds, success curves and retention heatmaps per method), OUT/reference/reference_curves.json,
and OUT/RESULTS_SECTION.md, a section for docs/RESULTS.md (table, command, seeds, budget,
machine, date, wall time).

    python scripts/continual_study.py --dry-run                     # the plan, its cost, progress
    python scripts/continual_study.py --tiny --out /tmp/cw_tiny     # minutes: the whole pipeline
    python scripts/continual_study.py --out runs/continual_study    # the study (see --dry-run)
    python scripts/continual_study.py --out runs/continual_study --jobs 2   # two runs at a time
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from memrl.agents.continual import (
    METHODS,
    ContinualConfig,
    EvaluationLog,
    evaluate_continual_runs,
    train_continual,
    train_reference_curves,
)
from memrl.agents.continual.reference import reference_config
from memrl.bench.continual import project_run_hours

TASKS = "reach-v3,button-press-v3,window-open-v3"
BENCH = str(Path(__file__).resolve().parents[1] / "docs" / "bench_continual.json")
"""Continual SAC's measured rates per method (`memrl bench continual --json`): the plan's cost."""
TINY: dict[str, Any] = dict(
    hidden_size=32, num_layers=2, start_steps=200, update_after=100, eval_episodes=2,
    packnet_retrain_steps=50, ewc_fisher_batches=2, ewc_fisher_batch_size=64,
)  # fmt: skip
"""--tiny: small nets, short exploration, few evaluation episodes (the pipeline, not a result)."""


def base_config(args: argparse.Namespace) -> ContinualConfig:
    """The recipe shared by every run of the study."""
    config = ContinualConfig(
        stream="CW10",
        tasks=args.tasks,
        steps_per_task=args.budget,
        eval_every=args.eval_every or max(args.budget // 10, 1),
        eval_episodes=args.eval_episodes,
        tensorboard=False,
        threads=1,
    )
    if args.tiny:
        config = dataclasses.replace(config, **TINY)
    config.checkpoint_every = config.eval_every
    return config


def run_one(config: ContinualConfig, run_dir: str) -> str:
    """Train (or resume, or skip) one run; returns a line for the log."""
    path = Path(run_dir)
    if (path / "evaluations.json").exists() and EvaluationLog.load(path).finished:
        return f"skipped {run_dir} (finished)"
    start = time.perf_counter()
    resume = (path / "checkpoints" / "latest.pt").exists()
    train_continual(config, path, resume=resume, progress=False)
    return f"trained {run_dir} in {(time.perf_counter() - start) / 60:.1f} min"


def plan(args: argparse.Namespace, config: ContinualConfig) -> list[tuple[ContinualConfig, str]]:
    """Every run of the study, (config, run directory), seed by seed.

    Each seed's block holds every method and (unless given) every task's single-task reference,
    so an interrupted study has whole seeds to report rather than whole methods.
    """
    out = Path(args.out)
    runs = []
    for seed in args.seeds:
        for method in args.methods:
            run_config = dataclasses.replace(config, method=method, seed=seed)
            runs.append((run_config, str(out / method / f"seed{seed}")))
        if not args.reference:
            for task in config.task_list():
                run_dir = out / "reference" / task / f"seed{seed}"
                runs.append((reference_config(config, task, seed), str(run_dir)))
    return runs


def estimate_hours(config: ContinualConfig, rates: dict) -> float:
    """Expected hours of one run from the measured rates of its method (`memrl bench continual`)."""
    stream = config.build_stream()
    return project_run_hours(
        rates[config.method],
        num_tasks=len(stream.timeline.stages),
        evaluated_tasks=len(stream.layout_tasks),
        steps_per_task=stream.steps_per_task,
        eval_every=config.eval_every,
        eval_episodes=config.eval_episodes,
        random_steps=config.update_after,
        retrain_steps=config.packnet_retrain_steps,
    )


def run_progress(run_dir: str) -> tuple[float, str]:
    """How much of a run is done, from its evaluation log: (fraction of its steps, status)."""
    path = Path(run_dir) / "evaluations.json"
    if not path.exists():
        return 0.0, "not started"
    log = EvaluationLog.load(path)
    if log.finished:
        return 1.0, "finished"
    step = log.steps[-1] if log.steps else 0
    return step / log.total_steps, f"at step {step} of {log.total_steps}"


def load_rates(path: str) -> dict:
    """The per-method rates of a `memrl bench continual --json` file."""
    if not Path(path).exists():
        raise SystemExit(f"--bench {path} does not exist: make it with "
                         f"`memrl bench continual --json {path}`")  # fmt: skip
    return json.loads(Path(path).read_text())["methods"]


def results_section(args: argparse.Namespace, report: dict, projected_hours: float) -> str:
    """A section for docs/RESULTS.md: the table with its command, seeds, budget, machine, date.

    The cost given is the plan's projection from measured rates, not this invocation's wall time:
    a study resumed across sessions (or re-run to collect finished runs) has no single wall time.
    """
    from memrl.bench.machine import machine_info

    machine = machine_info(("memrl", "torch", "metaworld", "mujoco"))
    command = "python scripts/continual_study.py " + " ".join(sys.argv[1:])
    tasks = ", ".join(args.tasks.split(","))
    lines = [
        f"## Continual SAC on {tasks} ({args.budget:,} steps per task)",
        "",
        report["details"]["table"],
        "",
        f"Average performance (P), forgetting (F) and forward transfer (FT) as Continual World "
        f"defines them, mean over seeds {args.seeds} with 90% bootstrap intervals. FT is against "
        f"single-task SAC trained with the same budget and seeds. Multi-task trains all tasks "
        f"interleaved for the whole budget: only its P is meaningful.",
        "",
        f"- Command: `{command}`",
        f"- Budget: {args.budget:,} env steps per task, evaluation every "
        f"{report_eval_every(args):,} steps, {args.eval_episodes} stochastic episodes per task",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), torch "
        f"{machine['packages']['torch']}, metaworld {machine['packages']['metaworld']}",
        f"- Date: {machine['date'][:10]}; compute about {projected_hours:.1f} core-hours "
        f"(projected from the rates of `memrl bench continual`, {Path(args.bench).name})",
        f"- {report['details']['reference']}",
    ]
    for heading, table in report["details"]["per_task_tables"].items():
        lines += ["", f"#### {heading}", "", table]
    if args.tiny:
        lines.insert(2, "**Tiny mode: a pipeline check, not a result.**\n")
    return "\n".join(lines) + "\n"


def report_eval_every(args: argparse.Namespace) -> int:
    return args.eval_every or max(args.budget // 10, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/continual_study", help="output directory")
    parser.add_argument("--tasks", default=TASKS, help="comma-separated Meta-World v3 tasks")
    parser.add_argument("--budget", type=int, default=None,
                        help="env steps per task (default 50,000; 600 with --tiny)")  # fmt: skip
    parser.add_argument("--eval-every", type=int, default=0, help="default: budget / 10")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per task")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--reference", default=None,
                        help="existing reference curves (JSON); default: train them")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one per core)")
    parser.add_argument("--bench", default=BENCH, help="rates for the cost estimate")
    parser.add_argument("--tiny", action="store_true", help="minutes: small nets, 600 steps")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan, its cost and each run's progress"
    )
    args = parser.parse_args()
    if args.budget is None:
        args.budget = 600 if args.tiny else 50_000
    if args.tiny:
        args.eval_episodes = min(args.eval_episodes, TINY["eval_episodes"])
    config = base_config(args)
    config.validate()
    runs = plan(args, config)

    rates = load_rates(args.bench)
    estimates = [estimate_hours(c, rates) for c, _ in runs]
    progress = [run_progress(run_dir) for _, run_dir in runs]
    hours = sum(estimates)
    left = sum(h * (1 - done) for h, (done, _) in zip(estimates, progress, strict=True))
    finished = sum(status == "finished" for _, status in progress)
    print(f"{len(runs)} runs on {config.build_stream().name}; expected {hours:.1f} h on one core "
          f"at the rates of {args.bench} ({hours / max(args.jobs, 1):.1f} h with --jobs "
          f"{args.jobs}); {finished} finished, about {left:.1f} h left")  # fmt: skip
    for (run_config, run_dir), estimate, (_, status) in zip(runs, estimates, progress, strict=True):
        what = "single-task reference" if "/reference/" in run_dir else run_config.method
        print(f"  {run_dir}: {what}, seed {run_config.seed}, {estimate:.2f} h [{status}]")
    if args.dry_run:
        return

    start = time.perf_counter()
    if args.jobs > 1:
        spawn = multiprocessing.get_context("spawn")  # no fork after torch's threads start
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
            for line in pool.map(run_one, *zip(*runs, strict=True)):
                print(line, flush=True)
    else:
        for run_config, run_dir in runs:
            print(run_one(run_config, run_dir), flush=True)

    reference = args.reference
    if reference is None:  # the reference runs are done: collect their curves
        reference = train_reference_curves(
            config.task_list(), config, Path(args.out) / "reference", args.seeds, progress=False
        )
    continual_runs = [run_dir for _, run_dir in runs if "/reference/" not in run_dir]
    report = evaluate_continual_runs(continual_runs, reference=reference, out_dir=args.out)
    print(f"this invocation: {(time.perf_counter() - start) / 3600:.1f} h")
    section = results_section(args, report, hours)
    (Path(args.out) / "RESULTS_SECTION.md").write_text(section)
    print(section)
    print(f"wrote {args.out}/report.md, report.json and RESULTS_SECTION.md")


if __name__ == "__main__":
    main()
