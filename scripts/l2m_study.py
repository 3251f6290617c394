"""L2M's CW10 study: every offline fine-tuning agent, three seeds, on the pretrained model.

Every agent of ``memrl train --offline`` (l2m, l2m-oracle, l2p, ft, lora, l2, ewc, multitask) with
seeds 0, 1, 2 fine-tunes the pretrained multi-domain Decision Transformer (``--pretrained``,
default the shipped assets/pretrained/mddt.safetensors) on CW10's ten tasks in order, from the
offline data in ``--data`` (the datasets directory of scripts/l2m_data.py; required). The recipe
is the trainer's defaults (:mod:`memrl.agents.l2m.offline_config`: 2,000 updates per task, 5
evaluations per task of 10 episodes, the five pretraining tasks evaluated for retention) unless
``--updates-per-task``, ``--evaluations-per-task`` or ``--eval-episodes`` change it.

Cost: 45-60 minutes per run on a core of its own at the rates of ``memrl bench l2m``
(docs/bench_l2m.json, which gives each run's estimate: about 1,300 s of updates and 1,800 s of
evaluation for ft), about 20 core-hours for the 24 runs, 10 hours with ``--jobs 2`` on two free
cores. ``--dry-run`` prints the plan, each run's progress and the hours left.

Finished runs are skipped and killed ones resumed, so the script can be re-run after an
interruption. ``--archive DIR`` (the committed one: assets/results/l2m) keeps the study across
machines and fresh checkouts: each finished run's compact results (config.json, tasks.json,
evaluations.json, a thinned metrics.csv with the training losses, and pretrained.json naming the
model's SHA-256; no checkpoints) are copied to DIR/<agent>/seed<k> as it finishes, and a run
archived there is restored into ``--out`` instead of trained again (its settings and model must be
the study's). ``--table`` builds the report and the results section from the archive alone, with
neither data nor training.

Results (``--out``, or the archive's report with ``--table``): report.md and report.json
(``memrl eval``'s report over runs: Continual World's P and F with 90% bootstrap intervals over
seeds, the retention of pretraining skill, per-task tables, retention matrices, success curves),
and RESULTS_SECTION.md, a section for docs/RESULTS.md: per agent P, F, success on the pretraining
tasks after the last task and its retention (held-out columns when there are held-out tasks),
and the frozen model's row, with the command, seeds, budget, model, machine and compute.

    python scripts/l2m_study.py --data /work/l2m_data/datasets --dry-run      # plan, progress
    python scripts/l2m_study.py --data /work/l2m_data/datasets --out runs/l2m_study --jobs 2 \\
        --archive assets/results/l2m                                          # the study
    python scripts/l2m_study.py --table --archive assets/results/l2m          # the table again
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memrl.agents.checkpoints import CheckpointStore
from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.agents.l2m.offline_config import (
    AGENTS,
    DEFAULT_PRETRAINED,
    RESUMABLE_CHANGES,
    OfflineConfig,
)
from memrl.agents.run_log import THIN_ROWS, thin_metrics
from memrl.bench.l2m import project_offline_run_hours
from memrl.eval.continual import METRIC_NAMES, evaluate_continual_runs, retention_matrix
from memrl.eval.metrics import ConfidenceInterval, bootstrap_mean_ci

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = str(ROOT / DEFAULT_PRETRAINED)
"""The shipped pretrained model (``--pretrained``'s default)."""
BENCH = str(ROOT / "docs" / "bench_l2m.json")
"""The measured rates of ``memrl bench l2m --json``: the plan's cost."""
PROVENANCE = "pretrained.json"
"""In an archived run: the SHA-256 of the model it fine-tuned (config.json has only its path)."""
RESULT_FILES = ("config.json", "tasks.json", "evaluations.json", "metrics.csv", PROVENANCE)
"""What --archive keeps of a finished run: all that the report reads, and the losses."""
METRICS_ROWS = THIN_ROWS
"""At most this many rows of training metrics are archived (evenly spaced, the first and the last
kept); the evaluations' columns are left out: evaluations.json holds them."""
TINY: dict[str, Any] = dict(batch_size=8, warmup_steps=1, identity_key_updates=2,
                            checkpoint_every=2, log_every=1)  # fmt: skip
"""--tiny: a handful of contexts per update (with a tiny --pretrained: the pipeline, not a
result)."""
DEFAULTS = OfflineConfig()


def base_config(args: argparse.Namespace) -> OfflineConfig:
    """The recipe shared by every run of the study."""
    config = OfflineConfig(
        stream="CW10",
        tasks=args.tasks,
        pretrained=args.pretrained,
        data=list(args.data or []),
        updates_per_task=args.updates_per_task,
        evaluations_per_task=args.evaluations_per_task,
        eval_episodes=args.eval_episodes,
        held_out=args.held_out,
        tensorboard=False,
        threads=1,
    )
    if args.pretrain_eval_tasks is not None:
        config.pretrain_eval_tasks = args.pretrain_eval_tasks
    if args.tiny:
        config = dataclasses.replace(config, **TINY)
    return config


def plan(args: argparse.Namespace, config: OfflineConfig) -> list[tuple[OfflineConfig, str]]:
    """Every run of the study, (config, run directory), seed by seed.

    Each seed's block holds every agent, so an interrupted study has whole seeds to report rather
    than whole agents.
    """
    out = Path(args.out)
    return [
        (dataclasses.replace(config, agent=agent, seed=seed), str(out / agent / f"seed{seed}"))
        for seed in args.seeds
        for agent in args.agents
    ]


def estimate_hours(config: OfflineConfig, rates: dict[str, Any]) -> float:
    """Expected hours of one run on a core of its own, from ``memrl bench l2m``'s rates."""
    evaluated = (len(config.stream_tasks()) + len(config.held_out_tasks())
                 + len(config.pretraining_tasks()))  # fmt: skip
    return project_offline_run_hours(
        rates,
        config.agent,
        num_tasks=len(config.stream_tasks()),
        updates_per_task=config.updates_per_task,
        evaluations_per_task=config.evaluations_per_task,
        evaluated_tasks=evaluated,
        eval_episodes=config.eval_episodes,
        identity_key_updates=config.identity_key_updates if config.num_identity_keys else 0,
    )


def longest_first(
    runs: list[tuple[OfflineConfig, str]], rates: dict[str, Any]
) -> list[tuple[OfflineConfig, str]]:
    """Each seed's runs, longest first (the seeds keep their order).

    With --jobs, the short runs then fill in at the end instead of one long run finishing alone.
    """
    seeds = list(dict.fromkeys(config.seed for config, _ in runs))
    return sorted(runs, key=lambda run: (seeds.index(run[0].seed), -estimate_hours(run[0], rates)))


def load_rates(path: str) -> dict[str, Any]:
    """The rates of a ``memrl bench l2m --json`` file."""
    if not Path(path).exists():
        raise SystemExit(f"--bench {path} does not exist: make it with "
                         f"`memrl bench l2m --json {path}`")  # fmt: skip
    rates: dict[str, Any] = json.loads(Path(path).read_text())
    return rates


# -- runs and their archive ----------------------------------------------------------------------


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that trained its whole budget."""
    return (run_dir / "evaluations.json").exists() and EvaluationLog.load(run_dir).finished


def model_digest(run_dir: Path) -> str | None:
    """The SHA-256 of the model a run fine-tuned: its pretrained.json's, else its checkpoint's."""
    if (run_dir / PROVENANCE).exists():
        digest: str = json.loads((run_dir / PROVENANCE).read_text())["pretrained_sha256"]
        return digest
    store = CheckpointStore(run_dir / "checkpoints")
    if store.exists():
        _, payload = store.load(required=("pretrained_sha256",))
        return str(payload["pretrained_sha256"])
    return None


def check_model(run_dir: Path, digest: str, pretrained: str) -> None:
    """Refuse a finished run of another model than ``--pretrained`` (SHA-256 ``digest``)."""
    theirs = model_digest(run_dir)
    if theirs is not None and theirs != digest:
        raise SystemExit(f"{run_dir} fine-tuned another model (SHA-256 {theirs[:12]}...) than "
                         f"--pretrained {pretrained} ({digest[:12]}...): move the run away or "
                         f"give its model")  # fmt: skip


def write_provenance(run_dir: Path, digest: str) -> None:
    """Write pretrained.json (the fine-tuned model's SHA-256) into a run directory."""
    (run_dir / PROVENANCE).write_text(json.dumps({"pretrained_sha256": digest}) + "\n")


def copy_results(source: Path, target: Path, digest: str) -> None:
    """Copy a run's results (no checkpoints) from ``source`` to ``target``.

    Args:
        source: The run directory.
        target: Its archive directory.
        digest: The SHA-256 of the model it fine-tuned (pretrained.json).
    """
    target.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if name == "metrics.csv" and (source / name).exists():
            thin_metrics(source / name, target / name)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)
    write_provenance(target, digest)


def run_one(config: OfflineConfig, run_dir: str, archived: str | None, digest: str) -> str:
    """Train (or resume, or skip) one run, then archive it; returns a line for the log.

    Args:
        config: The run's config.
        run_dir: Its directory.
        archived: Its archive directory, or None.
        digest: The SHA-256 of ``config.pretrained``.
    """
    from memrl.agents.l2m.offline_trainer import OfflineTrainer

    path = Path(run_dir)
    if is_finished(path):
        check_model(path, digest, config.pretrained)
        line = f"skipped {run_dir} (finished)"
    else:
        start = time.perf_counter()
        resume = CheckpointStore(path / "checkpoints").exists()
        OfflineTrainer(config, path, resume=resume, progress=False).train()
        line = f"trained {run_dir} in {(time.perf_counter() - start) / 60:.1f} min"
        write_provenance(path, digest)
    if archived is not None and not is_finished(Path(archived)):
        copy_results(path, Path(archived), digest)
        line += f", archived to {archived}"
    return line


def archived_dir(run_dir: str, out: str, archive: str | None) -> str | None:
    """Where ``run_dir`` (a run under ``out``) is kept in ``archive``; None without an archive."""
    if archive is None:
        return None
    return str(Path(archive) / Path(run_dir).relative_to(out))


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """What makes a run what it is: its config without where the data and model live and
    without what does not change learning (the model's content is checked apart)."""
    return {k: v for k, v in config.items() if k not in ("offline", *RESUMABLE_CHANGES)}


def check_archived(config: OfflineConfig, archived: Path, digest: str) -> None:
    """Refuse an archived run whose settings or model are not the study's."""
    theirs = settings(json.loads((archived / "config.json").read_text()))
    mine = settings(config.to_dict())
    changed = [k for k in mine if theirs.get(k) != mine[k]]
    if changed:
        details = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine[k]!r} here" for k in changed)
        raise SystemExit(f"{archived} was trained with other settings than this study's "
                         f"({details}): give the study's options or another --archive")  # fmt: skip
    check_model(archived, digest, config.pretrained)


