"""``memrl bench l2m``: what each step of the L2M pipeline costs, and what a CW10 study costs.

Every step of the pipeline is timed on a small scale, in a temporary directory, one torch thread:

1. **Data collection** (:func:`collection_rate`): ``memrl data collect``'s code
   (:func:`~memrl.data.collect_metaworld`) collects a few scripted-expert episodes of two CW10
   tasks and writes them as Minari datasets; env steps per second, env construction and writing
   included.
2. **Pretraining** (:func:`pretraining_rate`): ``memrl pretrain``'s trainer
   (:class:`~memrl.agents.pretrained.training.PretrainTrainer`) runs a few hundred updates of the
   default model at batch 256 on those data (no evaluation); updates and tokens per second.
3. **Acting** (:func:`action_latency`): milliseconds to choose one action with the frozen model and
   with L2M (the modulator pool's match and the LoRA routing,
   :func:`~memrl.agents.l2m.speed.measure_action_ms`), for one env and a batch of envs.
4. **Evaluation** (:func:`evaluation_rate`): one task played online by the pretrained model with
   ``eval_episodes`` episodes in parallel, as every evaluation of a fine-tuning run plays each
   task (:func:`~memrl.agents.pretrained.evaluation.evaluate_model`); seconds per episode.
5. **Fine-tuning** (:func:`update_rates`): ``memrl train --offline``'s trainer
   (:class:`~memrl.agents.l2m.offline_trainer.OfflineTrainer`) with every agent on the two tasks,
   a few updates each at batch 256 from the model of step 2 (no evaluation; l2m without identity
   keys, which only skips the phase on the pretraining data, timed like any update).

Every figure is given twice: wall-clock (what this machine gave, shared or not) and CPU time of
the process (what a core of its own would give: every measurement runs on one thread). The
machine's load average before and after is stored beside them.

:func:`project_offline_run_hours` turns the CPU rates into the hours of one fine-tuning run
(updates, l2m's identity-key updates, every evaluation); ``scripts/l2m_study.py`` plans with it.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TASKS: tuple[str, str] = ("hammer-v3", "push-wall-v3")
"""The two CW10 tasks collected, pretrained on and fine-tuned on."""
ACTION_BATCH = 10
"""Envs of the batched action latency (an evaluation plays 10 episodes of a task at once)."""


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``call()``'s result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def collection_rate(
    out_dir: str | Path,
    tasks: Sequence[str] = DEFAULT_TASKS,
    episodes_per_task: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Collect scripted-expert episodes of ``tasks`` into ``out_dir`` and time it.

    Args:
        out_dir: The datasets directory (the later steps read it).
        tasks: Meta-World v3 tasks.
        episodes_per_task: Episodes per task (each 200 steps).
        seed: Seed of the collection.

    Returns:
        ``{"tasks", "episodes_per_task", "steps", "wall_seconds", "cpu_seconds",
        "steps_per_s_wall", "steps_per_s_cpu"}``.
    """
    from memrl.data import collect_metaworld
    from memrl.envs.metaworld import EPISODE_LENGTH

    def collect() -> list[Path]:
        return collect_metaworld(list(tasks), out_dir, episodes_per_task=episodes_per_task,
                                 seed=seed, progress=False)  # fmt: skip

    _, wall, cpu = _timed(collect)
    steps = len(tasks) * episodes_per_task * EPISODE_LENGTH
    return {
        "tasks": list(tasks),
        "episodes_per_task": episodes_per_task,
        "steps": steps,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "steps_per_s_wall": steps / wall,
        "steps_per_s_cpu": steps / max(cpu, 1e-9),
    }


