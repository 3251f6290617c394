"""``memrl sweep SPEC.toml``: a grid of ``memrl train`` runs on Ray Tune (local or a cluster)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import textwrap
from pathlib import Path
from typing import Any

from memrl.agents.continual.config import ContinualConfig
from memrl.agents.l2m.offline_config import AGENTS as OFFLINE_AGENTS
from memrl.agents.l2m.offline_config import SHIPPED_PRETRAINED, OfflineConfig
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.sb3_config import SB3Config
from memrl.cli.arguments import CommandParser
from memrl.cli.config_options import dataclass_from_arguments, option_dest, option_name
from memrl.cli.run_dir import SB3_AGENTS

SCHEMA = """\
SPEC (TOML):

  [sweep]
  name = "recall"          # default: the SPEC's file name; --out defaults to runs/sweeps/NAME
  max_failures = 2         # retries of a trial that raises (default 2)
  max_concurrent = 4       # at most this many trials at once (default: as the CPUs allow)

  [resources]
  cpus = 1                 # CPUs per trial (default 1)

  [train]                  # options of every trial: any `memrl train` option, named as the
  env = "memrl/DelayedMatch-v0"   # option without its dashes; true/false for flags
  steps = 1_500_000               # (tensorboard = false); a table for a JSON option
  env_kwargs = {delay = [0, 128], num_symbols = 4}

  [grid]                   # lists are crossed: one trial per combination
  agent = ["hcam", "lstm"]
  seed = [0, 1, 2]

  [eval]                   # optional: `memrl eval RUN_DIR` options, run after training
  episodes = 100

[[grid]] blocks (an array of tables) are crossed one by one, each with [train]: a scalar in a
block is an option of that block only, and trial_name = "reference/{tasks}/seed{seed}" names a
block's trials (default: each crossed key as key-value, joined by _). Continual runs use stream,
method, tasks, steps_per_task, ...; memory runs env, agent, steps, ... (see memrl train --help).
Every option is checked against memrl train's parser and its trainer's config before anything
starts: an unknown option or value, a value of the wrong type or a negative seed is an error
naming the SPEC key and what is allowed.

