"""The ``memrl`` command.

Subcommands: ``list`` (the suite), ``bench`` (speed: ``envs``, ``streams``, ``continual``,
``memory``), ``train``, ``eval``, ``play`` (an env in the terminal), ``render`` (an episode as a GIF
or PNG) and ``run demo`` (the showcase). Heavy modules are imported inside each subcommand so that
``memrl --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from memrl import __version__
from memrl.agents.continual.config import METHODS, STREAMS, ContinualConfig
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.run_lock import RunInUseError
from memrl.agents.sb3_config import SB3Config
from memrl.envs import ALL


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _existing_file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def _env_id(text: str) -> str:
    if text in ALL:
        return text
    if f"memrl/{text}" in ALL:  # allow the id without its namespace
        return f"memrl/{text}"
    close = [i for i in ALL if text.lower() in i.lower()]
    hint = f" Did you mean one of: {', '.join(close[:6])}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown env id {text!r}.{hint} Run `memrl list` for every registered id."
    )


# -- memrl list -----------------------------------------------------------------------------------


def _bench_rows(path: str) -> list[dict]:
    """The ``results`` rows of a ``memrl bench envs --json`` file.

    Raises:
        ValueError: The file is not JSON, or not an object whose ``results`` is a list of rows
            with ``id`` and ``num_envs``.
    """
    expected = (
        'expected the JSON that `memrl bench envs --json FILE` writes: {"results": [{"id": ..., '
        '"num_envs": ..., "single_steps_per_s": ..., "vector_steps_per_s": ...}, ...]}'
    )
    try:
        report = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"--bench {path} is not JSON ({error}); {expected}") from None
    rows = report.get("results") if isinstance(report, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f'--bench {path} has no "results" list; {expected}')
    for row in rows:
        if not isinstance(row, dict) or not {"id", "num_envs"} <= row.keys():
            raise ValueError(f"--bench {path} has a result row without id and num_envs: {row!r}; "
                             f"{expected}")  # fmt: skip
    return rows


def _cmd_list(args: argparse.Namespace) -> int:
    from memrl.envs.table import suite_table

    rates = _bench_rows(args.bench) if args.bench else None
    print(suite_table(markdown=args.markdown, family=args.family, bench_rows=rates))
    return 0


# -- memrl bench ----------------------------------------------------------------------------------


def _cmd_bench_envs(args: argparse.Namespace) -> int:
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


def _write_json(path: str, report: dict, argv: list[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"command": "memrl " + " ".join(argv), **report}, indent=2))
    print(f"wrote {path}", file=sys.stderr)


def _cmd_bench_streams(args: argparse.Namespace) -> int:
    from memrl.bench.streams import bench_streams, format_report

    report = bench_streams(rounds=args.rounds, episodes_per_task=args.episodes)
    print(format_report(report))
    if args.json:
        _write_json(args.json, report, args.argv)
    return 0


def _cmd_bench_continual(args: argparse.Namespace) -> int:
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


def _cmd_bench_memory(args: argparse.Namespace) -> int:
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


# -- memrl play / render --------------------------------------------------------------------------


def _cmd_play(args: argparse.Namespace) -> int:
    from memrl.envs.play import play

    play(args.env_id, seed=args.seed, episodes=args.episodes)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from memrl.envs.media import SUFFIXES, record_episode, save_frames

    if Path(args.out).suffix.lower() not in SUFFIXES:
        print(f"error: --out must end in one of {SUFFIXES}, got {args.out!r}", file=sys.stderr)
        return 2
    frames = record_episode(args.env_id, seed=args.seed, max_frames=args.max_frames)
    path = save_frames(frames, args.out, fps=args.fps)
    print(f"wrote {path} ({len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} px)")
    return 0


# -- memrl train ----------------------------------------------------------------------------------

MEMORY_AGENTS = ("hcam", "sat-fifo", "sat-pm", "sat-ama", "transformer", "lstm", "gru", "none")
SB3_AGENTS = ("sb3-ppo", "sb3-recurrent-ppo")


CONTINUAL_SKIP = ("stream", "method", "steps_per_task", "tasks", "seed")
"""ContinualConfig fields with hand-written options (or the shared ``--seed``)."""
PPO_SKIP = ("env_id", "core", "total_steps", "seed")
"""PPOConfig fields set by ``--env``, ``--agent``, ``--steps`` and ``--seed``."""
SHARED_OPTIONS = tuple(
    name for name in ContinualConfig.__dataclass_fields__
    if name in PPOConfig.__dataclass_fields__ and name != "seed"
)  # fmt: skip
"""Fields of both configs (learning rate, gamma, ...): one option each, read by whichever trains."""


def _given(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    """The options among ``names`` (attribute names) given on the command line, as flags."""
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name) is not None]


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


def _trainer_of(config: dict) -> str:
    """Which trainer wrote a run's ``config.json``."""
    if "stream" in config:
        return "continual SAC"
    return "SB3" if str(config.get("agent", "")).startswith("sb3-") else "memory PPO"


