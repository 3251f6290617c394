"""``memrl run demo``: what memory is worth on every memory env, and memory agents learning it.

A job: like ``cli`` it may import every sub-package, and nothing imports it.

1. For each registered env an oracle (told at reset what the episode will ask, or remembering
   every observation) and a memory-free policy (acting on the current observation only) play the
   same seeded episodes; their success rates are printed side by side with chance.
2. An HCAM agent and an LSTM agent are trained with memory PPO (its defaults, the same for both:
   the LSTM is not starved of updates) on recall over a range of delays (``memrl/DelayedMatch-v0``
   with a cue, 0-128 distractor steps drawn per episode, then name the cue; 4 symbols) for
   ``train_steps`` env steps each (one torch thread), evaluated on fresh episodes at a delay
   inside that range and at one far beyond it (:data:`EVAL_DELAYS`), and compared: success,
   steps per second, and their training curves (``training_curves.png``). At a delay of 16
   alone a fairly trained LSTM learns too; over 0-128 it does not within the demo's budget,
   while HCAM does. Each agent's run directory is ``<out>/<agent>``, so an interrupted demo
   resumes from the last checkpoint.
3. L2M against full fine-tuning (:func:`l2m_demo`): the shipped pretrained Decision Transformer
   (``assets/pretrained/mddt.safetensors``; the part is skipped, saying so, when it is missing) is
   fine-tuned offline on a slice of CW10 (by default push-wall-v3 then hammer-v3) with ``l2m``
   and with ``ft``, a few hundred updates per task, evaluated after each task; printed: each
   task's success after its own training and after the last task (the retention of the first
   task), and the success on pretraining tasks before and after (the retention of pretraining
   skill). The slice's data are scripted-expert episodes collected on the fly (10 per task,
   2-6 s per task here) unless ``l2m_data`` names datasets; l2m's identity keys train only
   when those hold pretraining data. Runs go to ``<out>/l2m/<agent>`` and resume.
4. A Ballet episode played by the oracle is written as a GIF.

Everything goes to ``demo.json`` in the output directory with the command that produced it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

from memrl.agents.scripted import FAMILY_POLICIES, ScriptedPolicy
from memrl.bench.machine import machine_info
from memrl.envs import MEMORY
from memrl.envs.media import record_episode, save_frames

GIF_ENV = "memrl/Ballet-4-delay16-v0"
RECALL_ENV = "memrl/DelayedMatch-v0"
"""The recall task the demo trains on, with :data:`RECALL_KWARGS` (4 symbols, chance 0.25)."""
RECALL_KWARGS: dict[str, Any] = {"delay": [0, 128], "num_symbols": 4}
"""Every training episode's delay drawn from 0 to 128 steps: longer than the 128-step windows
that memory PPO backpropagates through, so the recall cannot be learnt inside one window only."""
EVAL_DELAYS = (64, 1024)
"""Fixed delays of the evaluation: one inside the training range, one 8x beyond it."""
DEMO_CORES: dict[str, dict[str, Any]] = {
    "hcam": {"num_layers": 2, "width": 64, "chunk_size": 16},
    "lstm": {},
}
"""The agents the demo trains, with their core options (a 2-layer HCAM of width 64 with chunks of
16 steps is fast on a CPU and reads a cue back over its chunks, as in the recall study)."""
SLOW_FAMILIES = {"cued_reach": 10}
"""Families whose episodes are costly (Meta-World), with the divisor of their episode count."""
L2M_TASKS = ("push-wall-v3", "hammer-v3")
"""The CW10 slice of the L2M part, in order: 300 updates teach push-wall-v3 (0.6-0.8 success
with 5 episodes), which full fine-tuning then forgets on hammer-v3 (measured with the shipped
model, seed 0)."""
L2M_AGENTS = ("l2m", "ft")
"""The agents of the L2M part: L2M's modulator pool against full fine-tuning."""


@dataclass
class TrainedRow:
    """One agent trained by the demo, and how well it recalls."""

    agent: str
    steps: int
    steps_per_second: float
    training_success: float
    eval_delays: list[int]
    eval_success: list[float]
    eval_episodes: int
    run_dir: str


