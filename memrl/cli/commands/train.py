"""``memrl train``: memory PPO or SB3 on an env, continual SAC or offline fine-tuning on a stream.

Offline fine-tuning (``--offline``) trains the pretrained Decision Transformer with L2M or one of
its baselines on each task's offline data, task after task.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memrl.agents.continual.config import METHODS, STREAMS, ContinualConfig
from memrl.agents.l2m.offline_config import AGENTS as OFFLINE_AGENTS
from memrl.agents.l2m.offline_config import DEFAULT_PRETRAINED, SHIPPED_PRETRAINED, OfflineConfig
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.sb3_config import SB3Config
from memrl.cli.arguments import env_id, integer, non_negative_int, positive_int
from memrl.cli.config_options import (
    add_dataclass_arguments,
    add_shared_arguments,
    dataclass_from_arguments,
    option_name,
)
from memrl.cli.run_dir import SB3_AGENTS, resume_options

MEMORY_AGENTS = ("hcam", "sat-fifo", "sat-pm", "sat-ama", "transformer", "lstm", "gru", "none")
"""``--agent`` values that train with memrl's memory PPO."""
CONTINUAL_SKIP = ("stream", "method", "steps_per_task", "tasks", "seed")
"""ContinualConfig fields with hand-written options (or the shared ``--seed``)."""
PPO_SKIP = ("env_id", "core", "total_steps", "seed")
"""PPOConfig fields set by ``--env``, ``--agent``, ``--steps`` and ``--seed``."""
SHARED_OPTIONS = tuple(
    name for name in ContinualConfig.__dataclass_fields__
    if name in PPOConfig.__dataclass_fields__ and name != "seed"
)  # fmt: skip
"""Fields of both configs (learning rate, gamma, ...): one option each, read by whichever trains."""
OFFLINE_HAND_WRITTEN = ("agent", "stream", "tasks", "seed", "data", "pretrained")
"""OfflineConfig fields with hand-written options (or options of the other trainers)."""
OFFLINE_SHARED = tuple(
    name for name in OfflineConfig.__dataclass_fields__
    if name not in OFFLINE_HAND_WRITTEN
    and (name in ContinualConfig.__dataclass_fields__ or name in PPOConfig.__dataclass_fields__)
)  # fmt: skip
"""OfflineConfig fields that continual SAC or memory PPO have too (--eval-episodes, --l2-coef,
--learning-rate, ...): one option each, read by whichever trains."""


