"""``memrl pretrain``: train the multi-domain Decision Transformer offline on Minari datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memrl.agents.pretrained.pretrain_config import PretrainConfig
from memrl.cli.config_options import (
    add_dataclass_arguments,
    dataclass_from_arguments,
    option_dest,
    option_name,
)
from memrl.cli.run_dir import saved_config

HAND_WRITTEN = ("data", "tasks")
"""PretrainConfig fields whose options are written here rather than generated."""


def _task_names(text: str) -> list[str]:
    """``--tasks``' comma-separated task names or list names.

    Raises:
        ValueError: No name in ``text``.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"--tasks must name at least one task, got {text!r}")
    return names


def add_parser(subparsers: Any) -> None:
    """Add ``memrl pretrain`` to the command's subparsers."""
    p = subparsers.add_parser(
        "pretrain",
        help="train the multi-domain Decision Transformer offline on Minari datasets",
        description=(
            "Train memrl's multi-domain Decision Transformer (the frozen model L2M modulates) "
            "offline on memrl's Minari datasets: Meta-World scripted episodes (`memrl data "
            "collect`) and dm_control replay buffers, found under every --data directory. By "
            "default it trains on every task of the pretraining split found there (MT40 and the "
            "dm_control pretraining tasks); --tasks names others. Every task is sampled equally "
            "often, whatever the size of its data. The run directory gets config.json, "
            "tasks.json (the task table: index, domain, data, target return), metrics.csv and "
            "TensorBoard events (tb/), checkpoints/latest.pt and previous.pt, and at the end "
            "model.safetensors (the model and its task table; memrl.agents.pretrained.load_model "
            "reads it) and evaluation.json (every task played online: Meta-World success rate, "
            "dm_control return). `memrl pretrain --out RUN_DIR --resume` continues a killed run "
            "from its last checkpoint, exactly, with the options it was started with."
        ),
    )
    p.add_argument(
        "--data",
        nargs="+",
        metavar="DIR",
        help="datasets directories, searched recursively (e.g. the --out of `memrl data "
        "collect`); a task's datasets in several directories pool into one task",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument(
        "--tasks",
        metavar="A,B,...",
        help="tasks to train on, comma-separated: task names (reach-v3, cheetah-run) or lists "
        "that stand for their tasks (MT40, DMC-pretrain, L2M-pretrain); default: every task of "
        "the pretraining split found in --data",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUN_DIR from its last checkpoint, with the options it was "
        "started with (given options replace them where they do not change what is learnt: "
        "--data's location, --checkpoint-every, --log-every, --eval-episodes, --tensorboard, "
        "--threads)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_dataclass_arguments(
        p.add_argument_group("training options (defaults: L2M's recipe, memrl's CPU model)"),
        PretrainConfig,
        skip=HAND_WRITTEN,
    )
    p.set_defaults(func=run)


def _resume_options(args: argparse.Namespace) -> None:
    """Give every option not on the command line the value the run was started with.

    Raises:
        FileNotFoundError: ``--out`` does not exist.
        ValueError: ``--out`` holds a run of another trainer.
    """
    saved = saved_config(args.out)
    if saved is None:
        return
    run_dir = Path(args.out)
    if not {"data", "context_steps", "eval_episodes"} <= set(saved):
        raise ValueError(
            f"--resume: {run_dir} holds a run of another trainer, not `memrl pretrain`'s; "
            "resume it with its own command"
        )
    for name in PretrainConfig.__dataclass_fields__:
        if name in saved and getattr(args, option_dest(name), None) is None:
            setattr(args, option_dest(name), saved[name])


def run(args: argparse.Namespace) -> int:
    """Pretrain, export ``model.safetensors``, print the per-task evaluation."""
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"--out {args.out} is a file; give a run directory")
    if args.resume:
        _resume_options(args)
    if not args.data:
        raise ValueError("memrl pretrain needs --data DIR [DIR ...]: the datasets directories")
    if isinstance(args.tasks, str):  # as typed (a resumed run's are a list already)
        args.tasks = _task_names(args.tasks)
    args.data = [str(Path(directory).absolute()) for directory in args.data]
    config = dataclass_from_arguments(PretrainConfig, args)
    config.validate(option_name)  # before torch loads: a mistake is named at once
    from memrl.agents.pretrained.evaluation import results_table
    from memrl.agents.pretrained.training import PretrainTrainer

    trainer = PretrainTrainer(
        config, args.out, resume=args.resume, progress=not args.no_progress, name=option_name
    )
    result = trainer.train()
    resumed = f", resumed at update {result.start_update}" if result.start_update else ""
    print(
        f"pretrained the MDDT on {len(trainer.data.tasks)} tasks for {result.updates} updates"
        f"{resumed} -> {result.model_path}"
    )
    if result.evaluation is not None:
        print(results_table(result.evaluation))
    return 0
