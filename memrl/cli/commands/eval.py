"""``memrl eval``: evaluate a trained run, or make Continual World's table of continual runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memrl.cli.arguments import existing_file, integer, positive_int
from memrl.cli.run_dir import is_continual_run


def add_parser(subparsers: Any) -> None:
    """Add ``memrl eval`` to the command's subparsers."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a trained run (success per level, recall vs delay, per question type), "
        "or continual runs (Continual World's metrics table)",
        description="Evaluate the agent of a run directory: on Ballet every paper level, on "
        "DelayedMatch recall vs delay (16..4096), on RoomBallet accuracy per question type, "
        "otherwise success on the training env. For continual runs (memrl train --stream, "
        "continual SAC or --offline fine-tuning of the pretrained model): Continual World's "
        "average performance, forgetting and forward transfer from the evaluations logged "
        "during training, per-task tables, the retention matrix, held-out tasks and, for "
        "offline runs, the retention of pretraining skill (success on the pretraining tasks "
        "after the last task / the frozen model's), success curves and the retention heatmap; "
        "several continual runs (methods x seeds) make one table, a row per method with 90% "
        "bootstrap intervals over its seeds. Writes report.md, report.json and plots into --out "
        "DIR (default: RUN_DIR; several runs need --out), after checking that it can write "
        "there.",
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a directory written by memrl train; or several continual runs of one stream "
        "and budget",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="where the report goes, created if missing (default: RUN_DIR; required for several "
        "continual runs); nothing is written anywhere else",
    )
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help="episodes per condition (default 200; not for continual runs, which are scored "
        "from their training evaluations)",
    )
    p.add_argument(
        "--seed",
        type=integer,
        default=None,
        help="seed of the evaluation episodes (default 10000; not for continual runs)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="act greedily (the most likely action) instead of sampling; the measure of answer "
        "accuracy for runs trained with --objective supervised (not for continual runs, whose "
        "evaluation mode is --eval-deterministic at training)",
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        type=existing_file,
        help="continual runs: single-task reference curves (JSON) for forward transfer "
        "(default for continual SAC, in a source checkout: "
        "assets/reference_curves/sac-<steps_per_task>.json when it exists; offline runs have "
        "none by default)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the run (or continual runs) and write the report into ``--out``.

    Raises:
        FileNotFoundError: A run directory does not exist.
        ValueError: Options that do not fit the runs, or an output directory that cannot be
            written (found before anything is evaluated).
    """
    missing = [run_dir for run_dir in args.run_dirs if not Path(run_dir).is_dir()]
    if missing:
        raise FileNotFoundError(f"no such run directory: {', '.join(missing)}")
    continual = [is_continual_run(run_dir) for run_dir in args.run_dirs]
    if len(args.run_dirs) > 1 and not all(continual):
        others = [d for d, c in zip(args.run_dirs, continual, strict=True) if not c]
        raise ValueError(
            f"several run directories make one table of continual runs (memrl train --stream) "
            f"only; {others} {'is not one' if len(others) == 1 else 'are not'}: evaluate a "
            "memory run on its own"
        )
    if all(continual):
        return _eval_continual(args)
    if args.reference is not None:
        raise ValueError("--reference applies to continual runs (trained with --stream) only")
    (run_dir,) = args.run_dirs
    out = _output_directory(args)
    from memrl.agents.loading import load_agent
    from memrl.eval.evaluate import evaluate_run

    agent, info = load_agent(run_dir)
    episodes = 200 if args.episodes is None else args.episodes
    seed = 10_000 if args.seed is None else args.seed
    report = evaluate_run(agent, info, run_dir, episodes=episodes, seed=seed,
                          deterministic=args.deterministic, out_dir=out)  # fmt: skip
    for row in report["results"]:
        print(f"{row['label']:<28} success {row['success_rate']:.3f}")
    print(f"wrote {out / 'report.md'} and report.json")
    return 0


def _eval_continual(args: argparse.Namespace) -> int:
    """Continual World's table of one continual run, or of several (methods x seeds)."""
    wrong = [flag for flag, given in (("--deterministic", args.deterministic),
             ("--episodes", args.episodes is not None), ("--seed", args.seed is not None))
             if given]  # fmt: skip
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} cannot be used with continual runs: their report is made "
            "from the evaluations logged during training (--eval-episodes, "
            "--eval-deterministic of memrl train)"
        )
    if len(args.run_dirs) > 1 and args.out is None:
        raise ValueError(
            "several run directories need --out DIR for their joint report (it is written "
            "into none of the runs)"
        )
    out = _output_directory(args)
    from memrl.eval.continual import evaluate_continual_runs

    report = evaluate_continual_runs(args.run_dirs, reference=args.reference, out_dir=out)
    print(report["details"]["table"])
    for note in report["notes"]:
        print(f"- {note}")
    for heading, table in report["details"]["per_task_tables"].items():
        print(f"\n{heading}:\n{table}")
    print(f"\nwrote {out / 'report.md'} and report.json")
    return 0


def _output_directory(args: argparse.Namespace) -> Path:
    """``--out`` (default: the run directory), created and checked to take files.

    Raises:
        ValueError: A report cannot be written there.
    """
    from memrl.eval.report import writable_directory

    try:
        return writable_directory(args.out if args.out is not None else args.run_dirs[0])
    except ValueError as error:
        hint = "" if args.out is not None else "; give --out DIR to write the report elsewhere"
        raise ValueError(f"{error}{hint}") from None
