"""Ballet's recall probe, offline: can a core learn which dancer the instruction names?

Apart from reinforcement learning, and at many more labels per second than the probe inside memory
PPO (``memrl train --objective supervised --answer-step choice``, one label per ~130-step
episode whose walk after the choice is wasted): each batch is ``--batch-size`` fresh BalletGrid
episodes played from reset to the choice step (the agent's actions are ignored until then, so no
policy is needed), and the agent of ``memrl train --agent CORE`` (the same encoder, core and
action head, built by ``memrl.agents.ppo.build_policy``) is trained with the cross-entropy
between its action logits at the choice step and ``info["answer"]``: the move from the start onto
the target dancer's slot. Every episode is new, so the accuracy on a batch, measured before the
batch's own update, is accuracy on unseen episodes. Picking one of the two dancers in sight
scores 0.5 with 2 dancers without any memory; above that is recall.

``--variant dance`` gives recognition away, as ``scripts/ballet_diagnostics.py`` does for RL:
while a dancer performs, the instruction shows the name of its dance (the token the choice step
will use) instead of "watch"; what is left is remembering who danced it and matching the
instruction to that memory. ``--curriculum LABELS`` (with ``--variant none``) weans the agent off
those names: each episode of the first LABELS shows them with a probability that falls linearly
from 1 to 0 over those labels; accuracy and loss are then measured on the episodes without them
(the task itself) only. ``--reconstruction-coef`` adds memory PPO's auxiliary loss: the core's
output at every step reconstructs that step's grid and instruction, which trains the encoder to
say where the moving dancer is (the choice label alone does not). With both, HCAM learns the
recall of BalletGrid-2 (docs/RESULTS.md, "The recall probe, offline").

OUT gets config.json, curve.csv (per ``--log-every`` batches: labels seen, episodes scored,
accuracy and loss over those, the reconstruction loss, seconds), result.json at the end, and
checkpoints/ every ``--checkpoint-every`` batches: a killed run resumes exactly when the command is
run again (episodes are seeded by ``--seed`` and the batch index, each batch from its own range of
seeds). ``--archive DIR`` copies a finished run's compact results (config.json, curve.csv,
result.json; no checkpoints) to DIR/<name of OUT>, also when the command is run again on a finished
run; ``--table RUN...`` prints the table of finished runs, from run directories or from the archive
alone.

    python scripts/ballet_probe.py --core hcam --out runs/ballet_probe/hcam \\
        --archive assets/results/ballet_probe/offline
    python scripts/ballet_probe.py --core hcam --batch-size 16 --curriculum 25600 \\
        --reconstruction-coef 1.0 --out runs/ballet_probe/hcam-curriculum-recon
    python scripts/ballet_probe.py --table assets/results/ballet_probe/offline/*
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.functional import cross_entropy

from memrl.agents.checkpoints import CheckpointStore, atomic_write
from memrl.agents.policy import MemoryPolicy
from memrl.agents.ppo import build_policy
from memrl.agents.ppo_config import PPOConfig
from memrl.envs.ballet import MAX_DANCERS, hint_probability, timeline
from memrl.envs.ballet_vector import BatchedBalletEnv
from memrl.memory.presets import STUDY_CORES

CORES = STUDY_CORES
"""Cores and their default options: scripts/memory_study.py's presets (the transformer's 64-step
window holds a whole 2-dancer, delay-16 episode up to its choice step: 63 observations)."""
VARIANTS = ("none", "dance")
SETTINGS = ("core", "core_kwargs", "variant", "num_dancers", "dance_delay", "labels",
            "batch_size", "learning_rate", "max_grad_norm", "reconstruction_coef",
            "curriculum", "seed")  # fmt: skip
"""What a run is: a run directory holding other settings is refused, not resumed."""
ADDED_SETTINGS = {"reconstruction_coef": 0.0, "curriculum": 0}
"""Settings added after runs were archived, and the value those runs had."""
ARCHIVED = ("config.json", "curve.csv", "result.json")
"""A finished run's compact results, what ``--archive`` keeps."""
CURVE_FIELDS = ("batches", "labels", "scored", "accuracy", "loss", "reconstruction", "seconds")
"""A curve row: ``scored`` episodes (all but those a curriculum gave the names) give the
accuracy and ``loss``, the choice's cross-entropy; ``reconstruction`` is the auxiliary loss (0
without ``--reconstruction-coef``)."""
BLOCKS = 4
"""The table gives the accuracy over this many equal parts of each run."""
BLOCK_NAME = "quarter"
"""What the table calls one of the ``BLOCKS`` parts."""