def restore(runs: list[tuple[OfflineConfig, str]], out: str, archive: str, digest: str) -> int:
    """Copy every archived finished run missing from ``out`` into it; returns how many.

    A run of ``out`` that is unfinished while its archive is finished is left alone and refused:
    one of the two is not the study's, and which one is for the user to say.
    """
    restored = 0
    for config, run_dir in runs:
        archived = Path(archive) / Path(run_dir).relative_to(out)
        if not is_finished(archived):
            continue
        check_archived(config, archived, digest)
        if is_finished(Path(run_dir)):
            continue
        if (Path(run_dir) / "evaluations.json").exists():
            raise SystemExit(f"{run_dir} holds an unfinished run but {archived} a finished one: "
                             f"move one of them away")  # fmt: skip
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            if (archived / name).exists():
                shutil.copy2(archived / name, Path(run_dir) / name)
        restored += 1
    return restored


def run_progress(run_dir: str, archived: str | None = None) -> tuple[float, str]:
    """How much of a run is done, from its evaluation log: (fraction of its updates, status)."""
    if archived is not None and is_finished(Path(archived)) and not is_finished(Path(run_dir)):
        return 1.0, "finished, archived"
    path = Path(run_dir) / "evaluations.json"
    if not path.exists():
        return 0.0, "not started"
    log = EvaluationLog.load(path)
    if log.finished:
        return 1.0, "finished"
    update = log.steps[-1] if log.steps else 0
    return update / log.total_steps, f"at update {update} of {log.total_steps}"