def add_parser(subparsers: Any) -> None:
    """Add ``memrl train`` to the command's subparsers."""
    p = subparsers.add_parser(
        "train",
        help="train a memory agent on an env (--env), continual SAC on a task stream (--stream), "
        "or fine-tune the pretrained model offline on a stream (--offline)",
        description="With --env: train a memory agent with memrl's memory PPO (hcam, sat-*, "
        "transformer, lstm, gru, none) or an SB3 baseline (sb3-ppo, sb3-recurrent-ppo). With "
        "--stream: train continual SAC (Continual World's recipe) on a task stream with one "
        "continual-learning method, evaluating every task every --eval-every steps. With "
        "--offline (--stream CW10): fine-tune the pretrained multi-domain Decision Transformer "
        "(--pretrained, `memrl pretrain`) task after task on each task's offline data (--data) "
        "with L2M or a baseline (--agent l2m, l2m-oracle, l2p, ft, lora, l2, ewc, multitask), "
        "playing every task, held-out task and a sample of pretraining tasks online in the real "
        "envs --evaluations-per-task times per task. The run directory gets config.json, "
        "metrics.csv, TensorBoard events (tb/) and checkpoints/ (stream runs also "
        "evaluations.json, which `memrl eval RUN_DIR` turns into Continual World's metrics); "
        "`memrl train --out RUN_DIR --resume` continues a killed run from its last checkpoint with "
        "the options it was started with (a changed option that would change what is learnt is "
        "refused; a larger --steps extends it).",
    )
    p.add_argument("--env", type=env_id, metavar="ID", help="env id (memory agents, SB3)")
    p.add_argument(
        "--agent",
        choices=MEMORY_AGENTS + SB3_AGENTS + OFFLINE_AGENTS,
        default=None,
        help="agent (default lstm); with --offline one of "
        + ", ".join(OFFLINE_AGENTS)
        + " (default l2m)",
    )
    p.add_argument(
        "--steps", type=positive_int, default=None, help="env steps to train for (default 200000)"
    )
    p.add_argument("--seed", type=integer, default=None, help="seed (default: 0)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUN_DIR from its last checkpoint, with the options it was "
        "started with (options given here replace them, as far as they do not change what is "
        "learnt; --steps can extend a run); RUN_DIR must exist, and a run killed before its "
        "first checkpoint starts over",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--frame-stack",
        type=non_negative_int,
        default=None,
        help="sb3-ppo only: stack this many observations (default: none)",
    )
    continual = p.add_argument_group(
        "continual SAC options (with --stream; defaults are the Continual World recipe)"
    )
    continual.add_argument(
        "--stream",
        choices=STREAMS,
        metavar="NAME",
        help=f"task stream: {', '.join(STREAMS)}",
    )
    continual.add_argument(
        "--method", choices=METHODS, default=None,
        help="continual-learning method (default finetune)",
    )  # fmt: skip
    continual.add_argument(
        "--steps-per-task", type=positive_int, default=None,
        help="env steps per stage (default: the stream's own; Continual World: 1,000,000)",
    )  # fmt: skip
    continual.add_argument(
        "--tasks",
        metavar="A,B,...",
        help="replace the stream's tasks (Meta-World v3 or dm_control names, or list names "
        "such as MT40 that stand for their tasks; tasks of different spaces share the widest, "
        "zero-padded observation and action); with --offline too",
    )
    add_dataclass_arguments(
        continual, ContinualConfig, skip=CONTINUAL_SKIP + SHARED_OPTIONS + OFFLINE_SHARED
    )
    offline = p.add_argument_group(
        "offline fine-tuning options (with --offline; defaults: L2M's recipe on memrl's CPU model)"
    )
    offline.add_argument(
        "--offline",
        action="store_true",
        help="fine-tune the pretrained Decision Transformer offline on the stream's tasks "
        "(--stream CW10, the default) with --agent " + ", ".join(OFFLINE_AGENTS),
    )
    offline.add_argument(
        "--pretrained",
        metavar="FILE",
        help="the pretrained model, model.safetensors of `memrl pretrain` (default: the shipped "
        f"{DEFAULT_PRETRAINED} of memrl's checkout, from any working directory)",
    )
    offline.add_argument(
        "--data",
        nargs="+",
        metavar="DIR",
        help="datasets directories holding the tasks' offline data, searched recursively (the "
        "--out of `memrl data collect`); l2m also trains its identity keys on the pretraining "
        "tasks found there",
    )
    add_dataclass_arguments(offline, OfflineConfig, skip=OFFLINE_HAND_WRITTEN + OFFLINE_SHARED)
    add_dataclass_arguments(
        p.add_argument_group("memory PPO options", _sb3_options_note()),
        PPOConfig,
        skip=PPO_SKIP + SHARED_OPTIONS,
    )
    add_shared_arguments(
        p.add_argument_group(
            "options of several trainers (each reads its own meaning and default)"
        ),
        {
            "memory PPO": PPOConfig,
            "SB3 baselines": SB3Config,
            "continual SAC": ContinualConfig,
            "offline fine-tuning": OfflineConfig,
        },  # fmt: skip
        SHARED_OPTIONS + tuple(name for name in OFFLINE_SHARED if name not in SHARED_OPTIONS),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train with the trainer the options name (``--stream``: continual SAC; ``--agent``)."""
    progress = not args.no_progress
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"--out {args.out} is a file; give a run directory")
    if args.resume:
        resume_options(args)
    args.seed = 0 if args.seed is None else args.seed
    continual_only, ppo_only = _mode_options()
    if args.offline:
        return _train_offline(args, progress)
    wrong = _given(args, _offline_only())
    if args.agent in OFFLINE_AGENTS or wrong:
        flags = ([f"--agent {args.agent}"] if args.agent in OFFLINE_AGENTS else []) + wrong
        raise ValueError(
            f"{', '.join(flags)} {_apply(flags)} only to offline fine-tuning of the pretrained "
            "model: add --offline (memrl train --offline --stream CW10 --agent AGENT --data DIR)"
        )
    if args.stream:
        wrong = _given(args, ppo_only)
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} {_apply(wrong)} only to memory PPO / SB3 training, not "
                "with --stream; "
                "continual SAC's options are listed under 'continual SAC options' in "
                "`memrl train --help`"
            )
        return _train_continual(args, progress)
    if not args.env:
        print(
            "error: memrl train needs --env ID (or --stream NAME for continual SAC)",
            file=sys.stderr,
        )
        return 2
    wrong = _given(args, continual_only)
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} {_apply(wrong)} only to continual SAC: add --stream NAME"
        )
    args.agent = args.agent or "lstm"
    args.steps = args.steps or 200_000
    if args.agent in SB3_AGENTS:
        return _train_sb3(args, progress)
    return _train_memory_ppo(args, progress)


def _train_memory_ppo(args: argparse.Namespace, progress: bool) -> int:
    """Train a memory agent with memrl's memory PPO."""
    if args.frame_stack is not None:
        raise ValueError(
            f"--frame-stack applies only to --agent sb3-ppo (SB3's PPO on stacked observations); "
            f"{args.agent} remembers with its memory core: drop --frame-stack"
        )
    config = dataclass_from_arguments(PPOConfig, args)
    config.validate(option_name)  # before torch loads: a mistake is named at once
    from memrl.agents.ppo import PPOTrainer

    trainer = PPOTrainer(config, args.out, resume=args.resume, progress=progress)
    start_step = trainer.global_step
    metrics = trainer.train()
    success = metrics.get("charts/success_rate")
    tail = f", last success rate {success:.2f}" if success is not None else ""
    print(_trained(args, start_step, trainer.global_step, config.batch_steps, tail))
    return 0


def _train_sb3(args: argparse.Namespace, progress: bool) -> int:
    """Train an SB3 baseline; memory PPO's options without an SB3 equivalent are refused."""
    wrong = _given(args, _memory_ppo_only())
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} {_apply(wrong)} only to memory PPO agents "
            f"({', '.join(MEMORY_AGENTS)}): SB3's PPO and RecurrentPPO have no such setting, so "
            f"{args.agent} cannot honour {'it' if len(wrong) == 1 else 'them'}"
        )
    config = dataclass_from_arguments(SB3Config, args, algorithm=args.agent.removeprefix("sb3-"))
    config.validate(option_name)
    from memrl.agents.sb3_baselines import train_sb3

    result = train_sb3(config, args.out, resume=args.resume, progress=progress)
    final = f", final model {result.final}"
    print(_trained(args, result.start_step, result.steps, config.batch_steps, final))
    return 0