@dataclass
class DemoRow:
    """Success of the two scripted policies on one env."""

    id: str
    episodes: int
    oracle: float
    memory_free: float
    chance: float | None
    oracle_is: str
    memory_free_is: str


def success_rate(env_id: str, policy: ScriptedPolicy, episodes: int, seed: int) -> float:
    """Fraction of ``episodes`` seeded episodes (seeds ``seed``, ``seed + 1``, ...) that succeed."""
    env = gymnasium.make(env_id)
    wins = 0
    for episode in range(episodes):
        observation, info = env.reset(seed=seed + episode)
        policy.reset(observation, info)
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(policy.act(observation))
            done = terminated or truncated
        wins += bool(info["is_success"])
    env.close()
    return wins / episodes


def chance_level(env_id: str) -> float | None:
    """Success of uniform guessing where the task is a choice among a few options, else None."""
    entry = MEMORY[env_id]
    kwargs = entry.kwargs
    if entry.family == "ballet":
        return 1 / kwargs["num_dancers"]
    if entry.family == "room_ballet":
        from memrl.envs.dances import NUM_DANCES

        return 1 / NUM_DANCES
    if entry.family == "delayed_match":
        return 1 / kwargs["num_symbols"]
    if "PassiveVisualMatch" in env_id:
        return 1 / kwargs.get("num_choices", 3)
    return None


