"""What ``memrl`` reads from a run directory: which trainer wrote it, and ``--resume``'s options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from memrl.agents.continual.config import ContinualConfig
from memrl.agents.l2m.offline_config import AGENTS as OFFLINE_AGENTS
from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.sb3_config import SB3Config
from memrl.cli.config_options import option_dest

SB3_AGENTS = ("sb3-ppo", "sb3-recurrent-ppo")
"""``--agent`` values that train an SB3 baseline."""


CONTINUAL_TRAINERS = ("continual SAC", "offline fine-tuning")
"""The trainers whose runs follow a task stream (``memrl eval`` reports Continual World's
metrics for them)."""


def trainer_of(config: dict[str, Any]) -> str:
    """Which trainer wrote a run's ``config.json``: offline, continual SAC, SB3 or memory PPO."""
    if config.get("offline"):
        return "offline fine-tuning"
    if "stream" in config:
        return "continual SAC"
    return "SB3" if str(config.get("agent", "")).startswith("sb3-") else "memory PPO"


def is_continual_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run over a task stream (continual SAC or offline fine-tuning)."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.exists():
        return False
    return trainer_of(json.loads(config_path.read_text())) in CONTINUAL_TRAINERS


def saved_config(out: str) -> dict[str, Any] | None:
    """The settings of the run ``--resume`` continues in ``out`` (None before its config.json).

    Says so when the run has no checkpoint yet (every trainer keeps them in
    ``RUN_DIR/checkpoints/``): it then starts from the beginning.

    Raises:
        FileNotFoundError: ``out`` does not exist.
    """
    run_dir = Path(out)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"--resume: {run_dir} does not exist, so there is no run to resume; drop --resume to "
            "start a run there"
        )
    checkpoints = run_dir / "checkpoints"
    if not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        print(f"note: {run_dir} has no checkpoint yet: the run starts from step 0", file=sys.stderr)
    config_path = run_dir / "config.json"
    return json.loads(config_path.read_text()) if config_path.exists() else None


def resume_options(args: argparse.Namespace) -> None:
    """Check ``--resume``'s run directory and give every option not on the command line its value.

    The directory must exist and, if it names its trainer (``config.json``), be one this
    command trains; that file then supplies the run's settings, and options given on the command
    line keep their values (a trainer refuses a change that would alter learning). Says so when
    the run has no checkpoint yet (every trainer keeps them in ``RUN_DIR/checkpoints/``).

    Raises:
        FileNotFoundError: ``--out`` does not exist.
        ValueError: The run was written by another trainer than the one the options ask for.
    """
    saved = saved_config(args.out)
    if saved is None:
        return
    run_dir = Path(args.out)
    found = trainer_of(saved)
    if args.offline:
        wanted = "offline fine-tuning"
    elif args.stream:
        wanted = "continual SAC"
    elif args.agent in OFFLINE_AGENTS:
        wanted = "offline fine-tuning"
    elif args.agent:
        wanted = "SB3" if args.agent in SB3_AGENTS else "memory PPO"
    else:  # --env alone, or nothing: whichever trainer wrote the run (--env: not a stream's)
        wanted = "memory PPO" if args.env and found in CONTINUAL_TRAINERS else found
    if found != wanted:
        raise ValueError(
            f"--resume: {run_dir} holds a {found} run, and this command trains {wanted}; "
            "resume it with its own trainer (`memrl train --out RUN_DIR --resume` alone "
            "takes every option from the run)"
        )
    fields = {
        "offline fine-tuning": OfflineConfig.__dataclass_fields__,
        "continual SAC": ContinualConfig.__dataclass_fields__,
        "SB3": SB3Config.__dataclass_fields__,
        "memory PPO": PPOConfig.__dataclass_fields__,
    }[found]
    if found == "SB3":
        saved["algorithm"] = saved["agent"]  # --agent sb3-ppo, not the field's "ppo"
    args.offline = found == "offline fine-tuning"
    for name in fields:
        dest = option_dest(name)
        if name in saved and getattr(args, dest, None) is None:
            setattr(args, dest, saved[name])
