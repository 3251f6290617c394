"""Memory agents compared on one env: train each (agent, seed) with `memrl train`, evaluate it with
`memrl eval`, and aggregate the reports over seeds.

What `memrl eval` measures depends on the env: every Ballet level of the trained observation type
for Ballet/BalletGrid, accuracy per question type for RoomBallet, success otherwise. An agent is
a preset name from PRESETS (an agent of `memrl train` and its core options), so fixed eviction
strategies of SAT-PM can sit beside the allocator. On RoomBallet every memory holds half of the
observation phase (see `room_memory`), so that what to evict matters. Finished runs are skipped
and killed ones resumed, so the script can be re-run after an interruption. The aggregate (mean
and min-max over seeds per condition) goes to OUT/study.md, OUT/study.json and
OUT/training_curves.png.

With `--archive DIR` each evaluated run's compact results (config.json, report.json and a
thinned metrics.csv: what the table and the curves read, no checkpoints) are copied to
DIR/<agent>-seed<seed>/ as it finishes, with the study's settings in DIR/study.json; a run whose
results are archived is not trained again, and `--summary --archive DIR` rebuilds the table from
the archive alone, on a fresh checkout, without training (docs/RESULTS.md's tables come from
committed archives under assets/results/).

    python scripts/memory_study.py --env memrl/BalletGrid-2-delay16-v0 \\
        --agents hcam lstm transformer none --seeds 0 1 2 --steps 2000000 --out runs/ballet2
    python scripts/memory_study.py --env memrl/RoomBallet-v0 \\
        --env-kwargs '{"rooms": [2, 2], "num_events": 6}' --agents sat-pm sat-fifo hcam \\
        sat-ama sat-pm-lifo sat-pm-mvfo sat-pm-lvfo --seeds 0 1 2 --steps 800000 \\
        --ppo '{"objective": "supervised", "learning_rate": 0.001}' --greedy --out runs/rooms_small
    python scripts/memory_study.py --env memrl/BalletGrid-2-delay16-v0 --dry-run   # the plan
    python scripts/memory_study.py ... --summary   # the table of the runs evaluated so far
    python scripts/memory_study.py ... --ppo '{"ent_coef": 0.001}'   # PPO settings for every run
    python scripts/memory_study.py ... --archive assets/results/STUDY   # keep compact results
    python scripts/memory_study.py ... --summary --archive assets/results/STUDY   # their table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from memrl.agents.ppo_config import PPOConfig
from memrl.agents.run_log import read_metric, thin_metrics
from memrl.cli import main as memrl
from memrl.eval.plots import plot_training_curves
from memrl.memory.presets import CHUNKED, SMALL

ZERO_PLACES = {"learned_places": True, "place_init": "zeros"}
"""A learned place embedding that starts at zero (the SAT core starts as its place-free self)."""
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "hcam": ("hcam", CHUNKED),
    "transformer": ("transformer", SMALL),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "none": ("none", {}),
    "sat-fifo": ("sat-fifo", CHUNKED),
    "sat-pm": ("sat-pm", SMALL),
    "sat-ama": ("sat-ama", SMALL),
    **{f"sat-pm-{s}": ("sat-pm", {**SMALL, "strategy": s}) for s in ("lifo", "mvfo", "lvfo")},
    "sat-fifo-zeros": ("sat-fifo", {**CHUNKED, **ZERO_PLACES}),
    "sat-pm-zeros": ("sat-pm", {**SMALL, **ZERO_PLACES}),
}
"""Agent name -> (the `memrl train --agent`, its `--core-kwargs`)."""
PPO_FIELDS = {f.name for f in dataclasses.fields(PPOConfig)} - {
    "env_id", "env_kwargs", "core", "core_kwargs", "total_steps", "seed", "threads", "tensorboard"
}  # fmt: skip
"""PPO settings a study may set for all its runs (`--ppo`); the rest are the study's own."""
STUDY_SETTINGS = ("env", "env_kwargs", "steps", "ppo", "greedy", "eval_episodes")
"""The arguments every run of an archive shares (DIR/study.json); a different one is refused."""