def first_episode_seed(seed: int, batch: int, batch_size: int) -> int:
    """The seed of batch ``batch``'s first episode (``env.reset`` seeds episode i with it + i).

    Batches get disjoint seed ranges, so no episode is ever trained on twice (consecutive seeds
    would share all but one episode between neighbouring batches).
    """
    return (seed * 1_000_003 + batch) * batch_size


def hinted_episodes(seed: int, batch: int, batch_size: int, curriculum: int) -> np.ndarray:
    """``[B]`` bool: which episodes of batch ``batch`` a curriculum shows the dance names.

    Drawn from a generator of its own per (seed, batch), so that a resumed run draws the same.
    """
    chance = hint_probability(batch * batch_size, curriculum)
    return np.random.default_rng([seed, batch]).random(batch_size) < chance


def episode_batch(
    env: BatchedBalletEnv, seed: int, variant: str, hinted: np.ndarray | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Fresh episodes from reset to the choice step: observations ``[T, B, ...]`` and answers.

    Args:
        env: The batched env (grid observations).
        seed: Seeds the episodes: ``env.reset(seed=seed)`` seeds episode i with ``seed + i``.
        variant: "none", or "dance" (the instruction names each dance while it is performed).
        hinted: ``[B]`` bool, with variant "none": the episodes that show the names anyway.
    """
    observation, info = env.reset(seed=seed)
    answers = torch.as_tensor(info["answer"])
    grids, instructions = [observation["grid"]], [observation["instruction"]]
    still = np.zeros(env.num_envs, dtype=np.int64)  # ignored until the choice step
    for _ in range(env.choice_step):
        observation, *_ = env.step(still)
        grids.append(observation["grid"])
        instructions.append(observation["instruction"])
    instruction = np.stack(instructions)
    shown = np.ones(env.num_envs, dtype=bool) if variant == "dance" else hinted
    if shown is not None and shown.any():
        dances = info["memory"]["dances"]  # [B, n] in performing order
        for dancer, steps in enumerate(timeline(env.num_dancers, env.dance_delay)):
            instruction[steps[:, None], shown] = dances[shown, dancer] + 1
    return {
        "grid": torch.as_tensor(np.stack(grids)),
        "instruction": torch.as_tensor(instruction),
    }, answers


def choice_logits(
    policy: MemoryPolicy, observations: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replay fresh episodes: their choice-step logits and the core's outputs.

    Returns:
        The action logits of the last step (the choice), ``[B, actions]``, and the core's outputs
        at every step, ``[T, B, width]``.
    """
    steps, batch = observations["instruction"].shape
    resets = torch.zeros(steps, batch, dtype=torch.bool)
    resets[0] = True
    dist, _, hidden = policy.evaluate_window(
        observations, policy.initial_state(batch), resets, None
    )
    return dist.logits[-1], hidden


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    core_kwargs = {**CORES[args.core], **json.loads(args.core_kwargs)}
    return {
        "core": args.core,
        "core_kwargs": core_kwargs,
        "variant": args.variant,
        "num_dancers": args.num_dancers,
        "dance_delay": args.dance_delay,
        "labels": args.labels,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "max_grad_norm": args.max_grad_norm,
        "reconstruction_coef": args.reconstruction_coef,
        "curriculum": args.curriculum,
        "seed": args.seed,
    }


def run(settings: dict[str, Any], out: Path, log_every: int, checkpoint_every: int,
        threads: int, progress: bool) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) one probe run into ``out``; its result (also OUT/result.json)."""
    config_path = out / "config.json"
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        saved = {**ADDED_SETTINGS, **saved}
        changed = sorted(k for k in SETTINGS if saved.get(k) != settings[k])
        if changed:
            raise SystemExit(
                f"{out} holds a probe run with other settings ({', '.join(changed)}: "
                f"{[saved.get(k) for k in changed]} there, {[settings[k] for k in changed]} "
                "asked); use another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(config_path, lambda p: p.write_text(json.dumps(settings, indent=2) + "\n"))
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(settings["seed"])
    batch_size = settings["batch_size"]
    env = BatchedBalletEnv(batch_size, settings["num_dancers"], settings["dance_delay"], "grid")
    recon = settings["reconstruction_coef"]
    config = PPOConfig(
        core=settings["core"], core_kwargs=settings["core_kwargs"], reconstruction_coef=recon
    )
    policy = build_policy(config, env)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings["learning_rate"])
    store = CheckpointStore(out / "checkpoints")
    done, curve, seconds = 0, [], 0.0
    if store.exists():
        _, payload = store.load(required=("policy", "optimizer", "batches", "curve", "rng"))
        policy.load_state_dict(payload["policy"])
        optimizer.load_state_dict(payload["optimizer"])
        done, curve, seconds = payload["batches"], payload["curve"], payload["seconds"]
        torch.set_rng_state(payload["rng"])
    total = -(-settings["labels"] // batch_size)
    start, window = time.perf_counter() - seconds, _empty_window()
    bar = _progress(total, done) if progress else None
    while done < total:
        hinted = hinted_episodes(settings["seed"], done, batch_size, settings["curriculum"])
        observations, answers = episode_batch(
            env,
            first_episode_seed(settings["seed"], done, batch_size),
            settings["variant"],
            hinted,
        )
        logits, hidden = choice_logits(policy, observations)
        losses = cross_entropy(logits, answers, reduction="none")
        loss = losses.mean()
        if policy.decoder is not None:
            reconstruction = policy.decoder.loss(
                hidden.flatten(0, 1), {k: v.flatten(0, 1) for k, v in observations.items()}
            )
            loss = loss + recon * reconstruction
            window["reconstruction"].append(reconstruction.item())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), settings["max_grad_norm"])
        optimizer.step()
        scored = torch.as_tensor(~hinted)
        window["correct"].append((logits.argmax(-1) == answers)[scored].sum().item())
        window["loss"].append(losses[scored].sum().item())
        window["scored"].append(int(scored.sum()))
        done += 1
        if bar is not None:
            bar.update(1)
        if done % log_every == 0 or done == total:
            curve.append({
                "batches": done,
                "labels": done * batch_size,
                "scored": sum(window["scored"]),
                "accuracy": round(sum(window["correct"]) / max(1, sum(window["scored"])), 4),
                "loss": round(sum(window["loss"]) / max(1, sum(window["scored"])), 4),
                "reconstruction": round(float(np.mean(window["reconstruction"] or [0.0])), 4),
                "seconds": round(time.perf_counter() - start, 1),
            })  # fmt: skip
            window = _empty_window()
        if done % checkpoint_every == 0 or done == total:
            store.save({
                "policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
                "batches": done, "curve": curve, "rng": torch.get_rng_state(),
                "seconds": time.perf_counter() - start,
            })  # fmt: skip
            _write_curve(out / "curve.csv", curve)
    if bar is not None:
        bar.close()
    result = {**settings, "batches": total, "curve": curve, "blocks": blocks(curve, BLOCKS)}
    atomic_write(out / "result.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
    return result


def _empty_window() -> dict[str, list[float]]:
    return {"correct": [], "loss": [], "scored": [], "reconstruction": []}


def _progress(total: int, done: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="batch", desc="probe")


def _write_curve(path: Path, curve: Sequence[dict[str, Any]]) -> None:
    def write(target: Path) -> None:
        with target.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=CURVE_FIELDS)
            writer.writeheader()
            writer.writerows(curve)

    atomic_write(path, write)


def blocks(curve: Sequence[dict[str, Any]], parts: int) -> list[dict[str, float]]:
    """The accuracy and loss over ``parts`` equal spans of a curve's rows, weighted by the
    episodes each row scored (NaN for a span that scored none)."""
    rows = list(curve)
    spans = np.array_split(np.arange(len(rows)), min(parts, len(rows)))
    out = []
    previous = 0
    for span in spans:
        chosen = [rows[i] for i in span]
        first = previous
        weights = []
        for row in chosen:
            weights.append(row.get("scored", row["labels"] - previous))  # older rows: all
            previous = row["labels"]
        if not sum(weights):
            weights = [float("nan")] * len(chosen)
        out.append({
            "from_labels": first,
            "to_labels": chosen[-1]["labels"],
            "accuracy": float(np.average([r["accuracy"] for r in chosen], weights=weights)),
            "loss": float(np.average([r["loss"] for r in chosen], weights=weights)),
        })  # fmt: skip
    return out


def _layers(core_kwargs: dict[str, Any]) -> str:
    return f" ({core_kwargs['num_layers']})" if "num_layers" in core_kwargs else ""


def table(runs: Sequence[Path]) -> str:
    """The Markdown table of finished runs (their result.json), a row per run by directory name."""
    results = []
    for path in sorted(runs, key=lambda run: Path(run).name):
        result_path = Path(path) / "result.json"
        if not result_path.exists():
            raise SystemExit(f"{path} has no result.json: the run has not finished")
        results.append({**json.loads(result_path.read_text()), "run": Path(path).name})
    parts = max(len(r["blocks"]) for r in results)
    ordinals = ("1st", "2nd", "3rd", *(f"{k}th" for k in range(4, parts + 1)))
    lines = [
        "| run | core (layers) | variant | curriculum | dancers | batch | reconstruction "
        "| labels | "
        + " | ".join(f"accuracy, {ordinals[k]} {BLOCK_NAME}" for k in range(parts))
        + " | loss, last part | seconds |",
        "|---|---|---|---|---|---|---|---|" + "---|" * parts + "---|---|",
    ]
    for r in results:
        accuracies = " | ".join(f"{b['accuracy']:.2f}" for b in r["blocks"])
        recon = r.get("reconstruction_coef", ADDED_SETTINGS["reconstruction_coef"])
        curriculum = r.get("curriculum", ADDED_SETTINGS["curriculum"])
        lines.append(
            f"| {r['run']} | {r['core']}{_layers(r['core_kwargs'])} | {r['variant']} "
            f"| {f'{curriculum:,} labels' if curriculum else '-'} "
            f"| {r['num_dancers']} | {r['batch_size']} | {recon:g} "
            f"| {r['curve'][-1]['labels']:,} | {accuracies} | {r['blocks'][-1]['loss']:.2f} "
            f"| {r['curve'][-1]['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run a probe, or print the table of finished ones."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Options and outputs: see the module docstring (python -m pydoc).",
    )
    parser.add_argument(
        "--core",
        choices=list(CORES),
        default="hcam",
        help="memory core (default: hcam, 2 layers of width 64, chunks of 16)",
    )
    parser.add_argument(
        "--core-kwargs",
        default="{}",
        help="JSON core options over the preset's, e.g. '{\"num_layers\": 4}'",
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default="none",
        help="none: the task; dance: the instruction names each dance while it "
        "is performed (recognition given away)",
    )
    parser.add_argument("--num-dancers", type=int, default=2, help="dancers (default: 2)")
    parser.add_argument("--dance-delay", type=int, default=16, help="delay (default: 16)")
    parser.add_argument(
        "--labels",
        type=int,
        default=51_200,
        help="episodes (one label each) to train on (default: 51,200)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="episodes per update")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam (default 1e-3)")
    parser.add_argument(
        "--max-grad-norm",
        type=float,
        default=0.5,
        help="gradient clipping by global norm (default: 0.5, memory PPO's)",
    )
    parser.add_argument(
        "--reconstruction-coef",
        type=float,
        default=0.0,
        help="weight of the auxiliary loss of memory PPO's --reconstruction-coef: the core's "
        "output at every step reconstructs that step's grid and instruction (default: 0, off)",
    )
    parser.add_argument(
        "--curriculum",
        type=int,
        default=0,
        metavar="LABELS",
        help="with --variant none: episodes show the dance names with a chance falling "
        "linearly from 1 to 0 over the first LABELS labels; accuracy counts the others "
        "(default: 0, no curriculum)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's)")
    parser.add_argument(
        "--log-every", type=int, default=25, help="batches per curve row (default: 25)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        help="batches per checkpoint, a multiple of --log-every (default: 50)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, help="the run's directory")
    parser.add_argument(
        "--archive",
        type=Path,
        metavar="DIR",
        help="when the run finishes, copy its config.json, curve.csv and "
        "result.json (no checkpoints) to DIR/<name of --out>: the committed "
        "one is assets/results/ballet_probe/offline",
    )
    parser.add_argument(
        "--table",
        nargs="+",
        type=Path,
        metavar="RUN",
        help="print the table of these finished runs and exit",
    )
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(table(args.table))
        return
    if args.out is None:
        parser.error("--out is required (or --table RUN...)")
    if not 1 <= args.num_dancers <= MAX_DANCERS:
        parser.error(f"--num-dancers must be 1..{MAX_DANCERS}, got {args.num_dancers}")
    if args.curriculum < 0:
        parser.error(f"--curriculum must be >= 0 labels, got {args.curriculum}")
    if args.curriculum and args.variant != "none":
        parser.error(f"--curriculum weans off the dance names: it needs --variant none, "
                     f"not {args.variant!r}")  # fmt: skip
    if args.reconstruction_coef < 0:
        parser.error(f"--reconstruction-coef must be >= 0, got {args.reconstruction_coef}")
    for name in ("labels", "batch_size", "log_every", "checkpoint_every", "dance_delay"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    try:
        extra = json.loads(args.core_kwargs)
    except json.JSONDecodeError as error:
        parser.error(f"--core-kwargs is not JSON ({error}): {args.core_kwargs!r}")
    if not isinstance(extra, dict):
        parser.error(f"--core-kwargs must be a JSON object, got {args.core_kwargs!r}")
    if args.checkpoint_every % args.log_every:
        parser.error(
            f"--checkpoint-every ({args.checkpoint_every}) must be a multiple of --log-every "
            f"({args.log_every}), so that a resumed run's curve rows are whole"
        )
    run(_settings(args), args.out, args.log_every, args.checkpoint_every, args.threads,
        not args.no_progress)  # fmt: skip
    if args.archive is not None:
        target = args.archive / args.out.name
        target.mkdir(parents=True, exist_ok=True)
        for name in ARCHIVED:
            shutil.copyfile(args.out / name, target / name)
    sys.stdout.write(table([args.out]))


if __name__ == "__main__":
    main()