# -- the report ----------------------------------------------------------------------------------


def finished_runs(root: str, agents: Sequence[str], seeds: Sequence[int]) -> list[str]:
    """The finished runs under ``root`` (laid out as ``<agent>/seed<k>``), agent by agent."""
    return [str(Path(root) / agent / f"seed{seed}") for agent in agents for seed in seeds
            if is_finished(Path(root) / agent / f"seed{seed}")]  # fmt: skip


def _summary(values: Sequence[float]) -> ConfidenceInterval | float | None:
    """A mean with a 90% bootstrap interval over seeds (a plain mean for one, None for none)."""
    if not values:
        return None
    return bootstrap_mean_ci(values) if len(values) > 1 else float(values[0])


def _as_value(cell: dict[str, Any] | None) -> ConfidenceInterval | float | None:
    """A ``report.json`` cell as a value: a mean with its interval, a plain mean, or None."""
    if cell is None or cell["mean"] is None:
        return None
    if cell.get("lower") is None:
        return float(cell["mean"])
    return ConfidenceInterval(cell["mean"], cell["lower"], cell["upper"], cell["confidence"])


PRETRAINING_SUCCESS = "pretraining success"
"""The table's column of the mean success on the pretraining tasks after the last task."""


def study_table(report: dict[str, Any], run_dirs: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The results table: the report's metrics per agent (``memrl eval``'s), the success on the
    pretraining tasks after the last task, and the frozen model's row.

    Columns no agent has a value for (forward transfer: no single-task references) are left out.
    The frozen model's row is the initial evaluation of the runs (the same for every agent of a
    seed): its average success on the stream's tasks (P's column) and on the pretraining tasks.

    Args:
        report: :func:`evaluate_continual_runs`' report of ``run_dirs``.
        run_dirs: The runs (finished).

    Returns:
        The Markdown table, and the frozen model's values (``"stream"``, ``"pretraining"``).
    """
    logs = [EvaluationLog.load(run_dir) for run_dir in run_dirs]
    rows: dict[str, dict[str, Any]] = {
        agent: {name: _as_value(cell) for name, cell in metrics.items()}
        for agent, metrics in report["metrics"].items()
    }
    pretraining = logs[0].pretraining
    frozen_stream: dict[int, float] = {}
    frozen_pretraining: dict[int, float] = {}
    for agent in rows:
        agent_logs = [log for log in logs if log.method == agent]
        if pretraining:
            end = []
            for log in agent_logs:
                matrix = retention_matrix(log)
                end.append(float(np.mean([matrix.matrix[-1, matrix.column(t)]
                                          for t in pretraining])))  # fmt: skip
            rows[agent][PRETRAINING_SUCCESS] = _summary(end)
        for log in agent_logs:
            if log.initial_success is None:
                continue
            initial = dict(zip(log.task_names, log.initial_success, strict=True))
            frozen_stream[log.seed] = float(np.mean([initial[t] for t in log.trained_names]))
            if pretraining:
                frozen_pretraining[log.seed] = float(np.mean([initial[t] for t in pretraining]))
    columns = [name for name in dict.fromkeys(n for row in rows.values() for n in row)
               if any(row.get(name) is not None for row in rows.values())]  # fmt: skip
    if PRETRAINING_SUCCESS in columns:  # beside the retention it is the numerator of
        columns.remove(PRETRAINING_SUCCESS)
        retention = METRIC_NAMES["pretraining_retention"]
        at = columns.index(retention) if retention in columns else len(columns)
        columns.insert(at, PRETRAINING_SUCCESS)
    frozen = {
        "stream": _summary(list(frozen_stream.values())),
        "pretraining": _summary(list(frozen_pretraining.values())),
    }
    ordered = {agent: {name: row.get(name) for name in columns} for agent, row in rows.items()}
    ordered["frozen model"] = dict.fromkeys(columns)
    ordered["frozen model"][METRIC_NAMES["performance"]] = frozen["stream"]
    if PRETRAINING_SUCCESS in columns:
        ordered["frozen model"][PRETRAINING_SUCCESS] = frozen["pretraining"]
    lines = ["| agent | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for agent, row in ordered.items():
        lines.append(f"| {agent} | " + " | ".join(_number(row[name]) for name in columns) + " |")
    return "\n".join(lines), frozen


def _number(value: ConfidenceInterval | float | None) -> str:
    """A table cell: ``mean [lower, upper]``, a plain mean, or ``-`` for none."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, ConfidenceInterval) else f"{value:.2f}"