def _resume_options(args: argparse.Namespace) -> None:
    """Check ``--resume``'s run directory and give every option not on the command line its value.

    The directory must exist and, if it names its trainer (``config.json``), be one this
    command trains; that file then supplies the run's settings, and options given on the command
    line keep their values (a trainer refuses a change that would alter learning). Says so when
    the run has no checkpoint yet (every trainer keeps them in ``RUN_DIR/checkpoints/``).
    """
    run_dir = Path(args.out)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"--resume: {run_dir} does not exist, so there is no run to resume; drop --resume to "
            "start a run there"
        )
    checkpoints = run_dir / "checkpoints"
    if not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        print(f"note: {run_dir} has no checkpoint yet: the run starts from step 0", file=sys.stderr)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        return
    saved = json.loads(config_path.read_text())
    found = _trainer_of(saved)
    if args.stream:
        wanted = "continual SAC"
    elif args.agent:
        wanted = "SB3" if args.agent in SB3_AGENTS else "memory PPO"
    else:  # --env alone, or nothing: whichever trainer wrote the run (--env: not continual SAC)
        wanted = "memory PPO" if args.env and found == "continual SAC" else found
    if found != wanted:
        raise ValueError(
            f"--resume: {run_dir} holds a {found} run, and this command trains {wanted}; "
            "resume it with its own trainer (`memrl train --out RUN_DIR --resume` alone "
            "takes every option from the run)"
        )
    fields = {
        "continual SAC": ContinualConfig.__dataclass_fields__,
        "SB3": SB3Config.__dataclass_fields__,
        "memory PPO": PPOConfig.__dataclass_fields__,
    }[found]
    renamed = {"env_id": "env", "core": "agent", "total_steps": "steps", "algorithm": "agent"}
    if found == "SB3":
        saved["algorithm"] = saved["agent"]  # --agent sb3-ppo, not the field's "ppo"
    for name in fields:
        dest = renamed.get(name, name)
        if name in saved and getattr(args, dest, None) is None:
            setattr(args, dest, saved[name])


def _cmd_train(args: argparse.Namespace) -> int:
    from memrl.config_args import dataclass_from_arguments

    progress = not args.no_progress
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"--out {args.out} is a file; give a run directory")
    if args.resume:
        _resume_options(args)
    args.seed = 0 if args.seed is None else args.seed
    continual_only, ppo_only = _mode_options()
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
    if args.frame_stack is not None:
        raise ValueError(
            f"--frame-stack applies only to --agent sb3-ppo (SB3's PPO on stacked observations); "
            f"{args.agent} remembers with its memory core: drop --frame-stack"
        )
    from memrl.agents.ppo import PPOTrainer

    config = dataclass_from_arguments(
        PPOConfig, args, env_id=args.env, core=args.agent, total_steps=args.steps, seed=args.seed
    )
    trainer = PPOTrainer(config, args.out, resume=args.resume, progress=progress)
    start_step = trainer.global_step
    metrics = trainer.train()
    success = metrics.get("charts/success_rate")
    tail = f", last success rate {success:.2f}" if success is not None else ""
    print(_trained(args, start_step, trainer.global_step, config.batch_steps, tail))
    return 0


