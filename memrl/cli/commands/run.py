"""``memrl run JOB``: named jobs (``demo``, the showcase)."""

from __future__ import annotations

import argparse
import sys
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
        "agent and an LSTM agent with memory PPO on recall over delays of 0-128 steps "
        "(DelayedMatch), evaluated at delays 64 and 1024, and "
        "compare them; fine-tune the shipped pretrained Decision Transformer offline on a CW10 "
        "slice with L2M and with full fine-tuning and compare the retention of the first task "
        "and of pretraining skill; write demo.json, training_curves.png and a Ballet GIF into "
        "--out. A killed demo resumes its training runs when run again with the same --out.",
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
    d.add_argument(
        "--l2m-updates-per-task",
        type=non_negative_int,
        default=300,
        help="fine-tuning updates per task of the L2M part (default 300, a few minutes; 0 skips "
        "it)",
    )
    d.add_argument(
        "--l2m-tasks",
        default=None,
        help="comma-separated CW10 tasks the L2M part fine-tunes on, in order (default: "
        "push-wall-v3,hammer-v3)",
    )
    d.add_argument(
        "--l2m-data",
        nargs="+",
        metavar="DIR",
        help="datasets holding the slice's tasks (default: collect 10 scripted episodes of each)",
    )
    d.add_argument(
        "--pretrained",
        default=None,
        help="the pretrained model of the L2M part (default: the shipped "
        "assets/pretrained/mddt.safetensors; the part is skipped without it)",
    )
    d.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the showcase."""
    from memrl.demo import L2M_TASKS
    from memrl.demo import run_demo as demo

    tasks = L2M_TASKS
    if args.l2m_tasks is not None:
        tasks = tuple(task.strip() for task in args.l2m_tasks.split(",") if task.strip())
    if args.l2m_updates_per_task:
        from memrl.data.metaworld_experts import resolve_metaworld_tasks

        try:  # the slice's data are collected with Meta-World's scripted experts
            resolve_metaworld_tasks(tasks)
        except ValueError as error:
            print(f"memrl run demo: error: --l2m-tasks: {error}", file=sys.stderr)
            return 2
        if len(tasks) < 2:
            print(f"memrl run demo: error: --l2m-tasks needs at least two tasks, got "
                  f"{args.l2m_tasks!r}", file=sys.stderr)  # fmt: skip
            return 2
    demo(out_dir=Path(args.out), episodes=args.episodes, seed=args.seed,
         train_steps=args.train_steps, l2m_updates_per_task=args.l2m_updates_per_task,
         l2m_tasks=tasks, l2m_data=args.l2m_data, pretrained=args.pretrained)  # fmt: skip
    return 0