def evaluate(env_id: str, episodes: int, seed: int) -> DemoRow:
    """Play ``episodes`` episodes of ``env_id`` with its family's oracle and memory-free policy."""
    family = MEMORY[env_id].family
    episodes = max(1, episodes // SLOW_FAMILIES.get(family, 1))
    make_policy = FAMILY_POLICIES[family]
    oracle, free = make_policy(seed=seed, oracle=True), make_policy(seed=seed, oracle=False)
    oracle_rate = success_rate(env_id, oracle, episodes, seed)
    free_rate = success_rate(env_id, free, episodes, seed)
    return DemoRow(
        env_id,
        episodes,
        oracle_rate,
        free_rate,
        chance_level(env_id),
        oracle.description,
        free.description,
    )


def format_rows(rows: list[DemoRow]) -> str:
    """The rows as an aligned text table."""
    header = ("env", "episodes", "oracle", "memory-free", "chance", "memory-free policy")
    lines = [
        (
            r.id,
            str(r.episodes),
            f"{r.oracle:.2f}",
            f"{r.memory_free:.2f}",
            "-" if r.chance is None else f"{r.chance:.2f}",
            r.memory_free_is,
        )
        for r in rows
    ]
    return _aligned(header, lines)


def _as_callable(policy: ScriptedPolicy) -> Any:
    """Adapt a scripted policy to ``record_episode``'s (observation, info) -> action."""
    started = False

    def act(observation: Any, info: dict[str, Any]) -> Any:
        nonlocal started
        if not started:
            policy.reset(observation, info)
            started = True
        return policy.act(observation)

    return act


def train_recall_agents(
    out_dir: Path, steps: int, seed: int, episodes: int, agents: tuple[str, ...] = ("hcam", "lstm")
) -> list[TrainedRow]:
    """Train each agent on :data:`RECALL_ENV` for ``steps`` env steps; evaluate at each delay.

    The evaluation delays are :data:`EVAL_DELAYS`.

    A run directory that already holds a checkpoint is resumed (a finished one is only
    evaluated). The training curves of all agents go to ``out_dir/training_curves.png``.

    Args:
        out_dir: Parent of the agents' run directories.
        steps: Env steps per agent.
        seed: Seed of the training runs (evaluation episodes use ``10_000 + seed``).
        episodes: Evaluation episodes per agent.
        agents: Keys of :data:`DEMO_CORES`.

    Returns:
        One row per agent.
    """
    from memrl.agents.ppo import PPOTrainer
    from memrl.agents.ppo_config import PPOConfig
    from memrl.agents.run_log import read_metric
    from memrl.eval.evaluate import run_episodes
    from memrl.eval.plots import plot_training_curves

    rows: list[TrainedRow] = []
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    for agent in agents:
        run_dir = out_dir / agent
        config = PPOConfig(env_id=RECALL_ENV, env_kwargs=dict(RECALL_KWARGS), core=agent,
                           core_kwargs=DEMO_CORES[agent], total_steps=steps, seed=seed,
                           tensorboard=False, threads=1)  # fmt: skip
        trainer = PPOTrainer(config, run_dir, resume=True)
        trainer.train()
        fixed = [{**RECALL_KWARGS, "delay": delay} for delay in EVAL_DELAYS]
        results = [run_episodes(trainer.policy, RECALL_ENV, kwargs, episodes, seed=10_000 + seed)
                   for kwargs in fixed]  # fmt: skip
        trained_steps, success = read_metric(run_dir, "charts/success_rate")
        _, sps = read_metric(run_dir, "charts/sps")
        curves[agent] = [(trained_steps, success)]
        rows.append(TrainedRow(
            agent, trainer.global_step, sps[-1] if sps else float("nan"),
            float(np.mean(success[-10:])) if success else float("nan"),
            list(EVAL_DELAYS), [r["success_rate"] for r in results], episodes, str(run_dir),
        ))  # fmt: skip
    plot_training_curves(curves, out_dir / "training_curves.png", chance=chance_level(RECALL_ENV),
                         smooth=10, title=f"memory PPO on {RECALL_ENV}")  # fmt: skip
    return rows


def format_trained(rows: list[TrainedRow]) -> str:
    """The trained agents as an aligned text table."""
    header = ("agent", "env steps", "steps/s", "training success",
              *(f"delay {d:,}" for d in EVAL_DELAYS))  # fmt: skip
    lines = [
        (r.agent, f"{r.steps:,}", f"{r.steps_per_second:,.0f}", f"{r.training_success:.2f}",
         *(f"{s:.2f}" for s in r.eval_success))
        for r in rows
    ]  # fmt: skip
    return _aligned(header, lines)


@dataclass
class L2MRow:
    """One agent of the L2M part: success per task after its own training and at the end.

    Attributes:
        agent: ``l2m`` or ``ft``.
        tasks: The slice, in order.
        after_own_task: Each task's success at the end of its own training.
        at_end: Each task's success after the last task.
        pretraining_tasks: The pretraining tasks evaluated.
        pretraining_before: Their mean success with the frozen model.
        pretraining_after: Their mean success after the last task.
        pretraining_retention: After over before (None when the frozen model solved none).
        updates_per_s: Mean fine-tuning updates per second (wall).
        run_dir: The run's directory.
    """

    agent: str
    tasks: list[str]
    after_own_task: list[float]
    at_end: list[float]
    pretraining_tasks: list[str]
    pretraining_before: float | None
    pretraining_after: float | None
    pretraining_retention: float | None
    updates_per_s: float
    run_dir: str


def _pretraining_sample(pretrained: Path, wanted: str) -> str:
    """The tasks of ``wanted`` (comma-separated) that ``pretrained``'s task table holds."""
    from memrl.agents.l2m.offline_config import task_names
    from memrl.agents.pretrained.checkpoint import load_model
    from memrl.agents.pretrained.tasks import tasks_from_json

    _, metadata = load_model(pretrained)
    table = (
        {task.name for task in tasks_from_json(metadata["tasks"])} if "tasks" in metadata else set()
    )
    return ",".join(task for task in task_names(wanted) if task in table)


def l2m_demo(
    out_dir: Path,
    pretrained: str | Path | None = None,
    tasks: tuple[str, ...] = L2M_TASKS,
    updates_per_task: int = 300,
    eval_episodes: int = 5,
    data: list[str] | None = None,
    episodes_per_task: int = 10,
    seed: int = 0,
    pretraining_tasks: str | None = None,
) -> list[L2MRow] | None:
    """Fine-tune the pretrained model on a CW10 slice with L2M and with full fine-tuning.

    Args:
        out_dir: Parent of the data (``data/``) and the runs (``<agent>/``).
        pretrained: The pretrained model (default: the shipped
            ``assets/pretrained/mddt.safetensors`` of the source checkout).
        tasks: The slice, in order (at least two: the first's retention is measured after the
            last).
        updates_per_task: Fine-tuning updates per task.
        eval_episodes: Episodes per task and evaluation.
        data: Datasets directories holding the slice's tasks; None: collect ``episodes_per_task``
            scripted episodes of each into ``out_dir/data``.
        episodes_per_task: Episodes collected per task when ``data`` is None.
        seed: Seed of the runs.
        pretraining_tasks: Comma-separated pretraining tasks evaluated for retention, those of
            them in the model's task table (None: the trainer's five MT40 tasks).

    Returns:
        One row per agent, or None when the pretrained model is missing (the part is skipped).
    """
    import time

    from memrl.agents.l2m.offline_config import (
        DEFAULT_PRETRAINED,
        PRETRAIN_EVAL_TASKS,
        SHIPPED_PRETRAINED,
        OfflineConfig,
    )
    from memrl.agents.l2m.offline_trainer import OfflineTrainer
    from memrl.agents.pretrained.dataset import PRETRAIN_SPLIT, find_datasets
    from memrl.agents.run_log import read_metric
    from memrl.eval.continual import retention_matrix
    from memrl.eval.pretraining_retention import pretraining_retention

    if len(tasks) < 2:
        raise ValueError(f"tasks must name at least two tasks, got {list(tasks)}")
    model = Path(pretrained or SHIPPED_PRETRAINED)
    if not model.is_file():
        print(f"skipped the L2M part: no pretrained model at {model} (the shipped "
              f"{DEFAULT_PRETRAINED}, or `memrl pretrain`'s model.safetensors)")  # fmt: skip
        return None
    if data is None:
        from memrl.data import collect_metaworld

        start = time.perf_counter()
        collect_metaworld(list(tasks), out_dir / "data", episodes_per_task=episodes_per_task,
                          seed=seed, progress=False)  # fmt: skip
        data = [str(out_dir / "data")]
        seconds = time.perf_counter() - start
        print(f"collected {episodes_per_task} scripted episodes of each of {', '.join(tasks)} "
              f"into {data[0]} in {seconds:.0f} s (kept for the next run)")  # fmt: skip
    pretraining_data = any(s.split == PRETRAIN_SPLIT for s in find_datasets(data))
    if not pretraining_data:
        print("l2m runs without identity keys: the data hold no pretraining tasks to train them "
              "on (give datasets of the pretraining split to add them)")  # fmt: skip
    sample = _pretraining_sample(model, pretraining_tasks or PRETRAIN_EVAL_TASKS)
    rows = []
    for agent in L2M_AGENTS:
        config = OfflineConfig(
            agent=agent, tasks=",".join(tasks), pretrained=str(model), data=list(data),
            updates_per_task=updates_per_task, evaluations_per_task=1,
            warmup_steps=max(1, min(100, updates_per_task // 5)), eval_episodes=eval_episodes,
            pretrain_eval_tasks=sample, num_identity_keys=10 if pretraining_data else 0,
            identity_key_updates=updates_per_task, checkpoint_every=updates_per_task,
            log_every=max(1, updates_per_task // 3), seed=seed, tensorboard=False, threads=1,
        )  # fmt: skip
        run_dir = out_dir / agent
        trainer = OfflineTrainer(config, run_dir, resume=True)
        trainer.train()
        log = trainer.evaluations
        matrix = retention_matrix(log)
        own = [float(matrix.matrix[1 + i, matrix.column(t)]) for i, t in enumerate(tasks)]
        end = [float(matrix.matrix[-1, matrix.column(t)]) for t in tasks]
        before = after = retention = None
        if log.pretraining:
            columns = [matrix.column(t) for t in log.pretraining]
            before = float(matrix.matrix[0, columns].mean())
            after = float(matrix.matrix[-1, columns].mean())
            ratio, _ = pretraining_retention(matrix, log.pretraining)
            retention = ratio if np.isfinite(ratio) else None
        _, rates = read_metric(run_dir, "charts/updates_per_s")
        rows.append(L2MRow(
            agent, list(tasks), own, end, list(log.pretraining), before, after, retention,
            float(np.mean(rates)) if rates else float("nan"), str(run_dir),
        ))  # fmt: skip
    return rows


def format_l2m(rows: list[L2MRow]) -> str:
    """The L2M part's rows as an aligned text table."""

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    first, last = rows[0].tasks[0], rows[0].tasks[-1]
    header = ("agent", f"{first}: after it", f"after {last}", "average at end",
              "pretraining: frozen", "after", "retention", "updates/s")  # fmt: skip
    lines = [
        (r.agent, number(r.after_own_task[0]), number(r.at_end[0]),
         number(float(np.mean(r.at_end))), number(r.pretraining_before),
         number(r.pretraining_after), number(r.pretraining_retention), f"{r.updates_per_s:.1f}")
        for r in rows
    ]  # fmt: skip
    return _aligned(header, lines)


def run_demo(
    out_dir: Path,
    episodes: int = 200,
    seed: int = 0,
    env_ids: list[str] | None = None,
    train_steps: int = 200_000,
    l2m_updates_per_task: int = 300,
    l2m_tasks: tuple[str, ...] = L2M_TASKS,
    l2m_data: list[str] | None = None,
    pretrained: str | Path | None = None,
) -> list[DemoRow]:
    """Run the showcase, print its tables, write ``demo.json``, plots and ``ballet.gif``.

    Args:
        out_dir: Directory for the demo's files (created if missing).
        episodes: Episodes per policy and env (Meta-World envs play a tenth of them), and
            evaluation episodes of each trained agent.
        seed: Seed of the first episode (episode k uses ``seed + k``) and of the training runs.
        env_ids: Envs to evaluate with the scripted policies (default: every memory env).
        train_steps: Env steps of memory PPO per trained agent (0: skip the training).
        l2m_updates_per_task: Fine-tuning updates per task of the L2M part (0: skip it).
        l2m_tasks: The CW10 slice of the L2M part.
        l2m_data: Datasets holding the slice's tasks (None: collect them on the fly).
        pretrained: The pretrained model of the L2M part (None: the shipped one).

    Returns:
        One row per env.
    """
    ids = env_ids or list(MEMORY)
    rows = [
        evaluate(env_id, episodes, seed)
        for env_id in tqdm(ids, desc="demo", unit="env", file=sys.stderr)
    ]
    print(format_rows(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    trained: list[TrainedRow] = []
    if train_steps:
        print(f"\ntraining HCAM and LSTM agents on {RECALL_ENV} (delays 0-128), "
              f"{train_steps:,} steps each; success on {episodes} episodes per delay:")  # fmt: skip
        trained = train_recall_agents(out_dir, train_steps, seed, episodes)
        print(format_trained(trained))
        print(f"chance {chance_level(RECALL_ENV):.2f}; curves in {out_dir / 'training_curves.png'}")
    l2m_rows: list[L2MRow] | None = None
    if l2m_updates_per_task:
        print(f"\nfine-tuning the pretrained model offline on {' > '.join(l2m_tasks)} with L2M "
              f"and full fine-tuning, {l2m_updates_per_task:,} updates per task:")  # fmt: skip
        l2m_rows = l2m_demo(out_dir / "l2m", pretrained, l2m_tasks, l2m_updates_per_task,
                            data=l2m_data, seed=seed)  # fmt: skip
        if l2m_rows:
            print(format_l2m(l2m_rows))
    report = {
        "command": "memrl " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "rows": [asdict(r) for r in rows],
        "trained": [asdict(r) for r in trained],
        "l2m": [asdict(r) for r in l2m_rows] if l2m_rows else None,
    }
    (out_dir / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    frames = record_episode(GIF_ENV, seed=seed, policy=_as_callable(FAMILY_POLICIES["ballet"]()))
    gif = save_frames(frames, out_dir / "ballet.gif")
    print(f"\nwrote {out_dir / 'demo.json'} and {gif} ({len(frames)} frames of {GIF_ENV})")
    return rows


def _aligned(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells as text columns, each as wide as its widest cell."""
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    )