def _train_sb3(args: argparse.Namespace, progress: bool) -> int:
    """Train an SB3 baseline; memory PPO's options without an SB3 equivalent are refused."""
    from memrl.agents.sb3_baselines import train_sb3
    from memrl.config_args import dataclass_from_arguments

    wrong = _given(args, _memory_ppo_only())
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} {_apply(wrong)} only to memory PPO agents "
            f"({', '.join(MEMORY_AGENTS)}): SB3's PPO and RecurrentPPO have no such setting, so "
            f"{args.agent} cannot honour {'it' if len(wrong) == 1 else 'them'}"
        )
    config = dataclass_from_arguments(
        SB3Config,
        args,
        env_id=args.env,
        algorithm=args.agent.removeprefix("sb3-"),
        total_steps=args.steps,
        seed=args.seed,
    )
    run = train_sb3(config, args.out, resume=args.resume, progress=progress)
    print(
        _trained(args, run.start_step, run.steps, config.batch_steps, f", final model {run.final}")
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


# -- memrl eval -----------------------------------------------------------------------------------


def _is_continual_run(run_dir: str) -> bool:
    config_path = Path(run_dir) / "config.json"
    if not config_path.exists():
        return False
    return _trainer_of(json.loads(config_path.read_text())) == "continual SAC"


def _cmd_eval(args: argparse.Namespace) -> int:
    from memrl.agents.loading import load_agent
    from memrl.eval.evaluate import evaluate_run

    missing = [run_dir for run_dir in args.run_dirs if not Path(run_dir).is_dir()]
    if missing:
        raise FileNotFoundError(f"no such run directory: {', '.join(missing)}")
    continual = [_is_continual_run(run_dir) for run_dir in args.run_dirs]
    if len(args.run_dirs) > 1 and not all(continual):
        others = [d for d, c in zip(args.run_dirs, continual, strict=True) if not c]
        raise ValueError(
            f"several run directories make one table of continual runs (memrl train --stream) "
            f"only; {others} {'is not one' if len(others) == 1 else 'are not'}: evaluate a "
            "memory run on its own"
        )
    if all(continual):
        return _eval_continual(args)
    for flag, value in (("--reference", args.reference), ("--out", args.out)):
        if value is not None:
            raise ValueError(f"{flag} applies to continual runs (trained with --stream) only")
    (run_dir,) = args.run_dirs
    agent, info = load_agent(run_dir)
    episodes = 200 if args.episodes is None else args.episodes
    seed = 10_000 if args.seed is None else args.seed
    report = evaluate_run(agent, info, run_dir, episodes=episodes, seed=seed,
                          deterministic=args.deterministic)  # fmt: skip
    for row in report["results"]:
        print(f"{row['label']:<28} success {row['success_rate']:.3f}")
    print(f"wrote {Path(run_dir) / 'report.md'} and report.json")
    return 0


def _eval_continual(args: argparse.Namespace) -> int:
    """Continual World's table of one continual run, or of several (methods x seeds)."""
    from memrl.agents.continual.evaluation import evaluate_continual_runs

    wrong = [flag for flag, given in (("--deterministic", args.deterministic),
             ("--episodes", args.episodes is not None), ("--seed", args.seed is not None))
             if given]  # fmt: skip
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} cannot be used with continual runs: their report is made "
            "from the evaluations logged during training (--eval-episodes, "
            "--eval-deterministic of memrl train)"
        )
    if len(args.run_dirs) > 1 and args.out is None:
        raise ValueError(
            "several run directories need --out DIR for their joint report (it is written "
            "into none of the runs)"
        )
    out = Path(args.out if args.out is not None else args.run_dirs[0])
    report = evaluate_continual_runs(args.run_dirs, reference=args.reference, out_dir=out)
    print(report["details"]["table"])
    for note in report["notes"]:
        print(f"- {note}")
    print(f"wrote {out / 'report.md'} and report.json")
    return 0