def room_memory(
    env_id: str, env_kwargs: dict[str, Any], core_kwargs: dict[str, Any], agent: str
) -> dict[str, Any]:
    """On RoomBallet, memories that hold half of the observation phase, as in SAT's Room Ballet.

    Eviction strategies only matter when the memory is smaller than what was seen. SAT-PM keeps
    that many steps; the chunked memories (HCAM, SAT-FIFO) keep that many steps in chunks of one
    visit each; no core reads more places or chunks (``top_k``) than there are. Other envs keep
    the preset unchanged.
    """
    if not env_id.startswith("memrl/RoomBallet"):
        return core_kwargs
    import gymnasium

    spec = {**gymnasium.spec(env_id).kwargs, **env_kwargs}
    half = spec["num_events"] * spec["stay_steps"] // 2
    num_places = spec["rooms"][0] * spec["rooms"][1]
    top_k = core_kwargs.get("top_k", 4)  # the cores' default, at most what can be read
    if agent in ("sat-pm", "sat-ama"):
        top_k = min(top_k, num_places)
        return {**core_kwargs, "capacity": half, "num_places": num_places, "top_k": top_k}
    if agent in ("hcam", "sat-fifo"):
        chunk = spec["stay_steps"]
        chunks = half // chunk
        extra = {"num_places": num_places} if agent == "sat-fifo" else {}
        return {**core_kwargs, "chunk_size": chunk, "capacity": chunks,
                "top_k": min(top_k, chunks), **extra}  # fmt: skip
    return core_kwargs


def train_command(name: str, seed: int, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """The `memrl train` arguments of one run."""
    agent, core_kwargs = PRESETS[name]
    core_kwargs = room_memory(args.env, json.loads(args.env_kwargs or "{}"), core_kwargs, agent)
    command = ["train", "--env", args.env, "--agent", agent, "--steps", str(args.steps),
               "--seed", str(seed), "--out", str(run_dir), "--core-kwargs",
               json.dumps(core_kwargs), "--no-tensorboard", "--threads", "1",
               "--no-progress"]  # fmt: skip
    if args.env_kwargs:
        command += ["--env-kwargs", args.env_kwargs]
    for field, value in json.loads(args.ppo).items():
        command += ppo_option(field, value)
    if run_dir.exists():  # resume: from the last checkpoint, or afresh if killed before one
        command.append("--resume")
    return command


def ppo_option(field: str, value: Any) -> list[str]:
    """One memory-PPO setting as `memrl train` arguments, e.g. ("ent_coef", 0.001)."""
    flag = "--" + field.replace("_", "-")
    if field not in PPO_FIELDS:
        raise SystemExit(f"--ppo: unknown PPO setting {field!r}; allowed: {sorted(PPO_FIELDS)}")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]


def run_one(name: str, seed: int, args: argparse.Namespace) -> dict:
    """Train (or resume, or skip) and evaluate one run, then archive it; returns its report.

    A run whose report is archived (``--archive``) is not trained again.
    """
    run_dir = Path(args.out) / f"{name}-seed{seed}"
    report = run_dir / "report.json"
    kept = archived(name, seed, args)
    if not report.exists() and kept is not None and (kept / "report.json").exists():
        return json.loads((kept / "report.json").read_text())
    if not report.exists():
        if memrl(train_command(name, seed, args, run_dir)) != 0:
            raise SystemExit(f"training {name} seed {seed} failed")
        greedy = ["--deterministic"] if args.greedy else []
        if memrl(["eval", str(run_dir), "--episodes", str(args.eval_episodes), *greedy]) != 0:
            raise SystemExit(f"evaluating {name} seed {seed} failed")
    if kept is not None:
        archive_run(run_dir, kept)
    return json.loads(report.read_text())


def archived(name: str, seed: int, args: argparse.Namespace) -> Path | None:
    """Where ``--archive`` keeps a run's results (None without ``--archive``)."""
    return None if args.archive is None else Path(args.archive) / f"{name}-seed{seed}"


def archive_run(run_dir: Path, target: Path) -> None:
    """Copy an evaluated run's compact results to ``target``: all the table and curves read.

    config.json, report.json and metrics.csv (thinned: :func:`thin_metrics`).

    The report goes last, written under a temporary name and renamed, so that an archive entry
    with a report is complete.
    """
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run_dir / "config.json", target / "config.json")
    thin_metrics(run_dir / "metrics.csv", target / "metrics.csv")
    partial = target / "report.json.partial"
    shutil.copy2(run_dir / "report.json", partial)
    partial.replace(target / "report.json")


