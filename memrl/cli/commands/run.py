"""``memrl run JOB``: named jobs (``demo``, the showcase)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memrl.cli.arguments import integer, non_negative_int, positive_int


def add_parser(subparsers: Any) -> None:
    """Add ``memrl run`` and its jobs to the command's subparsers."""
    p = subparsers.add_parser("run", help="run a named job")
    jobs = p.add_subparsers(dest="job", required=True, metavar="JOB")
    d = jobs.add_parser(
        "demo",
        help="oracle vs memory-free on every memory env; HCAM vs LSTM trained on recall",
        description="For every memory env, run an oracle that is told what to remember and a "
        "memory-free policy and print their success rates side by side; then train an HCAM "
        "agent and an LSTM agent with memory PPO on short-delay recall (DelayedMatch-Easy) and "
        "compare them; write demo.json, training_curves.png and a Ballet GIF into --out. A "
        "killed demo resumes its training runs when run again with the same --out.",
    )
    d.add_argument("--out", default="runs/demo", help="directory for the demo's files")
    d.add_argument("--episodes", type=positive_int, default=200, help="episodes per policy")
    d.add_argument("--seed", type=integer, default=0, help="seed")
    d.add_argument(
        "--train-steps",
        type=non_negative_int,
        default=200_000,
        help="env steps of training per agent (default 200000, a few minutes; 0 skips training)",
    )
    d.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the showcase."""
    from memrl.demo import run_demo as demo

    demo(out_dir=Path(args.out), episodes=args.episodes, seed=args.seed,
         train_steps=args.train_steps)  # fmt: skip
    return 0