def _count(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural but for one."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def results_section(
    args: argparse.Namespace,
    report: dict[str, Any],
    run_dirs: Sequence[str],
    expected: int,
    projected_hours: float | None,
) -> str:
    """A section for docs/RESULTS.md: the table with its command, seeds, budget, model, machine.

    Args:
        args: The study's options.
        report: :func:`evaluate_continual_runs`' report of ``run_dirs``.
        run_dirs: The finished runs reported.
        expected: Runs of the whole study (a note says which are missing).
        projected_hours: The study's projected core-hours, or None (unknown: no rates).
    """
    from memrl.bench.machine import machine_info

    table, frozen = study_table(report, run_dirs)
    first = EvaluationLog.load(run_dirs[0])
    config = json.loads((Path(run_dirs[0]) / "config.json").read_text())
    digest = json.loads((Path(run_dirs[0]) / PROVENANCE).read_text())["pretrained_sha256"] if (
        Path(run_dirs[0]) / PROVENANCE).exists() else None  # fmt: skip
    seeds = sorted({EvaluationLog.load(run_dir).seed for run_dir in run_dirs})
    machine = machine_info(("memrl", "torch", "metaworld", "mujoco"))
    command = "python scripts/l2m_study.py " + " ".join(sys.argv[1:])
    tasks = " > ".join(first.trained_names)
    pretraining = ", ".join(first.pretraining) or "none"
    lines = [
        f"## L2M and its baselines: offline fine-tuning on {first.stream} "
        f"({config['updates_per_task']:,} updates per task)",
        "",
        table,
        "",
        f"Continual World's average performance (P) and forgetting (F) over the stream's tasks "
        f"({tasks}), mean over seeds {seeds} with 90% bootstrap intervals. Pretraining success: "
        f"mean success on the pretraining tasks evaluated ({pretraining}) after the last task; "
        "pretraining retention: that over the frozen model's success on them. The frozen model "
        "is the pretrained model before fine-tuning (in P's column: its average success on the "
        "stream's tasks)."
        + (
            " Multi-task fine-tuning trains every task at once for the whole budget: its F is "
            "not defined."
            if "multitask" in report["metrics"]
            else ""
        )
        + " Forward transfer is not reported (no single-task references).",
        "",
        f"- Command: `{command}`",
        f"- Budget: {config['updates_per_task']:,} updates per task at batch "
        f"{config['batch_size']}, {_count(config['evaluations_per_task'], 'evaluation')} per "
        f"task of {_count(config['eval_episodes'], 'episode')} (argmax actions)",
        f"- Model: {Path(config['pretrained']).name}"
        + (f" (SHA-256 {digest[:12]}...)" if digest else ""),
        f"- Runs: {len(run_dirs)} of {expected} finished",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), torch "
        f"{machine['packages']['torch']}, metaworld {machine['packages']['metaworld']}; "
        f"date {machine['date'][:10]}",
    ]
    if projected_hours is not None:
        lines.append(f"- Compute: about {projected_hours:.1f} core-hours (projected from the rates "
                     f"of `memrl bench l2m`, {Path(args.bench).name})")  # fmt: skip
    lines.append(f"- Frozen model: average success {_number(frozen['stream'])} on the stream's "
                 f"tasks, {_number(frozen['pretraining'])} on the pretraining tasks")  # fmt: skip
    notes = [note for note in report["notes"] if note != report["details"]["reference"]]
    lines += [f"- Note: {note}" for note in notes]
    for heading, body in report["details"]["per_task_tables"].items():
        lines += ["", f"#### {heading}", "", body]
    if args.tiny:
        lines.insert(2, "**Tiny mode: a pipeline check, not a result.**\n")
    return "\n".join(lines) + "\n"