def study_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings an archive's runs share (STUDY_SETTINGS), JSON options parsed."""
    settings = {key: getattr(args, key) for key in STUDY_SETTINGS}
    settings["env_kwargs"] = json.loads(args.env_kwargs or "{}")
    settings["ppo"] = json.loads(args.ppo)
    return settings


def check_archive(args: argparse.Namespace) -> None:
    """Write DIR/study.json for a new archive, or refuse one made with other settings."""
    path = Path(args.archive) / "study.json"
    ours = study_settings(args)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ours, indent=2) + "\n")
        return
    theirs = json.loads(path.read_text())
    differ = [f"{key}: {theirs.get(key)!r} there, {ours[key]!r} here"
              for key in STUDY_SETTINGS if theirs.get(key) != ours[key]]  # fmt: skip
    if differ:
        raise SystemExit(
            f"--archive {args.archive} holds a study with other settings ("
            + "; ".join(differ)
            + "): give another --archive or the same settings"
        )


def run_files(name: str, seed: int, args: argparse.Namespace) -> Path | None:
    """The directory holding a run's report: the run's own, else its archive's; None if neither."""
    for directory in (
        None if args.out is None else Path(args.out) / f"{name}-seed{seed}",
        archived(name, seed, args),
    ):
        if directory is not None and (directory / "report.json").exists():
            return directory
    return None