def _train_continual(args: argparse.Namespace, progress: bool) -> int:
    from memrl.agents.continual.trainer import train_continual
    from memrl.config_args import dataclass_from_arguments

    config = dataclass_from_arguments(ContinualConfig, args)
    result = train_continual(config, args.out, resume=args.resume, progress=progress)
    stream = config.build_stream().name
    print(f"trained continual SAC ({config.method}) on {stream} -> {args.out}: {result}")
    return 0


# -- memrl run ------------------------------------------------------------------------------------


def _cmd_run_demo(args: argparse.Namespace) -> int:
    from memrl.demo import run_demo

    run_demo(
        out_dir=Path(args.out), episodes=args.episodes, seed=args.seed, train_steps=args.train_steps
    )
    return 0


def _sb3_options_note() -> str:
    """Which memory PPO options the SB3 baselines read, with their defaults; which they refuse."""
    sb3_defaults = SB3Config()
    read = [
        f"{'--' + name.replace('_', '-')} ({getattr(sb3_defaults, name)})"
        for name in PPOConfig.__dataclass_fields__
        if name not in (*PPO_SKIP, *SHARED_OPTIONS) and name in SB3Config.__dataclass_fields__
    ]
    refused = ", ".join("--" + name.replace("_", "-") for name in _memory_ppo_only())
    return (
        f"The SB3 baselines (sb3-ppo, sb3-recurrent-ppo) read {', '.join(read)} with the SB3 "
        f"defaults in parentheses, and refuse {refused}."
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``memrl`` command."""
    parser = argparse.ArgumentParser(
        prog="memrl",
        description="memrl: episodic-memory and continual RL environments, agents and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="print the environment suite as a table")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--family", choices=sorted({e.family for e in ALL.values()}), help="only this family"
    )
    p.add_argument(
        "--bench",
        metavar="FILE",
        type=_existing_file,
        help="add steps/s columns from a `memrl bench envs --json` file",
    )
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "train",
        help="train a memory agent on an env (--env), or continual SAC on a task stream (--stream)",
        description="With --env: train a memory agent with memrl's memory PPO (hcam, sat-*, "
        "transformer, lstm, gru, none) or an SB3 baseline (sb3-ppo, sb3-recurrent-ppo). With "
        "--stream: train continual SAC (Continual World's recipe) on a task stream with one "
        "continual-learning method, evaluating every task every --eval-every steps. The run "
        "directory gets config.json, metrics.csv, TensorBoard events (tb/) and checkpoints/ "
        "(continual runs also evaluations.json); `memrl train --out RUN_DIR --resume` continues a "
        "killed run from its last checkpoint with the options it was started with (a changed "
        "option that would change what is learnt is refused; a larger --steps extends it).",
    )
    p.add_argument("--env", type=_env_id, metavar="ID", help="env id (memory agents, SB3)")
    p.add_argument(
        "--agent", choices=MEMORY_AGENTS + SB3_AGENTS, default=None, help="agent (default lstm)"
    )
    p.add_argument(
        "--steps", type=_positive_int, default=None, help="env steps to train for (default 200000)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed (default: 0)")
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
        type=_non_negative_int,
        default=None,
        help="sb3-ppo only: stack this many observations (default: none)",
    )
    from memrl.config_args import add_dataclass_arguments, add_shared_arguments

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
        "--steps-per-task", type=_positive_int, default=None,
        help="env steps per stage (default: the stream's own; Continual World: 1,000,000)",
    )  # fmt: skip
    continual.add_argument(
        "--tasks",
        metavar="A,B,...",
        help="replace the stream's tasks (Meta-World v3 or dm_control names, or list names "
        "such as MT40 that stand for their tasks; tasks of different spaces share the widest, "
        "zero-padded observation and action)",
    )
    add_dataclass_arguments(continual, ContinualConfig, skip=CONTINUAL_SKIP + SHARED_OPTIONS)
    add_dataclass_arguments(
        p.add_argument_group("memory PPO options", _sb3_options_note()),
        PPOConfig,
        skip=PPO_SKIP + SHARED_OPTIONS,
    )
    add_shared_arguments(
        p.add_argument_group("options of every trainer (each reads its own meaning and default)"),
        {"memory PPO": PPOConfig, "SB3 baselines": SB3Config, "continual SAC": ContinualConfig},
        SHARED_OPTIONS,
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "eval",
        help="evaluate a trained run (success per level, recall vs delay, per question type), "
        "or continual runs (Continual World's metrics table)",
        description="Evaluate the agent of a run directory: on Ballet every paper level, on "
        "DelayedMatch recall vs delay (16..4096), on RoomBallet accuracy per question type, "
        "otherwise success on the training env. For continual runs (memrl train --stream): "
        "Continual World's average performance, forgetting and forward transfer from the "
        "evaluations logged during training, per-task tables, success curves and the retention "
        "heatmap; several continual runs (methods x seeds) make one table, a row per method "
        "with 90%% bootstrap intervals over its seeds. Writes report.md, report.json and plots "
        "into RUN_DIR (several runs: into --out).",
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a directory written by memrl train; or several continual runs of one stream "
        "and budget",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="continual runs: where the report goes (default: RUN_DIR; required for several)",
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help="episodes per condition (default 200; not for continual runs, which are scored "
        "from their training evaluations)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the evaluation episodes (default 10000; not for continual runs)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="act greedily (the most likely action) instead of sampling; the measure of answer "
        "accuracy for runs trained with --objective supervised (not for continual runs, whose "
        "evaluation mode is --eval-deterministic at training)",
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        type=_existing_file,
        help="continual runs: single-task reference curves (JSON) for forward transfer "
        "(default, in a source checkout: assets/reference_curves/sac-<steps_per_task>.json "
        "when it exists)",
    )
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("bench", help="measure speed")
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
    b.add_argument("--json", metavar="FILE", help="also write the results and machine to FILE")
    b.add_argument(
        "--seconds",
        type=_positive_float,
        default=1.0,
        help="seconds per measurement (default: %(default)s)",
    )
    b.add_argument(
        "--num-envs",
        type=_positive_int,
        default=64,
        help="sub-envs of the batched form (default: %(default)s)",
    )
    b.add_argument(
        "--ids", nargs="+", type=_env_id, metavar="ID", help="measure only these ids (default all)"
    )
    b.set_defaults(func=_cmd_bench_envs)
    b = bench.add_parser(
        "streams",
        help="Meta-World throughput through memrl's stream wrappers vs raw, and eval speed",
        description="Steps the same actions through raw Meta-World, Meta-World's gym stack, "
        "memrl's protocol env and ContinualEnv (paired rounds, median overhead), then times "
        "a retention-matrix evaluation (every CW10 task, --episodes episodes each).",
    )
    b.add_argument("--json", metavar="FILE", help="also write the results and machine to FILE")
    b.add_argument(
        "--rounds",
        type=_positive_int,
        default=15,
        help="paired timing rounds (default: %(default)s)",
    )
    b.add_argument(
        "--episodes",
        type=_positive_int,
        default=10,
        help="episodes per task (default: %(default)s)",
    )
    b.set_defaults(func=_cmd_bench_streams)
    b = bench.add_parser(
        "continual",
        help="continual SAC's env steps/s per method, and the projected cost of CW10/CW20 runs",
        description="Trains continual SAC (Continual World's networks and update schedule, one "
        "torch thread) with each method on a two-task Meta-World stream and times every env "
        "step: random-action steps, learning steps (50 gradient steps every 50 env steps) on "
        "the first task and on the second, the end of each task, and an evaluation of every "
        "task. From these rates it projects the wall time of one CW10, CW20 and study run.",
    )
    b.add_argument("--json", metavar="FILE", help="also write the results and machine to FILE")
    b.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="methods to time (default: all)",
    )
    b.add_argument(
        "--random-steps",
        type=_positive_int,
        default=500,
        help="random-action steps per task (default: %(default)s)",
    )
    b.add_argument(
        "--learning-steps",
        type=_positive_int,
        default=1_000,
        help="learning steps per task (default: %(default)s)",
    )
    b.add_argument(
        "--eval-episodes",
        type=_positive_int,
        default=2,
        help="episodes per task of the timed eval (default: %(default)s)",
    )
    b.set_defaults(func=_cmd_bench_continual)
    b = bench.add_parser(
        "memory",
        help="one HCAM read vs exact attention (256..16,384 steps), and training steps/s per core",
        description="Times one HCAM read against torch's fused exact attention over the same "
        "memory (batch 8, width 128, 4 heads, chunk 32, top-4; memory 256 to 16,384 steps), then "
        "trains every memory core with memory PPO and sb3-contrib's RecurrentPPO on --env for "
        "--steps env steps each and reports env steps per second, updates included.",
    )
    b.add_argument("--json", metavar="FILE", help="also write the results and machine to FILE")
    b.add_argument(
        "--part",
        choices=("read", "training", "all"),
        default="all",
        help="what to run (default: %(default)s)",
    )
    b.add_argument(
        "--env",
        type=_env_id,
        default="memrl/BalletGrid-2-delay16-v0",
        help="training env (default: %(default)s)",
    )
    b.add_argument(
        "--steps",
        type=_positive_int,
        default=16_384,
        help="training steps per agent (default: %(default)s)",
    )
    b.set_defaults(func=_cmd_bench_memory)

    p = sub.add_parser(
        "play",
        help="play an env in the terminal",
        description="Play an env in the terminal: its ansi render is printed before each step and "
        "you type an action by index or name. Enter repeats the last action; 'quit' stops.",
    )
    p.add_argument("env_id", type=_env_id, metavar="ID", help="e.g. memrl/Ballet-2-delay16-v0")
    p.add_argument("--seed", type=int, default=None, help="seed of the first episode")
    p.add_argument("--episodes", type=_positive_int, default=1, help="episodes to play")
    p.set_defaults(func=_cmd_play)

    p = sub.add_parser(
        "render",
        help="save an episode (random actions) as a GIF or a PNG sheet",
        description="Run one episode with random actions and save its rgb_array frames: an "
        "animated GIF for .gif, a sheet of 24 evenly spaced frames for .png.",
    )
    p.add_argument("env_id", type=_env_id, metavar="ID", help="e.g. memrl/Ballet-4-delay16-v0")
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .gif or .png")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode")
    p.add_argument("--fps", type=_positive_int, default=8, help="GIF frames per second")
    p.add_argument(
        "--max-frames", type=_positive_int, default=None, help="stop after this many frames"
    )
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("run", help="run a named job")
    run = p.add_subparsers(dest="job", required=True, metavar="JOB")
    d = run.add_parser(
        "demo",
        help="oracle vs memory-free on every memory env; HCAM vs LSTM trained on recall",
        description="For every memory env, run an oracle that is told what to remember and a "
        "memory-free policy and print their success rates side by side; then train an HCAM "
        "agent and an LSTM agent with memory PPO on short-delay recall (DelayedMatch-Easy) and "
        "compare them; write demo.json, training_curves.png and a Ballet GIF into --out. A "
        "killed demo resumes its training runs when run again with the same --out.",
    )
    d.add_argument("--out", default="runs/demo", help="directory for the demo's files")
    d.add_argument("--episodes", type=_positive_int, default=200, help="episodes per policy")
    d.add_argument("--seed", type=int, default=0, help="seed")
    d.add_argument(
        "--train-steps",
        type=_non_negative_int,
        default=200_000,
        help="env steps of training per agent (default 200000, a few minutes; 0 skips training)",
    )
    d.set_defaults(func=_cmd_run_demo)
    return parser


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Print a warning as a ``warning: message`` line, without Python's file and line."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memrl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    with warnings.catch_warnings():  # restores Python's own display on the way out
        warnings.showwarning = _show_warning
        try:
            code = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here rather than at exit
            return code
        except (ValueError, FileNotFoundError, FileExistsError, RunInUseError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`memrl list | head -1`): stop quietly, with the status a shell
            # gives a command killed by SIGPIPE, as coreutils' commands do. Python would flush
            # stdout again at exit, so it goes to /dev/null first.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
