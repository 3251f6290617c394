"""Continual World's method comparison on a stream this machine can afford.

Three easy Meta-World v3 tasks in sequence (by default reach, button-press, window-open), every
method (finetune, l2, ewc, packnet, replay, multitask) with 3 seeds, plus single-task SAC
reference runs of every task and seed for forward transfer. Everything is Continual World's
recipe (`memrl.agents.continual`) except the budget: `--budget` steps per task (default 30,000)
instead of 1M, evaluations every `budget / 15` steps (2,000: Continual World's "last 5
evaluations" of a task then cover its last third).

Why these tasks: single-task SAC with this recipe but 5k random steps instead of 10k (then 50
updates every 50 steps), evaluated with 10 stochastic episodes at 5k/10k/15k/20k steps, measured
here:
reach 0 / 0 / 0.3 / 0.6, button-press 0 / 0 / 0.9 / 1.0, window-open 0 / 0 / 0.1 / 0.9; so each
is learnt well within 100k steps but not at once. drawer-close (0.2 under random actions, 1.0 from
10k on) was left out: its reference curve would be 1 at every evaluation, where Continual World's
forward transfer (AUC - AUC_ref) / (1 - AUC_ref) is undefined.

Finished runs are skipped and killed ones resumed, so the script can be re-run after an
interruption. `--archive DIR` keeps a study across machines and fresh checkouts: each finished
run's results (config.json, evaluations.json, metrics.csv; no checkpoints) are copied to DIR as it
finishes, and a run archived there is restored into `--out` instead of trained again (its config
must be the study's). The committed `assets/continual_study` holds the study of docs/RESULTS.md.
Results: OUT/report.md and OUT/report.json (P, F, FT with 90% bootstrap CIs over seeds, success
curves and retention heatmaps per method, average_success.png comparing the methods),
OUT/reference/reference_curves.json, and OUT/RESULTS_SECTION.md, a section for docs/RESULTS.md
(table, command, seeds, budget, machine, date, compute).

    python scripts/continual_study.py --dry-run                     # the plan, its cost, progress
    python scripts/continual_study.py --tiny --out /tmp/cw_tiny     # minutes: the whole pipeline
    python scripts/continual_study.py --out runs/continual_study --jobs 2 \\
        --archive assets/continual_study                            # the study, two runs at a time
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memrl.agents.checkpoints import CheckpointStore
from memrl.agents.continual import METHODS, ContinualConfig, EvaluationLog, train_continual
from memrl.agents.continual.trainer import learning_settings, saved_run_config
from memrl.bench.continual import project_run_hours
from memrl.eval.continual import evaluate_continual_runs
from memrl.eval.reference_curves import reference_config, train_reference_curves

TASKS = "reach-v3,button-press-v3,window-open-v3"
BENCH = str(Path(__file__).resolve().parents[1] / "docs" / "bench_continual.json")
"""Continual SAC's measured rates per method (`memrl bench continual --json`): the plan's cost."""
TINY: dict[str, Any] = dict(
    hidden_size=32, num_layers=2, start_steps=200, update_after=100, eval_episodes=2,
    packnet_retrain_steps=50, ewc_fisher_batches=2, ewc_fisher_batch_size=64,
)  # fmt: skip
"""--tiny: small nets, short exploration, few evaluation episodes (the pipeline, not a result)."""
RESULT_FILES = ("config.json", "evaluations.json", "metrics.csv")
"""What --archive keeps of a finished run: all that the report reads, and the losses."""


def base_config(args: argparse.Namespace) -> ContinualConfig:
    """The recipe shared by every run of the study."""
    config = ContinualConfig(
        stream="CW10",
        tasks=args.tasks,
        steps_per_task=args.budget,
        eval_every=report_eval_every(args),
        eval_episodes=args.eval_episodes,
        tensorboard=False,
        threads=1,
    )
    if args.tiny:
        config = dataclasses.replace(config, **TINY)
    config.checkpoint_every = config.eval_every
    return config


def run_one(config: ContinualConfig, run_dir: str, archived: str | None = None) -> str:
    """Train (or resume, or skip) one run, then archive it; returns a line for the log."""
    path = Path(run_dir)
    if is_finished(path):
        line = f"skipped {run_dir} (finished)"
    else:
        start = time.perf_counter()
        resume = CheckpointStore(path / "checkpoints").exists()
        train_continual(config, path, resume=resume, progress=False)
        line = f"trained {run_dir} in {(time.perf_counter() - start) / 60:.1f} min"
    if archived is not None and not is_finished(Path(archived)):
        copy_results(path, Path(archived))
        line += f", archived to {archived}"
    return line


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that trained its whole budget."""
    return (run_dir / "evaluations.json").exists() and EvaluationLog.load(run_dir).finished


def copy_results(source: Path, target: Path) -> None:
    """Copy a run's result files (no checkpoints) from ``source`` to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


def archived_dir(run_dir: str, out: str, archive: str | None) -> str | None:
    """Where ``run_dir`` (a run under ``out``) is kept in ``archive``; None without an archive."""
    if archive is None:
        return None
    return str(Path(archive) / Path(run_dir).relative_to(out))


def check_archived(config: ContinualConfig, archived: Path) -> None:
    """Refuse an archived run whose settings are not the study's (another budget, say)."""
    saved = json.loads((archived / "config.json").read_text())
    saved.pop("agent", None)
    saved_config = saved_run_config(saved)
    theirs = learning_settings(saved_config, with_seed=True)
    mine = learning_settings(config, with_seed=True)
    changed = [k for k in mine if theirs.get(k) != mine[k]]
    if changed:
        details = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine[k]!r} here" for k in changed)
        raise SystemExit(f"{archived} was trained with other settings than this study's "
                         f"({details}): give the study's options or another --archive")  # fmt: skip