def pretraining_rate(
    data_dir: str | Path,
    run_dir: str | Path,
    tasks: Sequence[str] = DEFAULT_TASKS,
    updates: int = 200,
    batch_size: int = 256,
    model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Pretrain the model on ``tasks``' data for ``updates`` updates and time it.

    Args:
        data_dir: Datasets directory holding the tasks.
        run_dir: The pretraining run's directory (its ``model.safetensors`` is the model of the
            later steps).
        tasks: The tasks trained on.
        updates: Updates (one log window over all of them: the first updates are included).
        batch_size: Contexts per update.
        model: Model fields of :class:`~memrl.agents.pretrained.pretrain_config.PretrainConfig`
            to change (``embed_dim``, ``num_layers``, ...); None: the default model.

    Returns:
        ``{"updates", "batch_size", "tokens_per_update", "parameters", "updates_per_s_wall",
        "tokens_per_s_wall", "cpu_ms_per_update", "tokens_per_s_cpu", "model_path"}``; the CPU
        figures cover the whole ``train()`` (sampling, logging, the final checkpoint and export).
    """
    from memrl.agents.l2m.speed import parameter_count
    from memrl.agents.pretrained.model import TOKENS_PER_STEP
    from memrl.agents.pretrained.pretrain_config import PretrainConfig
    from memrl.agents.pretrained.training import PretrainTrainer

    config = PretrainConfig(
        data=[str(data_dir)], tasks=list(tasks), steps=updates, batch_size=batch_size,
        warmup_steps=min(10, updates), checkpoint_every=updates, log_every=updates,
        eval_episodes=0, tensorboard=False, threads=1, **dict(model or {}),
    )  # fmt: skip
    trainer = PretrainTrainer(config, run_dir, progress=False)
    result, _, cpu = _timed(trainer.train)
    tokens = batch_size * TOKENS_PER_STEP * config.context_steps
    return {
        "updates": updates,
        "batch_size": batch_size,
        "tokens_per_update": tokens,
        "parameters": parameter_count(trainer.model),
        "updates_per_s_wall": result.metrics["charts/updates_per_s"],
        "tokens_per_s_wall": result.metrics["charts/tokens_per_s"],
        "cpu_ms_per_update": 1000 * cpu / updates,
        "tokens_per_s_cpu": tokens * updates / max(cpu, 1e-9),
        "model_path": str(result.model_path),
    }


def action_latency(
    model: Mapping[str, Any] | None = None,
    batch: int = ACTION_BATCH,
    repeats: int = 200,
) -> list[dict[str, Any]]:
    """Milliseconds per action of the frozen model and of L2M, for 1 and ``batch`` envs.

    Args:
        model: ``MDDTConfig`` fields to change; None: the default model.
        batch: Envs of the batched measurement.
        repeats: Timed calls per measurement (median).

    Returns:
        One row per (agent, envs): ``{"agent", "num_envs", "cpu_ms", "wall_ms",
        "cpu_ms_per_env"}``.
    """
    from memrl.agents.l2m.speed import measure_action_ms
    from memrl.agents.pretrained.config import MDDTConfig

    config = MDDTConfig(**dict(model or {}))
    rows = []
    for agent, method in (("frozen model", "full"), ("l2m", "l2m")):
        for num_envs in (1, batch):
            timing = measure_action_ms(config, num_envs=num_envs, method=method, repeats=repeats)
            rows.append({"agent": agent, "num_envs": num_envs, "cpu_ms": timing.cpu_ms,
                         "wall_ms": timing.wall_ms,
                         "cpu_ms_per_env": timing.cpu_ms / num_envs})  # fmt: skip
    return rows


def evaluation_rate(model_path: str | Path, task: str, episodes: int = 10) -> dict[str, Any]:
    """Play ``task`` with the model at ``model_path``, ``episodes`` episodes in parallel.

    Args:
        model_path: A ``model.safetensors`` whose task table holds ``task``.
        task: The task played.
        episodes: Parallel episodes (a fine-tuning run's ``eval_episodes``).

    Returns:
        ``{"task", "episodes", "wall_seconds", "cpu_seconds", "cpu_seconds_per_episode"}``.
    """
    import torch

    from memrl.agents.pretrained.checkpoint import load_model
    from memrl.agents.pretrained.evaluation import evaluate_model
    from memrl.agents.pretrained.tasks import tasks_from_json

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        network, metadata = load_model(model_path)
        table = {t.name: t for t in tasks_from_json(metadata["tasks"])}
        _, wall, cpu = _timed(lambda: evaluate_model(network, [table[task]], episodes, seed=0))
    finally:
        torch.set_num_threads(previous)
    return {
        "task": task,
        "episodes": episodes,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_seconds_per_episode": cpu / episodes,
    }


def update_rates(
    data_dir: str | Path,
    model_path: str | Path,
    work_dir: str | Path,
    agents: Sequence[str] | None = None,
    tasks: Sequence[str] = DEFAULT_TASKS,
    updates_per_task: int = 20,
    batch_size: int = 256,
) -> dict[str, dict[str, Any]]:
    """Fine-tune with every agent for ``updates_per_task`` updates on each task; time it.

    Args:
        data_dir: Datasets directory holding the tasks.
        model_path: The pretrained model.
        work_dir: Parent of the runs' directories.
        agents: Agents (default: all of :data:`~memrl.agents.l2m.offline_config.AGENTS`).
        tasks: The stream (at least two tasks, so that a later task is timed).
        updates_per_task: Updates per task (multitask: this times the tasks, at once).
        batch_size: Contexts per update.

    Returns:
        Agent -> ``{"updates", "updates_per_s_wall": [per segment], "cpu_ms_per_update",
        "updates_per_s_cpu", "task_end_cpu_seconds"}``: the CPU figures cover the whole
        ``train()`` (sampling, logging, the checkpoints at task ends) divided by the updates,
        except the agent's end of a task (EWC's Fisher, L2's anchor), given apart (the longest).
    """
    from memrl.agents.l2m.offline_config import AGENTS, OfflineConfig
    from memrl.agents.l2m.offline_trainer import OfflineTrainer

    rates = {}
    for agent in agents or AGENTS:
        config = OfflineConfig(
            agent=agent, tasks=",".join(tasks), pretrained=str(model_path), data=[str(data_dir)],
            updates_per_task=updates_per_task, evaluations_per_task=1, batch_size=batch_size,
            warmup_steps=min(10, updates_per_task), eval_episodes=0, pretrain_eval_tasks="",
            num_identity_keys=0, checkpoint_every=10**9, log_every=10**9, tensorboard=False,
            threads=1,
        )  # fmt: skip
        run_dir = Path(work_dir) / agent
        trainer = OfflineTrainer(config, run_dir, progress=False)
        task_ends: list[float] = []
        end_task = trainer.method.on_task_end

        def timed_end(
            *args: Any, end_task: Callable[..., None] = end_task, ends: list[float] = task_ends
        ) -> None:
            start = time.process_time()
            end_task(*args)
            ends.append(time.process_time() - start)

        trainer.method.on_task_end = timed_end  # type: ignore[method-assign,assignment]
        _, _, cpu = _timed(trainer.train)
        updates = trainer.total_updates
        cpu -= sum(task_ends)
        wall = [float(row["charts/updates_per_s"]) for row in _rows(run_dir / "metrics.csv")
                if row.get("charts/updates_per_s")]  # fmt: skip
        rates[agent] = {
            "updates": updates,
            "updates_per_s_wall": wall,
            "cpu_ms_per_update": 1000 * cpu / updates,
            "updates_per_s_cpu": updates / max(cpu, 1e-9),
            "task_end_cpu_seconds": max(task_ends) if task_ends else 0.0,
        }
    return rates


def project_offline_run_hours(
    rates: Mapping[str, Any],
    agent: str,
    num_tasks: int = 10,
    updates_per_task: int = 2_000,
    evaluations_per_task: int = 5,
    evaluated_tasks: int = 15,
    eval_episodes: int = 10,
    identity_key_updates: int = 1_000,
) -> float:
    """Expected hours of one fine-tuning run on a core of its own, from :func:`bench_l2m`'s rates.

    Updates at the agent's CPU rate (l2m's identity-key updates at l2m's), the agent's end of
    every task, and every evaluation (the frozen model's before the stream, then
    ``evaluations_per_task`` per task) playing ``evaluated_tasks`` tasks at the measured CPU
    seconds per episode. Loading the data and the model (seconds) is left out.

    Args:
        rates: ``{"agents": {agent: {"updates_per_s_cpu", "task_end_cpu_seconds" (optional)}},
            "evaluation": {"cpu_seconds_per_episode"}}`` (a ``memrl bench l2m --json`` report).
        agent: The agent.
        num_tasks: Tasks of the stream.
        updates_per_task: Updates per task.
        evaluations_per_task: Evaluations per task.
        evaluated_tasks: Tasks every evaluation plays (the stream's, held-out and pretraining
            tasks: CW10 and the default five pretraining tasks make 15).
        eval_episodes: Episodes per task and evaluation (0: no evaluation).
        identity_key_updates: l2m's updates on the pretraining data (0: no identity keys).

    Returns:
        Hours.
    """
    agent_rates = rates["agents"][agent]
    seconds = num_tasks * updates_per_task / agent_rates["updates_per_s_cpu"]
    seconds += num_tasks * agent_rates.get("task_end_cpu_seconds", 0.0)
    if agent == "l2m":
        seconds += identity_key_updates / rates["agents"]["l2m"]["updates_per_s_cpu"]
    if eval_episodes:
        evaluations = 1 + num_tasks * evaluations_per_task
        per_episode = rates["evaluation"]["cpu_seconds_per_episode"]
        seconds += evaluations * evaluated_tasks * eval_episodes * per_episode
    return seconds / 3600


def bench_l2m(
    tasks: Sequence[str] = DEFAULT_TASKS,
    episodes_per_task: int = 2,
    pretrain_updates: int = 200,
    batch_size: int = 256,
    updates_per_task: int = 20,
    agents: Sequence[str] | None = None,
    eval_episodes: int = 10,
    action_repeats: int = 200,
    model: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time every step of the pipeline (see the module docstring); a JSON-ready report.

    Args:
        tasks: Two or more CW10 tasks (collected, pretrained on, fine-tuned on).
        episodes_per_task: Scripted episodes collected per task.
        pretrain_updates: Pretraining updates.
        batch_size: Contexts per pretraining and fine-tuning update.
        updates_per_task: Fine-tuning updates per task and agent.
        agents: Fine-tuning agents (default: all).
        eval_episodes: Parallel episodes of the timed evaluation.
        action_repeats: Timed actions per latency measurement.
        model: Model fields to change (tests use a tiny model); None: the default model.
        progress: Called with the name of each step as it starts.

    Returns:
        ``{"machine", "load_average": {"before", "after"}, "settings", "collection",
        "pretraining", "action_latency", "evaluation", "agents", "projected_hours"}``.
    """
    from memrl.bench.machine import machine_info

    if len(tasks) < 2:
        raise ValueError(f"tasks must name at least two tasks, got {list(tasks)}")
    for name, value in (("episodes_per_task", episodes_per_task),
                        ("pretrain_updates", pretrain_updates), ("batch_size", batch_size),
                        ("updates_per_task", updates_per_task), ("eval_episodes", eval_episodes),
                        ("action_repeats", action_repeats)):  # fmt: skip
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    say = progress or (lambda _: None)
    report: dict[str, Any] = {
        "machine": machine_info(("memrl", "torch", "metaworld", "mujoco", "minari")),
        "load_average": {"before": load_average()},
        "settings": {"tasks": list(tasks), "batch_size": batch_size, "model": dict(model or {})},
    }
    with tempfile.TemporaryDirectory(prefix="memrl-bench-l2m-") as work:
        data = Path(work) / "datasets"
        say("data collection")
        report["collection"] = collection_rate(data, tasks, episodes_per_task)
        say("pretraining")
        report["pretraining"] = pretraining_rate(
            data, Path(work) / "pretrain", tasks, pretrain_updates, batch_size, model
        )
        model_path = report["pretraining"].pop("model_path")
        say("action latency")
        report["action_latency"] = action_latency(model, repeats=action_repeats)
        say("evaluation")
        report["evaluation"] = evaluation_rate(model_path, tasks[0], eval_episodes)
        say("fine-tuning updates")
        report["agents"] = update_rates(data, model_path, Path(work) / "finetune", agents, tasks,
                                        updates_per_task, batch_size)  # fmt: skip
    report["load_average"]["after"] = load_average()
    report["projected_hours"] = {
        agent: project_offline_run_hours(report, agent) for agent in report["agents"]
    }
    return report


def format_report(report: Mapping[str, Any]) -> str:
    """The figures as text: one line per step, a table per agent, the projected hours."""
    collection, pretraining = report["collection"], report["pretraining"]
    evaluation = report["evaluation"]
    load = report["load_average"]
    lines = [
        f"load average before {load['before']}, after {load['after']} "
        f"({report['machine']['cores']} cores): wall figures are this machine's, CPU figures a "
        "core of its own",
        f"data collection: {collection['steps_per_s_wall']:,.0f} steps/s wall, "
        f"{collection['steps_per_s_cpu']:,.0f} CPU ({collection['steps']:,} steps of "
        f"{', '.join(collection['tasks'])})",
        f"pretraining ({pretraining['parameters']:,} parameters, batch "
        f"{pretraining['batch_size']}, {pretraining['tokens_per_update']:,} tokens/update): "
        f"{pretraining['updates_per_s_wall']:.1f} updates/s wall "
        f"({pretraining['tokens_per_s_wall']:,.0f} tokens/s), "
        f"{pretraining['cpu_ms_per_update']:.0f} ms CPU/update "
        f"({pretraining['tokens_per_s_cpu']:,.0f} tokens/s)",
        f"evaluation: {evaluation['episodes']} episodes of {evaluation['task']} in parallel, "
        f"{evaluation['wall_seconds']:.1f} s wall, {evaluation['cpu_seconds_per_episode']:.2f} "
        "s CPU per episode",
        "",
        f"{'action latency':<16} {'envs':>5} {'CPU ms':>8} {'wall ms':>8} {'CPU ms/env':>11}",
    ]
    for row in report["action_latency"]:
        lines.append(f"{row['agent']:<16} {row['num_envs']:>5} {row['cpu_ms']:>8.2f} "
                     f"{row['wall_ms']:>8.2f} {row['cpu_ms_per_env']:>11.2f}")  # fmt: skip
    lines += [
        "",
        f"{'agent':<11} {'updates/s wall':>18} {'CPU ms/update':>14} {'updates/s CPU':>14} "
        f"{'CW10 run h':>11}",
    ]
    for agent, row in report["agents"].items():
        wall = "/".join(f"{rate:.1f}" for rate in row["updates_per_s_wall"])
        lines.append(
            f"{agent:<11} {wall:>18} {row['cpu_ms_per_update']:>14.0f} "
            f"{row['updates_per_s_cpu']:>14.1f} {report['projected_hours'][agent]:>11.2f}"
        )
    total = 3 * sum(report["projected_hours"].values())
    lines += [
        "",
        "CW10 run h: one default run (10 tasks x 2,000 updates, 5 evaluations per task of 15 "
        "tasks x 10 episodes) on a core of its own; updates/s wall per task segment",
        f"the study (every agent x 3 seeds): {total:.1f} core-hours "
        f"({total / 2:.1f} h with 2 jobs)",
    ]
    return "\n".join(lines)