def _train_continual(args: argparse.Namespace, progress: bool) -> int:
    """Train continual SAC on a task stream."""
    config = dataclass_from_arguments(ContinualConfig, args)
    config.validate(option_name)
    from memrl.agents.continual.trainer import train_continual

    result = train_continual(config, args.out, resume=args.resume, progress=progress)
    stream = config.build_stream().name
    print(f"trained continual SAC ({config.method}) on {stream} -> {args.out}: {result}")
    return 0


def _train_offline(args: argparse.Namespace, progress: bool) -> int:
    """Fine-tune the pretrained model offline on a stream with an L2M agent or baseline."""
    _, ppo_only = _mode_options()
    wrong = _given(args, [name for name in ppo_only if name != "agent"])
    wrong += _given(args, [name for name in ContinualConfig.__dataclass_fields__
                           if name not in OfflineConfig.__dataclass_fields__])  # fmt: skip
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} {_apply(wrong)} not to offline fine-tuning (--offline); its "
            "options are listed under 'offline fine-tuning options' in `memrl train --help`"
        )
    if args.agent is not None and args.agent not in OFFLINE_AGENTS:
        raise ValueError(
            f"--offline fine-tunes the pretrained model with --agent {', '.join(OFFLINE_AGENTS)}; "
            f"got --agent {args.agent}, which trains on an env: drop --offline and give --env"
        )
    args.pretrained = str(Path(args.pretrained or SHIPPED_PRETRAINED).absolute())
    if args.data:
        args.data = [str(Path(directory).absolute()) for directory in args.data]
    config = dataclass_from_arguments(OfflineConfig, args)
    config.validate(option_name)  # before torch loads: a mistake is named at once
    from memrl.agents.l2m.offline_trainer import OfflineTrainer

    trainer = OfflineTrainer(
        config, args.out, resume=args.resume, progress=progress, name=option_name
    )
    start = trainer.update
    result = trainer.train()
    resumed = f", resumed at update {start}" if start else ""
    tail = ""
    if "eval/average_success" in result:
        tail = f"; last evaluation: average success {result['eval/average_success']:.2f}"
    print(
        f"fine-tuned the pretrained model offline ({config.agent}) on {config.stream_name()} for "
        f"{int(result['updates'])} updates{resumed} -> {args.out}{tail}"
    )
    return 0