def restore(runs: list[tuple[ContinualConfig, str]], out: str, archive: str) -> int:
    """Copy every archived finished run missing from ``out`` into it; returns how many.

    A run of ``out`` that is unfinished while its archive is finished is left alone and refused:
    one of the two is not the study's, and which one is for the user to say.
    """
    restored = 0
    for config, run_dir in runs:
        archived = Path(archive) / Path(run_dir).relative_to(out)
        if not is_finished(archived):
            continue
        check_archived(config, archived)
        if is_finished(Path(run_dir)):
            continue
        if (Path(run_dir) / "evaluations.json").exists():
            raise SystemExit(f"{run_dir} holds an unfinished run but {archived} a finished one: "
                             f"move one of them away")  # fmt: skip
        copy_results(archived, Path(run_dir))
        restored += 1
    return restored


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


def longest_first(
    runs: list[tuple[ContinualConfig, str]], rates: dict
) -> list[tuple[ContinualConfig, str]]:
    """Each seed's runs, longest first (the seeds keep their order).

    With --jobs, the short runs then fill in at the end instead of one long run finishing alone.
    """
    seeds = list(dict.fromkeys(config.seed for config, _ in runs))
    return sorted(runs, key=lambda run: (seeds.index(run[0].seed), -estimate_hours(run[0], rates)))


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


def run_progress(run_dir: str, archived: str | None = None) -> tuple[float, str]:
    """How much of a run is done, from its evaluation log: (fraction of its steps, status)."""
    if archived is not None and is_finished(Path(archived)) and not is_finished(Path(run_dir)):
        return 1.0, "finished, archived"
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
    """The evaluation period: ``--eval-every``, else a fifteenth of the budget."""
    return args.eval_every or max(args.budget // 15, 1)


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``."""

    def integer(text: str) -> int:  # argparse names it: "invalid integer value: 'x'"
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {text}")
        return value

    return integer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/continual_study", help="output directory")
    parser.add_argument("--tasks", default=TASKS, help="comma-separated Meta-World v3 tasks")
    parser.add_argument("--budget", type=_at_least(1), default=None,
                        help="env steps per task (default 30,000; 600 with --tiny)")  # fmt: skip
    parser.add_argument("--eval-every", type=_at_least(1), default=0,
                        help="env steps between evaluations; must divide the budget "
                             "(default: budget / 15)")  # fmt: skip
    parser.add_argument("--eval-episodes", type=_at_least(1), default=10,
                        help="episodes per task (default 10)")  # fmt: skip
    parser.add_argument("--seeds", type=_at_least(0), nargs="+", default=[0, 1, 2],
                        help="seeds of every method and reference (default 0 1 2)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        metavar="METHOD",
                        help=f"of {', '.join(METHODS)} (default: all)")  # fmt: skip
    parser.add_argument("--reference", default=None,
                        help="existing reference curves (JSON); default: train them")  # fmt: skip
    parser.add_argument("--jobs", type=_at_least(1), default=1,
                        help="runs in parallel (one per core; default 1)")  # fmt: skip
    parser.add_argument("--bench", default=BENCH, help="rates for the cost estimate")
    parser.add_argument("--archive", default=None,
                        help="keep finished runs' results here and restore them from here "
                             "(e.g. the committed assets/continual_study)")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="minutes: small nets, 600 steps")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan, its cost and each run's progress"
    )
    args = parser.parse_args()
    if args.budget is None:
        args.budget = 600 if args.tiny else 30_000
    if args.tiny:
        args.eval_episodes = min(args.eval_episodes, TINY["eval_episodes"])
    try:
        config = base_config(args)
        config.validate()
    except ValueError as error:  # a bad --tasks or --eval-every, in the config's own words
        parser.error(str(error))
    rates = load_rates(args.bench)
    runs = longest_first(plan(args, config), rates)
    estimates = [estimate_hours(c, rates) for c, _ in runs]
    archived = [archived_dir(run_dir, args.out, args.archive) for _, run_dir in runs]
    progress = [run_progress(run_dir, kept) for (_, run_dir), kept in
                zip(runs, archived, strict=True)]  # fmt: skip
    hours = sum(estimates)
    left = sum(h * (1 - done) for h, (done, _) in zip(estimates, progress, strict=True))
    finished = sum(status.startswith("finished") for _, status in progress)
    print(f"{len(runs)} runs on {config.build_stream().name}; expected {hours:.1f} h on one core "
          f"at the rates of {args.bench} ({hours / max(args.jobs, 1):.1f} h with --jobs "
          f"{args.jobs}); {finished} finished, about {left:.1f} h left")  # fmt: skip
    for (run_config, run_dir), estimate, (_, status) in zip(runs, estimates, progress, strict=True):
        what = "single-task reference" if "/reference/" in run_dir else run_config.method
        print(f"  {run_dir}: {what}, seed {run_config.seed}, {estimate:.2f} h [{status}]")
    if args.dry_run:
        return
    if args.archive is not None:
        print(f"restored {restore(runs, args.out, args.archive)} finished runs from {args.archive}")

    start = time.perf_counter()
    if args.jobs > 1:
        from memrl.agents.worker_pool import worker_pool

        with worker_pool(args.jobs) as pool:
            for line in pool.map(run_one, *zip(*runs, strict=True), archived):
                print(line, flush=True)
    else:
        for (run_config, run_dir), kept in zip(runs, archived, strict=True):
            print(run_one(run_config, run_dir, kept), flush=True)

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
    try:
        main()
    except BrokenPipeError:  # `--dry-run | head`: stop quietly, as the memrl command does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
