"""``memrl data WHAT``: offline trajectories as Minari datasets (collect, experts, export, info)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from memrl.cli.arguments import non_negative_int, positive_int

TASKS_HELP = (
    "Meta-World v3 tasks, comma-separated: task names (hammer-v3) or lists that stand for their "
    "tasks (MT50, MT40, CW10); default MT50"
)


def _noise_levels(text: str) -> tuple[float, ...]:
    """Comma-separated noise standard deviations, each a number >= 0."""
    levels = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be numbers >= 0 separated by commas, got {text!r}"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be numbers >= 0 (finite), got {part!r}")
        levels.append(value)
    return tuple(levels)


def _fraction(text: str) -> float:
    """A number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def add_parser(subparsers: Any) -> None:
    """Add ``memrl data`` and its actions to the command's subparsers."""
    from memrl.data.collect import (
        DEFAULT_EPISODES_PER_TASK,
        DEFAULT_NOISE_LEVELS,
        DEFAULT_RANDOM_FRACTION,
    )

    p = subparsers.add_parser(
        "data",
        help="offline trajectories: collect, measure the scripted experts, inspect a dataset",
    )
    data = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    levels = ",".join(f"{x:g}" for x in DEFAULT_NOISE_LEVELS)
    c = data.add_parser(
        "collect",
        help="record Meta-World scripted-expert episodes into Minari datasets",
        description=(
            "Play Meta-World's scripted experts (metaworld.policies) under memrl's protocol "
            "(200-step episodes, positions re-sampled at every reset) with Gaussian action noise "
            "at several levels, plus some episodes of random actions, and write one Minari "
            "dataset per task under --out (memrl/metaworld/<task>/scripted-v0). Each dataset's "
            "metadata holds the success per noise level of what was collected. A killed run "
            "resumes when run again: complete tasks are skipped, a half-written one is redone. "
            "Load a dataset with memrl.data.load_episodes(PATH), or with "
            "MINARI_DATASETS_PATH=OUT and minari.load_dataset(ID). About 27 minutes for MT50 at "
            "the default size on one core here."
        ),
    )
    c.add_argument("--tasks", default="MT50", metavar="A,B,...", help=TASKS_HELP)
    c.add_argument("--out", required=True, metavar="DIR", help="datasets directory")
    c.add_argument(
        "--episodes-per-task",
        type=positive_int,
        default=DEFAULT_EPISODES_PER_TASK,
        help="episodes per task (default: %(default)s)",
    )
    c.add_argument(
        "--noise-levels",
        type=_noise_levels,
        default=DEFAULT_NOISE_LEVELS,
        metavar="S1,S2,...",
        help=f"standard deviations of the action noise, 0 = the expert (default: {levels})",
    )
    c.add_argument(
        "--random-fraction",
        type=_fraction,
        default=DEFAULT_RANDOM_FRACTION,
        help="fraction of episodes with uniformly random actions (default: %(default)s)",
    )
    c.add_argument("--seed", type=non_negative_int, default=0, help="seed (default: 0)")
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    c.set_defaults(func=run_collect)

    e = data.add_parser(
        "experts",
        help="success of Meta-World's scripted experts, per task and noise level",
        description=(
            "Measure the success of Meta-World's scripted experts under memrl's protocol, with "
            "and without action noise; the levels of a task play the same layouts. Tasks whose "
            "noise-free success is below 0.8 are listed as weak."
        ),
    )
    e.add_argument("--tasks", default="MT50", metavar="A,B,...", help=TASKS_HELP)
    e.add_argument("--episodes", type=positive_int, default=20, help="episodes per task and level")
    e.add_argument(
        "--noise-levels",
        type=_noise_levels,
        default=(0.0,),
        metavar="S1,S2,...",
        help="noise standard deviations to measure (default: 0)",
    )
    e.add_argument("--random", action="store_true", help="also measure random actions")
    e.add_argument("--seed", type=non_negative_int, default=0, help="seed (default: 0)")
    e.add_argument("--json", metavar="FILE", help="also write the table to FILE")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.set_defaults(func=run_experts)

    x = data.add_parser(
        "export-sac",
        help="write a single-task continual-SAC run's whole replay buffer as a Minari dataset",
        description=(
            "Read the replay buffer of a single-task `memrl train --stream ... --method finetune` "
            "run (its latest intact checkpoint) and write every stored transition, oldest first, "
            "episode by episode in the task's own spaces, as the Minari dataset "
            "memrl/<domain>/<task>/sac-replay-v0 under --out: L2M's pre-training data for tasks "
            "without scripted experts. The run's evaluation returns go into the metadata."
        ),
    )
    x.add_argument("run_dir", metavar="RUN_DIR", help="a single-task continual-SAC run directory")
    x.add_argument("--out", required=True, metavar="DIR", help="datasets directory")
    x.add_argument(
        "--dataset-id",
        default=None,
        metavar="ID",
        help="Minari id (default: memrl/<domain>/<task>/sac-replay-v0)",
    )
    x.set_defaults(func=run_export_sac)

    i = data.add_parser(
        "info",
        help="summarise a Minari dataset (memrl's or anyone's)",
        description="Load a Minari dataset (a directory, its data/ folder, or an id found under "
        "--datasets-path) and print its episodes, steps, spaces and memrl's metadata.",
    )
    i.add_argument("dataset", metavar="PATH_OR_ID", help="dataset directory or Minari id")
    i.add_argument(
        "--datasets-path", metavar="DIR", help="where to look up an id (default: Minari's)"
    )
    i.set_defaults(func=run_info)