def _trained(args: argparse.Namespace, start: int, end: int, batch_steps: int, tail: str) -> str:
    """The closing line of ``memrl train``: the env steps actually trained, not ``--steps``."""
    if end == start:
        return (
            f"{args.out} has already trained {end} env steps: nothing to train for "
            f"--steps {args.steps}"
        )
    rounded = (
        f" (--steps {args.steps} in whole rollouts of {batch_steps} env steps)"
        if end != args.steps
        else ""
    )
    resumed = f", resumed at step {start}" if start else ""
    return (
        f"trained {args.agent} on {args.env} for {end} env steps{rounded}{resumed} -> {args.out}"
        f"{tail}"
    )


def _given(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    """The options among ``names`` (attribute names) given on the command line, as typed."""
    return [option_name(name) for name in names if getattr(args, name) is not None]


def _apply(flags: Sequence[str]) -> str:
    return "applies" if len(flags) == 1 else "apply"


def _memory_ppo_only() -> list[str]:
    """Memory PPO's options (attribute names) that SB3's PPO and RecurrentPPO have no setting for.

    Every other memory PPO option is a field of ``SB3Config`` of the same name and meaning.
    """
    return [name for name in PPOConfig.__dataclass_fields__
            if name not in (*PPO_SKIP, *SB3Config.__dataclass_fields__)]  # fmt: skip


def _mode_options() -> tuple[list[str], list[str]]:
    """(options only continual SAC reads, options only memory PPO / SB3 read), attribute names."""
    continual = [name for name in ContinualConfig.__dataclass_fields__
                 if name not in ("seed", *SHARED_OPTIONS)]  # fmt: skip
    ppo = [name for name in PPOConfig.__dataclass_fields__
           if name not in (*PPO_SKIP, *SHARED_OPTIONS)]  # fmt: skip
    return continual, ["env", "agent", "steps", "frame_stack", *ppo]


def _offline_only() -> list[str]:
    """Options (attribute names) that only offline fine-tuning reads."""
    others = {*ContinualConfig.__dataclass_fields__, *PPOConfig.__dataclass_fields__}
    return [name for name in OfflineConfig.__dataclass_fields__
            if name not in ("agent", "stream", "tasks", *others)]  # fmt: skip


def _sb3_options_note() -> str:
    """Which memory PPO options the SB3 baselines read, with their defaults; which they refuse."""
    sb3_defaults = SB3Config()
    read = [
        f"{option_name(name)} ({getattr(sb3_defaults, name)})"
        for name in PPOConfig.__dataclass_fields__
        if name not in (*PPO_SKIP, *SHARED_OPTIONS) and name in SB3Config.__dataclass_fields__
    ]
    refused = ", ".join(option_name(name) for name in _memory_ppo_only())
    return (
        f"The SB3 baselines (sb3-ppo, sb3-recurrent-ppo) read {', '.join(read)} with the SB3 "
        f"defaults in parentheses, and refuse {refused}."
    )