def write_report(
    args: argparse.Namespace,
    run_dirs: list[str],
    expected: int,
    projected_hours: float | None,
) -> None:
    """Evaluate the runs together into ``--out``: report.md/json, plots, RESULTS_SECTION.md."""
    if not run_dirs:
        raise SystemExit("no finished run to report")
    report = evaluate_continual_runs(run_dirs, out_dir=args.out)
    section = results_section(args, report, run_dirs, expected, projected_hours)
    (Path(args.out) / "RESULTS_SECTION.md").write_text(section)
    print(section)
    print(f"wrote {args.out}/report.md, report.json and RESULTS_SECTION.md")


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``."""

    def integer(text: str) -> int:  # argparse names it: "invalid integer value: 'x'"
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {text}")
        return value

    return integer


def _option(field: str) -> str:
    """The option of a config field (``updates_per_task`` -> ``--updates-per-task``)."""
    return "--" + field.replace("_", "-")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The study's options (``argv``: the command line without the program; None: sys.argv)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", metavar="DIR",
                        help="datasets directories of the stream's tasks and the pretraining "
                             "data (scripts/l2m_data.py's OUT/datasets); required but with "
                             "--table")  # fmt: skip
    parser.add_argument("--pretrained", default=PRETRAINED,
                        help="the pretrained model (default: the shipped "
                             f"{DEFAULT_PRETRAINED})")  # fmt: skip
    parser.add_argument("--out", default="runs/l2m_study", help="output directory")
    parser.add_argument(
        "--tasks", default="", help="comma-separated tasks replacing CW10's (default: CW10)"
    )
    parser.add_argument(
        "--held-out",
        default="",
        help="comma-separated tasks evaluated but never trained (default: none)",
    )
    parser.add_argument("--pretrain-eval-tasks", default=None,
                        help="pretraining tasks evaluated for retention (default: the trainer's "
                             "five MT40 tasks)")  # fmt: skip
    parser.add_argument("--updates-per-task", type=_at_least(1), default=None,
                        help=f"updates per task (default {DEFAULTS.updates_per_task:,}; 4 with "
                             "--tiny)")  # fmt: skip
    parser.add_argument("--evaluations-per-task", type=_at_least(1), default=None,
                        help=f"evaluations per task (default {DEFAULTS.evaluations_per_task}; 1 "
                             "with --tiny)")  # fmt: skip
    parser.add_argument("--eval-episodes", type=_at_least(1), default=None,
                        help=f"episodes per task and evaluation (default "
                             f"{DEFAULTS.eval_episodes}; 1 with --tiny)")  # fmt: skip
    parser.add_argument(
        "--seeds",
        type=_at_least(0),
        nargs="+",
        default=[0, 1, 2],
        help="seeds of every agent (default 0 1 2)",
    )
    parser.add_argument(
        "--agents",
        nargs="+",
        default=list(AGENTS),
        choices=AGENTS,
        metavar="AGENT",
        help=f"of {', '.join(AGENTS)} (default: all)",
    )
    parser.add_argument(
        "--jobs", type=_at_least(1), default=1, help="runs in parallel (one per core; default 1)"
    )
    parser.add_argument("--bench", default=BENCH, help="rates for the cost estimate")
    parser.add_argument("--archive", default=None,
                        help="keep finished runs' results here and restore them from here "
                             "(the committed one: assets/results/l2m)")  # fmt: skip
    parser.add_argument("--tiny", action="store_true",
                        help="batch 8, 4 updates per task, 1 evaluation of 1 episode: with a "
                             "tiny --pretrained, the pipeline in a minute")  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan, its cost and each run's progress"
    )
    parser.add_argument("--table", action="store_true",
                        help="no training: the report and results section of the finished runs "
                             "in --archive, into --out")  # fmt: skip
    args = parser.parse_args(argv)
    budget = {"updates_per_task": 4, "evaluations_per_task": 1, "eval_episodes": 1}
    for name, tiny in budget.items():
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else getattr(DEFAULTS, name))
    if args.table:
        if args.archive is None:
            parser.error("--table reads the runs of --archive: give it (e.g. assets/results/l2m)")
        return args
    if not args.data:
        parser.error("--data is required: the datasets directory of scripts/l2m_data.py "
                     "(e.g. /work/l2m_data/datasets)")  # fmt: skip
    try:
        base_config(args).validate(_option)
    except ValueError as error:  # a bad --tasks or budget, in the config's own words
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Plan, restore, train, archive and report the study (see the module docstring)."""
    args = parse_arguments(argv)
    if args.table:
        runs = finished_runs(args.archive, args.agents, args.seeds)
        print(f"{len(runs)} finished runs in {args.archive}")
        write_report(args, runs, len(args.agents) * len(args.seeds), None)
        return
    config = base_config(args)
    rates = load_rates(args.bench)
    runs = longest_first(plan(args, config), rates)
    estimates = [estimate_hours(c, rates) for c, _ in runs]
    archived = [archived_dir(run_dir, args.out, args.archive) for _, run_dir in runs]
    progress = [run_progress(run_dir, kept) for (_, run_dir), kept in
                zip(runs, archived, strict=True)]  # fmt: skip
    hours = sum(estimates)
    left = sum(h * (1 - done) for h, (done, _) in zip(estimates, progress, strict=True))
    finished = sum(status.startswith("finished") for _, status in progress)
    print(f"{len(runs)} runs on {config.stream_name()}; expected {hours:.1f} h on one core "
          f"at the rates of {args.bench} ({hours / args.jobs:.1f} h with --jobs {args.jobs}); "
          f"{finished} finished, about {left:.1f} h left")  # fmt: skip
    for (run_config, run_dir), estimate, (_, status) in zip(runs, estimates, progress, strict=True):
        print(f"  {run_dir}: {run_config.agent}, seed {run_config.seed}, {estimate:.2f} h "
              f"[{status}]")  # fmt: skip
    if args.dry_run:
        return
    from memrl.agents.l2m.offline_trainer import file_digest

    if not Path(args.pretrained).is_file():
        raise SystemExit(f"--pretrained {args.pretrained}: no such file (the shipped model is "
                         f"{DEFAULT_PRETRAINED}; or pass a `memrl pretrain` run's "
                         "model.safetensors)")  # fmt: skip
    digest = file_digest(Path(args.pretrained))
    if args.archive is not None:
        restored = restore(runs, args.out, args.archive, digest)
        print(f"restored {restored} finished runs from {args.archive}")
    start = time.perf_counter()
    digests = [digest] * len(runs)
    if args.jobs > 1:
        from memrl.agents.worker_pool import worker_pool

        with worker_pool(args.jobs) as pool:
            configs, run_dirs = zip(*runs, strict=True)
            for line in pool.map(run_one, configs, run_dirs, archived, digests):
                print(line, flush=True)
    else:
        for (run_config, run_dir), kept in zip(runs, archived, strict=True):
            print(run_one(run_config, run_dir, kept, digest), flush=True)
    print(f"this invocation: {(time.perf_counter() - start) / 3600:.1f} h")
    write_report(args, finished_runs(args.out, args.agents, args.seeds), len(runs), hours)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # `--dry-run | head`: stop quietly, as the memrl command does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