def _task_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run_collect(args: argparse.Namespace) -> int:
    """Collect the datasets and print where they are."""
    from memrl.data import collect_metaworld

    paths = collect_metaworld(
        _task_list(args.tasks),
        args.out,
        episodes_per_task=args.episodes_per_task,
        noise_levels=args.noise_levels,
        random_fraction=args.random_fraction,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(f"{len(paths)} datasets under {Path(args.out).absolute()}")
    return 0


def run_experts(args: argparse.Namespace) -> int:
    """Measure the experts and print a table (and write JSON)."""
    from memrl.data import scripted_success

    table = scripted_success(
        _task_list(args.tasks),
        episodes=args.episodes,
        noise_levels=args.noise_levels,
        include_random=args.random,
        seed=args.seed,
        progress=not args.no_progress,
    )
    success: dict[str, dict[str, float]] = table["success"]
    names = list(next(iter(success.values())))
    print(f"{'task':<32}" + "".join(f"{n:>12}" for n in names))
    for task, row in success.items():
        print(f"{task:<32}" + "".join(f"{row[n]:>12.2f}" for n in names))
    if table.get("weak_tasks"):
        print(f"weak experts (success < 0.8): {', '.join(table['weak_tasks'])}")
    if args.json:
        report = {"command": "memrl " + " ".join(args.argv), **table}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def run_export_sac(args: argparse.Namespace) -> int:
    """Export the run's replay buffer and print where it went."""
    from memrl.agents.continual.replay_export import export_sac_replay

    path = export_sac_replay(args.run_dir, args.out, dataset_id=args.dataset_id)
    print(f"wrote {path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a summary of one dataset."""
    from memrl.data import load_episodes

    dataset = load_episodes(args.dataset, datasets_path=args.datasets_path)
    steps = sum(len(e.actions) for e in dataset.episodes)
    first = dataset.episodes[0] if dataset.episodes else None
    print(f"dataset    {dataset.dataset_id}")
    print(f"path       {dataset.path}")
    print(f"episodes   {len(dataset)}")
    print(f"steps      {steps}")
    if first is not None:
        print(f"observation {first.observations.shape[1:]}  action {first.actions.shape[1:]}")
    memrl = dataset.metadata.get("memrl")
    if memrl:
        print("memrl      " + json.dumps(memrl, sort_keys=True))
    return 0