def summary(reports: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """A Markdown table: one row per agent, one column per evaluated condition."""
    labels = [r["label"] for r in next(iter(reports.values()))[0]["results"]]
    mixture = args.env.startswith("memrl/RoomBallet")  # the types are drawn uniformly
    lines = [
        f"`{args.env}`"
        + (f" with `{args.env_kwargs}`" if args.env_kwargs else "")
        + f", {args.steps:,} env steps per run, seeds {args.seeds}"
        + (f", PPO settings `{args.ppo}`" if json.loads(args.ppo) else "")
        + f"; success (mean over seeds, min-max) with {args.eval_episodes} episodes per "
        + ("condition, greedy actions." if args.greedy else "condition, sampled actions."),
        "",
        "| agent | " + " | ".join(labels) + (" | mixture (mean) |" if mixture else " |"),
        "|---|" + "---|" * (len(labels) + mixture),
    ]
    for name, runs in reports.items():
        s = np.array([[r["success_rate"] for r in run["results"]] for run in runs])
        if mixture:
            s = np.concatenate([s, s.mean(1, keepdims=True)], axis=1)
        cells = [f"{m:.2f} ({lo:.2f}-{hi:.2f})" for m, lo, hi in zip(s.mean(0), s.min(0), s.max(0),
                                                                    strict=True)]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    choices = {name: [run.get("allocator_choices") for run in runs]
               for name, runs in reports.items() if runs[0].get("allocator_choices")}  # fmt: skip
    for name, per_seed in choices.items():
        lines += ["", f"{name}: strategy picked per question type, per seed: {per_seed}"]
    lines += best_fixed_strategies(reports, labels)
    return "\n".join(lines) + "\n"


FIXED = {"sat-pm": "fifo", "sat-pm-lifo": "lifo", "sat-pm-mvfo": "mvfo", "sat-pm-lvfo": "lvfo"}
"""The SAT-PM presets with a fixed eviction strategy, by preset name."""


def best_fixed_strategies(reports: dict[str, list[dict]], labels: list[str]) -> list[str]:
    """Per condition, the fixed strategy with the best mean success: what an allocator should pick.

    Empty unless the study has all four fixed-strategy presets.
    """
    if not all(name in reports for name in FIXED):
        return []
    mean = {
        name: np.mean([[r["success_rate"] for r in run["results"]] for run in reports[name]], 0)
        for name in FIXED
    }
    best = [max(FIXED, key=lambda name: mean[name][i]) for i in range(len(labels))]
    picks = [f"{label}: {FIXED[name]} ({mean[name][i]:.2f})" for i, (label, name)
             in enumerate(zip(labels, best, strict=True))]  # fmt: skip
    oracle = np.mean([mean[name][i] for i, name in enumerate(best)])
    return [
        "",
        f"Best fixed strategy per condition (mean over seeds): {', '.join(picks)}. An allocator "
        f"picking these scores about {oracle:.2f} on the mixture if its one core is as good as "
        "each fixed-strategy core.",
    ]


def partial_summary(plan: list[tuple[str, int]], args: argparse.Namespace) -> str:
    """The table of the runs of ``plan`` evaluated so far, and which ones are missing."""
    reports: dict[str, list[dict]] = {}
    missing = []
    for name, seed in plan:
        directory = run_files(name, seed, args)
        if directory is not None:
            reports.setdefault(name, []).append(json.loads((directory / "report.json").read_text()))
        else:
            missing.append(f"{name}-seed{seed}")
    if not reports:
        return f"no run of {args.out or args.archive} has been evaluated yet"
    counts = ", ".join(f"{name} {len(runs)}" for name, runs in reports.items())
    text = summary(reports, args).replace(f", seeds {args.seeds}", "", 1)
    text += f"\nSeeds evaluated per agent: {counts}."
    return text + (f"\nNot evaluated yet: {', '.join(missing)}.\n" if missing else "\n")


def main(argv: list[str] | None = None) -> None:
    """Plan, train, evaluate, archive and tabulate the study (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", required=True, help="the env id to train on")
    parser.add_argument("--env-kwargs", default=None, help="JSON keyword arguments of the env")
    parser.add_argument("--agents", nargs="+", default=["hcam", "lstm"], choices=list(PRESETS))
    parser.add_argument("--steps", type=int, default=2_000_000, help="training steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--ppo", default="{}", metavar="JSON",
        help='memory-PPO settings for every run, e.g. \'{"ent_coef": 0.001, "num_envs": 32}\'',
    )  # fmt: skip
    parser.add_argument(
        "--greedy", action="store_true", help="evaluate greedy actions (supervised runs' accuracy)"
    )
    parser.add_argument("--eval-episodes", type=int, default=200, help="episodes per condition")
    parser.add_argument(
        "--out", default=None, help="output directory (required unless --summary --archive)"
    )
    parser.add_argument(
        "--archive", default=None, metavar="DIR",
        help="keep each evaluated run's compact results in DIR/<agent>-seed<seed>/ (runs found "
        "there are not trained again); with --summary, the table from DIR alone",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the runs and stop")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="train nothing: print the table of the runs evaluated so far (a study in progress)",
    )
    args = parser.parse_args(argv)
    if args.out is None and not (args.summary and args.archive):
        parser.error("--out is required (unless --summary --archive DIR: the archive's table)")
    try:
        ppo = json.loads(args.ppo)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--ppo must be a JSON object, got {args.ppo!r}: {error}") from error
    if not isinstance(ppo, dict):
        raise SystemExit(f"--ppo must be a JSON object, got {args.ppo!r}")

    # Seed by seed, so that an interrupted study has every agent of its first seeds.
    plan = [(name, seed) for seed in args.seeds for name in args.agents]
    if args.dry_run:
        for name, seed in plan:
            run_dir = Path(args.out) / f"{name}-seed{seed}"
            print("memrl " + " ".join(train_command(name, seed, args, run_dir)))
        return
    if args.archive is not None:
        check_archive(args)
    if args.summary:
        print(partial_summary(plan, args))
        return
    out = Path(args.out)
    by_seed: dict[int, dict[str, dict]] = {seed: {} for seed in args.seeds}
    for name, seed in plan:
        by_seed[seed][name] = run_one(name, seed, args)
    reports = {name: [by_seed[seed][name] for seed in args.seeds] for name in args.agents}
    curves = {name: [read_metric(run_files(name, seed, args), "charts/success_rate")
                     for seed in args.seeds] for name in args.agents}  # fmt: skip
    plot_training_curves(curves, out / "training_curves.png", smooth=20,
                         title=f"training success on {args.env}")  # fmt: skip
    (out / "study.json").write_text(json.dumps({"args": vars(args), "reports": reports}, indent=2))
    text = summary(reports, args)
    (out / "study.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