Each trial is an ordinary run directory, SWEEP_DIR/trials/<trial name> (memrl eval and
memrl train --resume work on it alone), with sweep_trial.json (its status) and sweep_trial.log
(what it printed). SWEEP_DIR also holds spec.toml, sweep.json (the summary, kept current while
the sweep runs) and ray/ (Ray Tune's results); Ray's session files stay in its temporary
directory (/tmp/ray). The command exits 1 if a trial failed or did not finish. More in
docs/SWEEPS.md.
"""

TRAINER_OPTIONS = {
    "memory PPO": ("env", "agent", "steps", "seed"),
    "SB3": ("env", "agent", "steps", "seed", "frame_stack"),
    "continual SAC": ("stream", "method", "steps_per_task", "tasks", "seed"),
    "offline fine-tuning": ("offline", "stream", "tasks", "agent", "data", "pretrained", "seed"),
}
"""Hand-written `memrl train` options each trainer reads, besides its config's fields."""
CONFIGS: dict[str, Any] = {
    "memory PPO": PPOConfig,
    "SB3": SB3Config,
    "continual SAC": ContinualConfig,
    "offline fine-tuning": OfflineConfig,
}
"""Each trainer's config."""
CONTINUAL_TRAINERS = ("continual SAC", "offline fine-tuning")
"""Trainers whose runs `memrl eval` reports from their training evaluations."""


def add_parser(subparsers: Any) -> None:
    """Add ``memrl sweep`` to the command's subparsers."""
    p = subparsers.add_parser(
        "sweep",
        help="run a grid of memrl train runs (agents x seeds x envs or streams) on Ray Tune",
        description=textwrap.fill(
            "Runs every trial of the grid that SPEC names on Ray Tune: on a local Ray instance "
            "with this machine's cores, or on the cluster of --address. A trial that raises is "
            "retried, then reported while the others go on; --resume skips the trials that "
            "finished and continues the others from their checkpoints. At the end it prints a "
            "line per trial; `memrl report SWEEP_DIR` makes one table of the runs.",
            width=96,
        )
        + "\n\n"
        + SCHEMA,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", metavar="SPEC", help="the sweep's TOML file")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="a running Ray cluster (auto: the one `ray start` made on this machine; "
        "HOST:6379); default: start Ray here on every core",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in SWEEP_DIR: finished trials are not run again, interrupted "
        "ones continue from their checkpoints",
    )
    p.add_argument(
        "--out",
        metavar="SWEEP_DIR",
        help="the sweep directory (default: runs/sweeps/NAME, NAME the SPEC's)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the SPEC, run its trials on Ray Tune, print a line per trial."""
    from memrl.sweep.runner import run_sweep
    from memrl.sweep.spec import load_spec

    parsers = command_parsers()
    spec = load_spec(
        args.spec,
        parsers["train"],
        parsers["eval"],
        check=lambda trial: check_trial(trial, parsers["train"], parsers["eval"]),
    )
    if importlib.util.find_spec("ray") is None:
        raise ValueError("memrl sweep runs on Ray Tune, which is not installed: "
                         "pip install 'memrl[ray]'")  # fmt: skip
    from memrl.cli import main

    out = Path(args.out) if args.out else Path("runs") / "sweeps" / spec.name
    result = run_sweep(spec, out, command=main, address=args.address, resume=args.resume)
    print(result.table())
    return 1 if result.failed else 0


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``memrl train`` and ``memrl eval``, as the ``memrl`` command builds them."""
    subparsers = CommandParser(prog="memrl").add_subparsers()
    for name in ("train", "eval"):
        importlib.import_module(f"memrl.cli.commands.{name}").add_parser(subparsers)
    return dict(subparsers.choices)


def check_trial(
    trial: Any, train_parser: argparse.ArgumentParser, eval_parser: argparse.ArgumentParser
) -> None:
    """Check a trial as ``memrl train`` would before it trains, without training.

    The trainer its options select must read every option given, and its config must validate.

    Raises:
        ValueError: An option the trainer does not read, or a config that does not validate;
            the message names the SPEC keys.
    """
    args = train_parser.parse_args([*trial.train_arguments, "--out", "RUN_DIR"])
    trainer = trainer_of(args, trial)
    dests = {key: train_parser._option_string_actions["--" + key.replace("_", "-")].dest
             for key in trial.options}  # fmt: skip
    wrong = [key for key in trial.options if dests[key] not in _reads(trainer)]
    if wrong:
        others = [
            name
            for name in CONFIGS
            if name != trainer and all(dests[key] in _reads(name) for key in wrong)
        ]
        where = ", ".join(trial.where(key) for key in wrong)
        which = f"; options of {' and '.join(others)}" if others else ""
        given = ", ".join(_given(trial, TRAINER_OPTIONS[trainer][:2]))
        raise ValueError(
            f"{where}: not {'an option' if len(wrong) == 1 else 'options'} of {trainer}, which "
            f"this trial trains ({given}){which}"
        )
    try:
        _config(trainer, args).validate(option_name)
    except ValueError as error:
        raise ValueError(_naming_keys(str(error), trial)) from None
    if trial.eval_arguments is not None:
        _check_eval(trial, trainer, eval_parser)


def _reads(trainer: str) -> set[str]:
    """The options (destinations) that ``memrl train`` reads for ``trainer``."""
    fields = CONFIGS[trainer].__dataclass_fields__
    return {*TRAINER_OPTIONS[trainer], *map(option_dest, fields)}


def trainer_of(args: argparse.Namespace, trial: Any) -> str:
    """Which trainer ``memrl train`` runs for these options (as its ``run`` decides).

    Raises:
        ValueError: Neither an env nor a stream, or an offline agent without ``offline``.
    """
    if args.offline:
        return "offline fine-tuning"
    if args.agent in OFFLINE_AGENTS:
        raise ValueError(
            f"{trial.where('agent')} = {args.agent!r} fine-tunes the pretrained model offline: "
            "add offline = true (with stream and data)"
        )
    if args.stream:
        return "continual SAC"
    if not args.env:
        raise ValueError("memrl train needs env (memory agents, SB3) or stream (continual SAC)")
    return "SB3" if args.agent in SB3_AGENTS else "memory PPO"


def _config(trainer: str, args: argparse.Namespace) -> Any:
    """The trainer's config from the options, with ``memrl train``'s defaults."""
    if args.seed is None:
        args.seed = 0
    if trainer == "continual SAC":
        return dataclass_from_arguments(ContinualConfig, args)
    if trainer == "offline fine-tuning":
        args.pretrained = str(Path(args.pretrained or SHIPPED_PRETRAINED).absolute())
        return dataclass_from_arguments(OfflineConfig, args)
    args.agent = args.agent or "lstm"
    args.steps = args.steps or 200_000
    if trainer == "SB3":
        return dataclass_from_arguments(SB3Config, args, algorithm=args.agent.removeprefix("sb3-"))
    return dataclass_from_arguments(PPOConfig, args)


def _check_eval(trial: Any, trainer: str, eval_parser: argparse.ArgumentParser) -> None:
    """Refuse ``[eval]`` options that ``memrl eval`` refuses for this kind of run."""
    args = eval_parser.parse_args(["RUN_DIR", *trial.eval_arguments])
    if trainer in CONTINUAL_TRAINERS:
        wrong = [f"[eval] {name}" for name in ("episodes", "seed")
                 if getattr(args, name) is not None]  # fmt: skip
        wrong += ["[eval] deterministic"] if args.deterministic else []
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: memrl eval scores {trainer} runs from the evaluations "
                "made during training (eval_episodes, eval_deterministic in [train] or [grid])"
            )
    elif args.reference is not None:
        raise ValueError("[eval] reference applies to continual runs (stream) only")


def _given(trial: Any, keys: tuple[str, ...]) -> list[str]:
    """``key = value`` of the keys among ``keys`` that the trial sets."""
    return [f"{key} = {trial.options[key]!r}" for key in keys if key in trial.options]


def _naming_keys(message: str, trial: Any) -> str:
    """A config's message with the SPEC keys of the options it names."""
    options = dict.fromkeys(re.findall(r"--[a-z][a-z0-9-]*", message))
    keys = [key for key in (o[2:].replace("-", "_") for o in options) if key in trial.options]
    return f"{message} (SPEC: {', '.join(trial.where(key) for key in keys)})" if keys else message
