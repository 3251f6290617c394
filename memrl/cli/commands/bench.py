"""``memrl bench WHAT``: speed of envs, streams, continual SAC, memory, sweeps, L2M; learning."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from memrl.agents.continual.config import METHODS
from memrl.agents.l2m.offline_config import AGENTS
from memrl.agents.ppo_config import PPOConfig
from memrl.cli.arguments import (
    env_id,
    json_object,
    non_negative_int,
    positive_float,
    positive_int,
)
from memrl.envs import ALL

JSON_HELP = "also write the results and machine to FILE"
LEARNING_AGENTS: dict[str, dict[str, Any]] = {
    "hcam": {"num_layers": 2, "width": 64},
    "lstm": {},
    "gru": {},
    "transformer": {"num_layers": 2, "width": 64},
    "none": {},
    "sb3-recurrent-ppo": {},
}
"""``memrl bench learning --agents``: name -> core options (attention cores: 2 layers of 64)."""


def add_parser(subparsers: Any) -> None:
    """Add ``memrl bench`` and its measurements to the command's subparsers."""
    p = subparsers.add_parser("bench", help="measure speed")
    bench = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    b = bench.add_parser(
        "envs",
        help="steps/s of every env, single (gymnasium.make) and batched (make_vec)",
        description=(
            "Steps each env with pre-drawn random actions for --seconds of wall time, single "
            "(through gymnasium.make, wrappers included) and batched (the vector entry point "
            "with --num-envs sub-environments). Resets are included in the time."
        ),
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--seconds",
        type=positive_float,
        default=1.0,
        help="seconds per measurement (default: %(default)s)",
    )
    b.add_argument(
        "--num-envs",
        type=positive_int,
        default=64,
        help="sub-envs of the batched form (default: %(default)s)",
    )
    b.add_argument(
        "--ids", nargs="+", type=env_id, metavar="ID", help="measure only these ids (default all)"
    )
    b.set_defaults(func=run_envs)
    b = bench.add_parser(
        "streams",
        help="Meta-World throughput through memrl's stream wrappers vs raw, and eval speed",
        description="Steps the same actions through raw Meta-World, Meta-World's gym stack, "
        "memrl's protocol env and ContinualEnv (paired rounds, median overhead), then times "
        "a retention-matrix evaluation (every CW10 task, --episodes episodes each).",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--rounds",
        type=positive_int,
        default=15,
        help="paired timing rounds (default: %(default)s)",
    )
    b.add_argument(
        "--episodes",
        type=positive_int,
        default=10,
        help="episodes per task (default: %(default)s)",
    )
    b.set_defaults(func=run_streams)
    b = bench.add_parser(
        "continual",
        help="continual SAC's env steps/s per method, and the projected cost of CW10/CW20 runs",
        description="Trains continual SAC (Continual World's networks and update schedule, one "
        "torch thread) with each method on a two-task Meta-World stream and times every env "
        "step: random-action steps, learning steps (50 gradient steps every 50 env steps) on "
        "the first task and on the second, the end of each task, and an evaluation of every "
        "task. From these rates it projects the wall time of one CW10, CW20 and study run.",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="methods to time (default: all)",
    )
    b.add_argument(
        "--random-steps",
        type=positive_int,
        default=500,
        help="random-action steps per task (default: %(default)s)",
    )
    b.add_argument(
        "--learning-steps",
        type=positive_int,
        default=1_000,
        help="learning steps per task (default: %(default)s)",
    )
    b.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=2,
        help="episodes per task of the timed eval (default: %(default)s)",
    )
    b.set_defaults(func=run_continual)
    b = bench.add_parser(
        "memory",
        help="one HCAM read vs exact attention (256..16,384 steps), and training steps/s per core",
        description="Times one HCAM read against torch's fused exact attention over the same "
        "memory (batch 8, width 128, 4 heads, chunk 32, top-4; memory 256 to 16,384 steps), then "
        "trains every memory core with memory PPO and sb3-contrib's RecurrentPPO on --env for "
        "--steps env steps each and reports env steps per second, updates included.",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--part",
        choices=("read", "training", "all"),
        default="all",
        help="what to run (default: %(default)s)",
    )
    b.add_argument(
        "--env",
        type=env_id,
        default="memrl/BalletGrid-2-delay16-v0",
        help="training env (default: %(default)s)",
    )
    b.add_argument(
        "--steps",
        type=positive_int,
        default=16_384,
        help="training steps per agent (default: %(default)s)",
    )
    b.set_defaults(func=run_memory)
    b = bench.add_parser(
        "sweep",
        help="a sweep's speed-up over running its trials one after another, and Ray's overhead",
        description="Trains --trials equal runs (seeds 0, 1, ...; one torch thread each) of "
        "--agent on --env for --steps env steps twice: one after another, each a `memrl train` "
        "process, and as a `memrl sweep` on a local Ray (its start included) with one CPU per "
        "trial. Reports the speed-up and Ray's overhead per trial (the sweep's wall time times "
        "the trials it runs at once, per trial, minus a plain run).",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument("--trials", type=positive_int, default=4, help="runs (default: %(default)s)")
    b.add_argument(
        "--env",
        type=env_id,
        default="memrl/DelayedMatch-Easy-v0",
        help="their env (default: %(default)s)",
    )
    b.add_argument("--agent", default="lstm", help="their agent (default: %(default)s)")
    b.add_argument(
        "--steps",
        type=positive_int,
        default=131_072,
        help="env steps of each run (default: %(default)s)",
    )
    b.set_defaults(func=run_sweep_bench)
    b = bench.add_parser(
        "l2m",
        help="the L2M pipeline: collection, pretraining, action latency, fine-tuning per agent",
        description="Times each step of the L2M pipeline on a small scale, one torch thread: "
        "scripted Meta-World collection (steps/s), pretraining of the default model at batch "
        "256 (updates and tokens/s), the action latency of the frozen model and of L2M for 1 "
        "and 10 envs, an online evaluation (seconds per episode) and offline fine-tuning with "
        "every agent (updates/s); wall and CPU figures, the load average, and the projected "
        "hours of a default CW10 run per agent. About 2-3 minutes.",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--episodes-per-task",
        type=positive_int,
        default=2,
        help="scripted episodes collected per task (default: %(default)s)",
    )
    b.add_argument(
        "--pretrain-updates",
        type=positive_int,
        default=200,
        help="pretraining updates (default: %(default)s)",
    )
    b.add_argument(
        "--updates-per-task",
        type=positive_int,
        default=20,
        help="fine-tuning updates per task and agent (default: %(default)s)",
    )
    b.add_argument(
        "--agents",
        nargs="+",
        choices=AGENTS,
        default=list(AGENTS),
        help="fine-tuning agents to time (default: all)",
    )
    b.add_argument("--note", default="", help="a remark stored in the JSON (e.g. the load)")
    b.set_defaults(func=run_l2m_bench)
    b = bench.add_parser(
        "learning",
        help="wall-clock time until training success reaches a level, per agent and seed",
        description="Trains each agent from scratch, one torch thread, seed after seed, and "
        "stops it at the first update (memory PPO) or rollout (SB3) where the success over the "
        "last 100 training episodes is at least --threshold; reports the wall time (env "
        "creation included) and env steps it took, or the budget's if it was not reached. "
        "Agents: hcam (2 layers of width 64, chunks of 32), lstm, gru, transformer, none "
        "(memory PPO at its defaults, or --ppo), sb3-recurrent-ppo (SB3's defaults).",
    )
    b.add_argument("--json", metavar="FILE", help=JSON_HELP)
    b.add_argument(
        "--env",
        type=env_id,
        default="memrl/DelayedMatch-Easy-v0",
        help="training env (default: %(default)s)",
    )
    b.add_argument(
        "--agents",
        nargs="+",
        choices=list(LEARNING_AGENTS),
        default=["hcam", "lstm", "sb3-recurrent-ppo"],
        help="agents to time (default: %(default)s)",
    )
    b.add_argument(
        "--seeds",
        nargs="+",
        type=non_negative_int,
        default=[0, 1, 2],
        help="seeds (default: %(default)s)",
    )
    b.add_argument(
        "--threshold",
        type=positive_float,
        default=0.9,
        help="success level over the last 100 training episodes (default: %(default)s)",
    )
    b.add_argument(
        "--max-steps",
        type=positive_int,
        default=300_000,
        help="budget per run in env steps (default: %(default)s)",
    )
    b.add_argument(
        "--ppo",
        type=json_object,
        default={},
        metavar="JSON",
        help="memory-PPO settings instead of the defaults, e.g. '{\"update_epochs\": 8}'",
    )
    b.add_argument("--note", default="", help="a remark stored in the JSON (e.g. the load)")
    b.set_defaults(func=run_learning_bench)


def run_envs(args: argparse.Namespace) -> int:
    """Measure every env's steps/s, single and batched."""
    from tqdm import tqdm

    from memrl.bench.envs import bench_envs, format_table
    from memrl.bench.machine import machine_info

    ids = args.ids or list(ALL)
    rows = bench_envs(
        ids,
        seconds=args.seconds,
        num_envs=args.num_envs,
        progress=lambda it: tqdm(it, desc="bench envs", unit="env", file=sys.stderr),
    )
    print(format_table(rows))
    if args.json:
        report = {
            "machine": machine_info(),
            "seconds_per_measurement": args.seconds,
            "results": [r.to_dict() for r in rows],
        }
        _write_json(args.json, report, args.argv)
    return 0


def run_streams(args: argparse.Namespace) -> int:
    """Measure the stream wrappers' overhead and the evaluation speed."""
    from memrl.bench.streams import bench_streams, format_report

    report = bench_streams(rounds=args.rounds, episodes_per_task=args.episodes)
    print(format_report(report))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def run_continual(args: argparse.Namespace) -> int:
    """Measure continual SAC's steps/s per method."""
    from memrl.bench.continual import bench_continual, format_report

    report = bench_continual(
        methods=args.methods,
        random_steps=args.random_steps,
        learning_steps=args.learning_steps,
        eval_episodes=args.eval_episodes,
    )
    print(format_report(report))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def run_memory(args: argparse.Namespace) -> int:
    """Measure an HCAM read and every core's training steps/s."""
    from memrl.bench.machine import machine_info
    from memrl.bench.memory import bench_hcam_read, format_read_table
    from memrl.bench.training import bench_training, format_training_table

    report: dict = {"machine": machine_info(("memrl", "torch", "stable-baselines3", "sb3-contrib"))}
    if args.part in ("read", "all"):
        report["hcam_read"] = bench_hcam_read()
        print(format_read_table(report["hcam_read"]))
    if args.part in ("training", "all"):
        report["training"] = bench_training(env_id=args.env, steps=args.steps)
        print(format_training_table(report["training"]))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def run_sweep_bench(args: argparse.Namespace) -> int:
    """Time equal runs one after another and as a sweep on local Ray."""
    from memrl.bench.sweep import bench_sweep, format_report
    from memrl.cli import main

    report = bench_sweep(main, trials=args.trials, env_id=args.env, agent=args.agent,
                         steps=args.steps)  # fmt: skip
    print(format_report(report))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def run_l2m_bench(args: argparse.Namespace) -> int:
    """Time the L2M pipeline's steps."""
    from tqdm import tqdm

    from memrl.bench.l2m import bench_l2m, format_report

    def step(name: str) -> None:
        tqdm.write(f"bench l2m: {name}", file=sys.stderr)

    report = bench_l2m(
        episodes_per_task=args.episodes_per_task,
        pretrain_updates=args.pretrain_updates,
        updates_per_task=args.updates_per_task,
        agents=args.agents,
        progress=step,
    )
    if args.note:
        report = {"note": args.note, **report}
    print(format_report(report))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def run_learning_bench(args: argparse.Namespace) -> int:
    """Time each agent and seed to the success level."""
    from memrl.bench.learning import bench_learning, format_learning_table
    from memrl.bench.machine import machine_info
    from memrl.bench.training import BENCH_SET

    if args.threshold > 1:
        raise SystemExit(f"--threshold {args.threshold}: a success level is at most 1")
    settable = {f.name for f in dataclasses.fields(PPOConfig)} - BENCH_SET
    unknown = sorted(set(args.ppo) - settable)
    if unknown:
        raise SystemExit(f"--ppo: unknown memory-PPO setting(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(settable))}")  # fmt: skip

    def report_run(result: Any) -> None:
        status = "reached" if result.reached else "not reached"
        print(f"bench learning: {result.agent} seed {result.seed}: {status} after "
              f"{result.seconds:.0f} s, {result.steps:,} env steps", file=sys.stderr)  # fmt: skip

    agents = [(name, LEARNING_AGENTS[name]) for name in args.agents]
    rows = bench_learning(agents, args.seeds, args.env, args.threshold, args.max_steps,
                          args.ppo, progress=report_run)  # fmt: skip
    print(format_learning_table(rows, args.threshold))
    if args.json:
        report = {
            "machine": machine_info(("memrl", "torch", "stable-baselines3", "sb3-contrib")),
            **({"note": args.note} if args.note else {}),
            "env": args.env,
            "threshold": args.threshold,
            "max_steps": args.max_steps,
            "ppo": args.ppo,
            "runs": rows,
        }
        _write_json(args.json, report, args.argv)
    return 0


def _write_json(path: str, report: dict, argv: list[str]) -> None:
    """Write ``report`` with the command that made it to ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"command": "memrl " + " ".join(argv), **report}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
