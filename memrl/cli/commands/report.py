"""``memrl report RUN_DIRS...|SWEEP_DIR``: one table and plots across runs and seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memrl.cli.arguments import existing_file, positive_int


def add_parser(subparsers: Any) -> None:
    """Add ``memrl report`` to the command's subparsers."""
    p = subparsers.add_parser(
        "report",
        help="one table and plots for many runs (a sweep, a study, any mix), aggregated over "
        "seeds with rliable",
        description="Finds every run directory (a directory with config.json) among the paths "
        "given or under them (a sweep directory, a study's output, an archive), groups the "
        "runs by their config.json into studies (same env or stream, budget and conditions) "
        "and groups (the seeds of one agent or method and setting), and aggregates each group "
        "over its seeds with rliable: the interquartile mean (IQM) and the mean with 95% "
        "stratified bootstrap intervals, and performance profiles. Memory runs are scored by "
        "their `memrl eval` report (each level, delay or question type; recall vs delay where "
        "evaluated at several delays), else by their training success (the last 10% of logged "
        "updates). Continual runs are scored by each task's success at the end, and get "
        "Continual World's table (average performance, forgetting, forward transfer with 90% "
        "bootstrap intervals over seeds) as `memrl eval` makes it; single-task fine-tuning "
        "runs of a study's tasks with its budget are its reference curves for forward "
        "transfer. Writes report.md, report.json and PNG plots into --out.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="run directories, sweep directories (memrl sweep --out) or directories holding runs",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where the report goes (default: SWEEP_DIR/report for one sweep directory, else "
        "./report)",
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        type=existing_file,
        help="single-task reference curves (JSON) for continual runs' forward transfer "
        "(default: the reference runs among the runs, else "
        "assets/reference_curves/sac-<steps_per_task>.json)",
    )
    p.add_argument(
        "--reps",
        type=positive_int,
        default=None,
        help="bootstrap resamples (default 2000)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report of the runs at or under the paths and print its table."""
    from memrl.eval.aggregate import BOOTSTRAP_REPS
    from memrl.eval.report import writable_directory
    from memrl.eval.runs_report import report_runs

    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:
        raise FileNotFoundError(f"no such run or directory: {', '.join(missing)}")
    out = writable_directory(args.out or _default_out(args.paths))
    report = report_runs(
        args.paths, out, reference=args.reference, reps=args.reps or BOOTSTRAP_REPS
    )
    print((out / "report.md").read_text().split("\n## ")[0].rstrip())
    print(f"\nwrote {out / 'report.md'}, report.json and {len(report['plots'])} plots")
    return 0


def _default_out(paths: list[str]) -> Path:
    """``SWEEP_DIR/report`` for one sweep directory, else ``./report``."""
    from memrl.sweep.runner import SUMMARY_FILE

    if len(paths) == 1 and (Path(paths[0]) / SUMMARY_FILE).is_file():
        return Path(paths[0]) / "report"
    return Path("report")
