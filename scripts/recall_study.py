"""Recall vs delay on DelayedMatch: memory agents trained on mixed delays, tested at 16 ... 4096.

Each (agent, seed) is trained with `memrl train` on `memrl/DelayedMatch-v0` with every episode's
delay drawn from `--train-delay LOW HIGH`, then `memrl eval` measures its success at delays 16,
64, 256, 1024 and 4096. The mixture matters for HCAM: a cue fewer than `chunk_size` steps back is
read by the local attention over the current chunk, an older one by the hierarchical read over
committed chunks, so training must show both. Finished runs are skipped and killed ones resumed,
so the script can be re-run after an interruption. The aggregate (mean and spread over seeds per
delay) goes to OUT/recall_study.md, OUT/recall_study.json, OUT/recall_vs_delay.png and
OUT/training_curves.png.

    python scripts/recall_study.py --train-delay 0 128 --steps 1500000 --seeds 0 1 2 \
        --agents hcam lstm --out runs/recall_study
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from memrl.agents.checkpoints import CheckpointStore
from memrl.agents.run_log import read_metric
from memrl.cli import main as memrl
from memrl.eval.plots import RecallCurve, plot_recall_vs_delay, plot_training_curves

AGENTS: dict[str, dict] = {
    # 2 layers of width 64 keep HCAM fast on a CPU; 325 chunks of 16 steps hold 5,200 steps, so
    # the cue of a 4,096-step delay is still in memory. Chunks of 16 rather than the default 32:
    # the cue is one of 16 entries of its chunk, not 32, and in a pilot (seed 0, delays 0-128)
    # chunks of 16 took off at ~500k steps where chunks of 32 had not by then.
    "hcam": {"num_layers": 2, "width": 64, "chunk_size": 16, "capacity": 325},
    "lstm": {},
    "gru": {},
    "none": {},
}


def run_one(agent: str, seed: int, args: argparse.Namespace) -> dict:
    run_dir = Path(args.out) / f"{agent}-seed{seed}"
    report = run_dir / "report.json"
    if not report.exists():
        env_kwargs = {"delay": list(args.train_delay), "num_symbols": args.num_symbols}
        train = ["train", "--env", "memrl/DelayedMatch-v0", "--agent", agent,
                 "--steps", str(args.steps), "--seed", str(seed), "--out", str(run_dir),
                 "--env-kwargs", json.dumps(env_kwargs), "--core-kwargs",
                 json.dumps(AGENTS[agent]), "--no-tensorboard", "--threads", "1",
                 "--no-progress"]  # fmt: skip
        if CheckpointStore(run_dir / "checkpoints").exists():
            train.append("--resume")
        if memrl(train) != 0:
            raise SystemExit(f"training {agent} seed {seed} failed")
        if memrl(["eval", str(run_dir), "--episodes", str(args.eval_episodes)]) != 0:
            raise SystemExit(f"evaluating {agent} seed {seed} failed")
    return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train-delay",
        type=int,
        nargs=2,
        default=[0, 128],
        metavar=("LOW", "HIGH"),
        help="training delays (uniform per episode)",
    )
    parser.add_argument("--num-symbols", type=int, default=4, help="symbols (chance = 1/this)")
    parser.add_argument("--steps", type=int, default=1_500_000, help="training steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--agents", nargs="+", default=["hcam", "lstm"], choices=list(AGENTS))
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes per delay")
    parser.add_argument("--out", default="runs/recall_study", help="output directory")
    args = parser.parse_args()

    curves: dict[str, RecallCurve] = {}
    training: dict[str, list] = {}
    table: dict[str, dict] = {}
    for agent in args.agents:
        reports = [run_one(agent, seed, args) for seed in args.seeds]
        training[agent] = [read_metric(Path(args.out) / f"{agent}-seed{seed}",
                                       "charts/success_rate") for seed in args.seeds]  # fmt: skip
        delays = np.array([r["env_kwargs"]["delay"] for r in reports[0]["results"]], float)
        success = np.array([[r["success_rate"] for r in rep["results"]] for rep in reports])
        curves[agent] = RecallCurve(delays, success.mean(0), success.min(0), success.max(0))
        table[agent] = {"delays": delays.tolist(), "per_seed": success.tolist()}
    out = Path(args.out)
    plot_recall_vs_delay(curves, out / "recall_vs_delay.png", chance=1 / args.num_symbols)
    plot_training_curves(training, out / "training_curves.png", chance=1 / args.num_symbols,
                         smooth=20, title="training success, delays drawn per episode")  # fmt: skip
    (out / "recall_study.json").write_text(json.dumps({"args": vars(args), **table}, indent=2))
    delays = next(iter(table.values()))["delays"]
    lines = [
        f"Trained on delays {args.train_delay[0]}-{args.train_delay[1]} drawn per episode "
        f"({args.num_symbols} symbols, chance "
        f"{1 / args.num_symbols:.2f}), {args.steps:,} steps, seeds {args.seeds}; success "
        f"(mean over seeds, min-max) with {args.eval_episodes} episodes per delay.",
        "",
        "| agent | " + " | ".join(f"delay {int(d)}" for d in delays) + " |",
        "|---|" + "---|" * len(delays),
    ]
    for agent, row in table.items():
        s = np.array(row["per_seed"])
        cells = [f"{m:.2f} ({lo:.2f}-{hi:.2f})" for m, lo, hi in zip(s.mean(0), s.min(0), s.max(0),
                                                                    strict=True)]  # fmt: skip
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    (out / "recall_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
