r"""Offline continual fine-tuning of the pretrained Decision Transformer, read top to bottom.

``memrl train --offline --stream CW10 --agent AGENT`` (L2M's fine-tuning protocol, Schmied et al.
2023, on memrl's CPU-sized model):

1. **Load** the pretrained model (``--pretrained``, ``memrl pretrain``'s ``model.safetensors``)
   and the stream's tasks' offline data (``--data``: ``memrl data collect``'s Minari datasets);
   attach the agent's modules (:mod:`memrl.agents.l2m.methods`), freezing the pretrained weights
   where the agent keeps them.
2. **Before the stream** play every task once with the frozen model (the evaluation log's
   initial row: the baseline of the retention of pretraining skill), then let the agent train on
   the pretraining data (l2m's identity keys).
3. **Each task in turn** (multitask: every task at once, for the whole budget): a fresh AdamW
   (weight decay on matrices, none for pools), linear warm-up then cosine decay to zero over the
   task's ``updates_per_task`` updates; batches of task-balanced contexts from the task's data
   (:class:`~memrl.agents.pretrained.dataset.ContextSampler`); the loss is the action loss plus
   the agent's extra loss (the pools' pull loss) and penalty (l2, ewc); gradients clipped at 0.25.
   After the task's last update the agent ends the task (l2, ewc: anchor and importance).
4. **Evaluate** ``evaluations_per_task`` times per task (the last at its end) on every task of
   the stream, the held-out tasks and the sample of pretraining tasks, online in the real envs
   (:func:`~memrl.agents.pretrained.evaluation.evaluate_model`, ``eval_episodes`` episodes each,
   argmax actions, conditioned on each task's target return, modulated as the agent says; the
   same episode layouts at every evaluation, seeded by the run's seed and the task): the success
   rate (dm_control: the return / 1000). Written to ``evaluations.json`` in the layout of
   continual SAC's (:class:`~memrl.agents.continual.evaluation_log.EvaluationLog`, one window per
   task, the pretraining sample marked), so ``memrl eval RUN_DIR`` reports Continual World's
   metrics, the retention matrix and the retention of pretraining skill.
5. **Log** (``metrics.csv``, TensorBoard) every ``log_every`` updates; **checkpoint** every
   ``checkpoint_every`` updates and at every task's end.

A run directory holds ``config.json``, ``tasks.json`` (the stream's task table from its data and
the evaluated tasks with their target returns), ``metrics.csv``, ``tb/``, ``evaluations.json`` and
``checkpoints/latest.pt`` (and ``previous.pt``). A checkpoint holds the model (with its adapters),
the agent's state (pool keys and usage, anchors, importances), the task's optimiser, schedule and
sampler, torch's generator and the evaluation log, so a killed run resumes bit for bit; a damaged
``latest.pt`` falls back to ``previous.pt``. A resume refuses other data, another pretrained
model, or a changed setting that would change what is learnt.

Measured cost. The default model (2 blocks x 64, 216k parameters; its weights do not change the
cost, so a random one was used) at batch 256, one torch thread, on this 2-core machine while a
pretraining run and other jobs shared it (load average 4-6), two tasks of 200 updates each
(l2m with ``--num-identity-keys 0``, which only skips the pretraining-data phase)::

    nice -n 10 memrl train --offline --stream CW10 --tasks hammer-v3,push-wall-v3 \
        --agent AGENT --data /work/l2m_data/datasets --pretrained MODEL \
        --updates-per-task 200 --warmup-steps 10 --evaluations-per-task 1 --eval-episodes 0 \
        --pretrain-eval-tasks "" --log-every 100 --out RUN --no-progress --no-tensorboard
    # charts/updates_per_s in RUN/metrics.csv; CPU time from /usr/bin/time, less 4.8 s of
    # start-up (loading, 20 updates: measured apart)

| agent | updates/s (wall, shared machine) | CPU per update |
|---|---|---|
| ft | 7.7-8.4 | 61 ms |
| lora | 7.7-8.7 | 59 ms |
| l2 | 7.1-10.5 | 59 ms |
| ewc | 7.2-8.6 | 61 ms (the Fisher's 10 batches included) |
| l2p | 7.9-10.1 | 58 ms |
| l2m | 7.0-8.8 | 68 ms (samples routed to different entries) |
| l2m-oracle | 11.1-11.8 | 56 ms (one entry per batch) |
| multitask | 11.1-12.0 | 59 ms |

so about 16 updates/s on a core of its own. An evaluation plays 10 episodes of 200 steps of each
task in parallel: 2.7-3.7 s of wall time per task (2.2-2.8 s of CPU; the pool's matching at every
step adds nothing measurable), so about 45 s for CW10 and the five pretraining tasks. A default
CW10 run (10 x 2,000 updates, 5 evaluations per task: 51 evaluations) therefore costs about 20
minutes of updates and 35 of evaluation on a free core (l2m adds about a minute to load the
pretraining data and train its identity keys), about 1.5 hours on the shared machine;
``--evaluations-per-task 1`` cuts the evaluations to 11 (about 8 minutes).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from memrl.agents.checkpoints import CheckpointStore, atomic_write
from memrl.agents.continual.evaluation_log import LOG_FILE, EvaluationLog
from memrl.agents.l2m.methods import OfflineMethod, make_method
from memrl.agents.l2m.offline_config import RESUMABLE_CHANGES, OfflineConfig
from memrl.agents.pretrained.checkpoint import load_model
from memrl.agents.pretrained.dataset import (
    ContextSampler,
    PretrainingData,
    find_datasets,
    load_pretraining_data,
    select_datasets,
    task_data,
)
from memrl.agents.pretrained.evaluation import TaskEvaluation, check_playable, evaluate_model
from memrl.agents.pretrained.tasks import PretrainTask, tasks_from_json
from memrl.agents.pretrained.training import (
    action_accuracy,
    apply_gradients,
    make_optimizer,
    warmup_cosine,
)
from memrl.agents.resume import check_resumable_config
from memrl.agents.run_lock import LOCK_FILE, RunLock
from memrl.agents.run_log import RunLog
from memrl.streams.dm_control_env import MAX_RETURN

LEARNER = "Offline fine-tuning of the pretrained MDDT"
"""The evaluation log's ``learner`` (the title of ``memrl eval``'s report)."""
TASKS_FILE = "tasks.json"
"""The stream's task table and the evaluated tasks, in a run directory."""
CHECKPOINT_KEYS = ("config", "tasks", "pretrained_sha256", "update", "model", "method", "segment",
                   "optimizer", "scheduler", "sampler", "torch_rng", "evaluations")  # fmt: skip
"""What a checkpoint must hold to resume."""
SAMPLER_SALT = 7907
"""Mixed into the seeds of the samplers, so that they differ from the evaluation's."""


def _field(name: str) -> str:
    return name


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (the pretrained model a run started from)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Segment:
    """Consecutive updates on one task's data (every task's, for multitask).

    Attributes:
        index: Position among the run's segments.
        task_id: The task's index in the stream; None: every task at once.
        start: The run's update count when it begins.
        updates: Its length.
    """

    index: int
    task_id: int | None
    start: int
    updates: int

    @property
    def end(self) -> int:
        """The update count when it is over."""
        return self.start + self.updates


@dataclass
class UpdateStats:
    """What one update measured (detached scalars; None where the agent has no such term).

    Attributes:
        action_loss: The head's loss.
        action_accuracy: Share of the real action entries whose argmax bin is the target's.
        grad_norm: The gradients' global norm before clipping.
        extra_loss: The agent's extra loss (the pools' pull loss).
        penalty: The agent's penalty (l2, ewc).
        entries: ``[B]`` the pool entry of every sample.
    """

    action_loss: torch.Tensor
    action_accuracy: torch.Tensor | None
    grad_norm: torch.Tensor
    extra_loss: torch.Tensor | None
    penalty: torch.Tensor | None
    entries: torch.Tensor | None


class OfflineTrainer:
    """Fine-tunes the pretrained model offline on a stream of tasks; see the module docstring.

    Args:
        config: The run's configuration.
        run_dir: Where everything of the run goes.
        resume: Continue the run in ``run_dir`` from its newest intact checkpoint.
        progress: Show progress bars.
        name: How error messages name a setting (the CLI passes its options).

    Raises:
        FileNotFoundError: No pretrained model at ``config.pretrained``, or a missing data
            directory.
        FileExistsError: ``run_dir`` already holds files and ``resume`` is False.
        RunInUseError: Another trainer holds ``run_dir``.
        ValueError: A bad setting, data that do not fit, or a resume whose data, model or
            settings differ.
    """

    def __init__(
        self,
        config: OfflineConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        name: Callable[[str], str] = _field,
    ) -> None:
        config.validate(name)
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.name = name
        if not resume and self.run_dir.is_dir():
            existing = sorted(p.name for p in self.run_dir.iterdir() if p.name != LOCK_FILE)
            if existing:
                raise FileExistsError(
                    f"{self.run_dir} already holds {existing[:4]}; resume the run there with "
                    "--resume (resume=True) or choose another directory"
                )
        pretrained = Path(config.pretrained)
        if not pretrained.is_file():
            raise FileNotFoundError(
                f"{name('pretrained')} {pretrained}: no such file. Pretrain a model with `memrl "
                "pretrain --data DIR --out RUN_DIR` and pass RUN_DIR/model.safetensors (or copy "
                f"it to {pretrained})"
            )
        self.pretrained_digest = file_digest(pretrained)
        self.model, metadata = load_model(pretrained)
        self.stream_tasks = config.stream_tasks()
        self.data: PretrainingData = self._load(self.stream_tasks)  # before the run directory
        self.evaluated = self._evaluated_tasks(metadata.get("tasks"))
        if config.eval_episodes:
            check_playable(self.evaluated)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.method: OfflineMethod = make_method(config, self.model)
        if self.method.uses_pretraining_data:  # found now, loaded when needed
            try:
                select_datasets(find_datasets(config.data, name), None, name)
            except ValueError as error:
                raise ValueError(
                    f"{config.agent} trains its identity keys on the pretraining data, but "
                    f"{name('data')} holds none ({error}); add the directory of the pretraining "
                    f"datasets or set {name('num_identity_keys')} 0"
                ) from None
        self.lock = RunLock(self.run_dir)  # released when train() ends or this fails
        try:
            self._build(resume)
        except BaseException:
            self.lock.release()
            raise

    def _load(self, tasks: list[str]) -> PretrainingData:
        """The tasks' data in the model's layout."""
        model = self.model.config
        return load_pretraining_data(
            self.config.data,
            tasks,
            state_dim=model.state_dim,
            action_dim=model.action_dim,
            max_timestep=model.max_timestep,
            name=self.name,
        )

    def _evaluated_tasks(self, table_json: str | None) -> list[PretrainTask]:
        """The tasks every evaluation plays, in the log's column order, with target returns.

        Stream tasks from their data; held-out tasks from their data if ``--data`` has any,
        else from the model's task table; pretraining tasks from the model's task table (the
        returns it was pretrained to reach).

        Raises:
            ValueError: A held-out task with neither, or a pretraining task the model's table
                does not hold.
        """
        name = self.name
        table = {t.name: t for t in tasks_from_json(table_json)} if table_json else {}
        by_name = {t.name: t for t in self.data.tasks}
        held_out = self.config.held_out_tasks()
        with_data = {s.task for s in find_datasets(self.config.data, name)}
        loaded = [t for t in held_out if t in with_data]
        if loaded:
            by_name.update({t.name: t for t in self._load(loaded).tasks})
        missing = [t for t in held_out if t not in by_name and t not in table]
        if missing:
            raise ValueError(
                f"{name('held_out')}: {missing} have no data in {name('data')} and are not in the "
                f"model's task table, so the return to ask for is unknown"
            )
        pretraining = self.config.pretraining_tasks()
        unknown = [t for t in pretraining if t not in table]
        if unknown:
            held = f"its task table holds {sorted(table)}" if table else "it has no task table"
            raise ValueError(
                f"{name('pretrain_eval_tasks')}: {unknown} are not tasks the model "
                f"{self.config.pretrained} was pretrained on ({held}); name others or none"
            )
        return [
            *(by_name[t] for t in self.stream_tasks),
            *(by_name.get(t) or table[t] for t in held_out),
            *(table[t] for t in pretraining),
        ]

    def _build(self, resume: bool) -> None:
        """Segments, the evaluation log, the checkpoint's state when resuming, the files."""
        config = self.config
        per_task, count = config.updates_per_task, len(self.stream_tasks)
        if self.method.joint:
            self.segments = [Segment(0, None, 0, per_task * count)]
        else:
            self.segments = [Segment(i, i, i * per_task, per_task) for i in range(count)]
        self.total_updates = per_task * count
        self.eval_every = per_task // config.evaluations_per_task
        held_out, pretraining = config.held_out_tasks(), config.pretraining_tasks()
        self.evaluations = EvaluationLog(
            task_names=tuple(t.name for t in self.evaluated),
            steps_per_task=per_task,
            schedule=tuple(range(count)),
            method=config.agent,
            stream=config.stream_name(),
            seed=config.seed,
            eval_episodes=config.eval_episodes,
            deterministic=True,
            return_scored=tuple(t.name for t in self.evaluated if t.domain == "dm_control"),
            held_out=(*held_out, *pretraining),
            pretraining=tuple(pretraining),
            learner=LEARNER,
        )
        self.update = 0
        self.prepared = False  # the frozen model's evaluation and the pretraining-data phase
        self.active: Segment | None = None  # the segment whose optimiser is open
        self.optimizer: torch.optim.AdamW | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.sampler: ContextSampler | None = None
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        resumed = resume and self.checkpoints.exists()
        if resumed:
            self._load_checkpoint()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.run_dir / "config.json", _json({"offline": True, **config.to_dict()}))
        atomic_write(self.run_dir / TASKS_FILE, _json(self._task_tables()))
        self.log = RunLog(self.run_dir, tensorboard=config.tensorboard)
        # A fresh start in the directory of a run killed before its first checkpoint: drop it all.
        self.log.truncate_after(self.update if resumed else -1)

    def _task_tables(self) -> dict[str, Any]:
        return {
            "stream": [task.to_dict() for task in self.data.tasks],
            "evaluated": [task.to_dict() for task in self.evaluated],
        }

    # -- the loop --------------------------------------------------------------------------------

    def segment_at(self, update: int) -> Segment:
        """The segment that takes update ``update`` (0-based)."""
        return next(s for s in self.segments if s.start <= update < s.end)

    def train(self) -> dict[str, float]:
        """Fine-tune to the end of the stream; returns the last evaluation's summary."""
        cfg = self.config
        bar = tqdm(total=self.total_updates, initial=self.update, unit="update",
                   desc=f"{cfg.agent} on {cfg.stream_name()}", disable=not self.progress,
                   dynamic_ncols=True)  # fmt: skip
        window: list[UpdateStats] = []
        seconds = 0.0  # spent in the window's updates (sampling included, evaluations not)
        try:
            if not self.prepared:
                self._prepare(bar)
            self.model.train()
            self.method.train(True)
            while self.update < self.total_updates:
                segment = self.segment_at(self.update)
                if self.active != segment:
                    self.method.on_task_start(segment.task_id)
                    self._open(segment)
                    task = "all tasks" if segment.task_id is None else self._task(segment)
                    bar.set_description(f"{cfg.agent}: {task}")
                    bar.set_postfix_str("")
                start = time.perf_counter()
                window.append(self._update(segment))
                seconds += time.perf_counter() - start
                self.update += 1
                bar.update()
                if self.update % cfg.log_every == 0 or self.update == segment.end:
                    metrics = self._training_metrics(window, max(seconds, 1e-9), segment)
                    self.log.write(self.update, metrics)
                    window, seconds = [], 0.0
                if self.update == segment.end:
                    self._end(segment)
                if cfg.eval_episodes and self.update % self.eval_every == 0:
                    bar.set_postfix_str("evaluating")
                    self.evaluate()
                    bar.set_postfix(eval=f"{self._trained_mean(self.evaluations.success[-1]):.2f}")
                if self.update % cfg.checkpoint_every == 0 or self.update == segment.end:
                    self.save_checkpoint()
        finally:
            bar.close()
            self.log.close()
            self.lock.release()
        return self.summary()

    def _end(self, segment: Segment) -> None:
        """After a segment's last update: the agent ends the task; its optimiser is closed."""
        assert self.sampler is not None
        self.method.on_task_end(segment.task_id, self.sampler)
        self.active = None
        self.optimizer = None
        self.scheduler = None
        self.sampler = None

    def _task(self, segment: Segment) -> str:
        assert segment.task_id is not None
        return self.stream_tasks[segment.task_id]

    def _prepare(self, bar: tqdm) -> None:
        """Before the stream: the frozen model's evaluation, the agent's pretraining-data phase."""
        if self.config.eval_episodes and self.evaluations.initial_success is None:
            bar.set_postfix_str("evaluating the frozen model")
            self.evaluate_initial()
        if self.method.uses_pretraining_data:
            bar.set_postfix_str("training on the pretraining data")
            data = self._load_pretraining()
            sampler = ContextSampler(data, self.model.config.context_steps, self._seed(-1))
            self.log.write(0, self.method.prepare(sampler, self.progress))
        self.prepared = True
        self.save_checkpoint()

    def _load_pretraining(self) -> PretrainingData:
        model = self.model.config
        return load_pretraining_data(
            self.config.data,
            None,
            state_dim=model.state_dim,
            action_dim=model.action_dim,
            max_timestep=model.max_timestep,
            name=self.name,
        )

    def _seed(self, segment_index: int) -> int:
        """The seed of a segment's sampler (-1: the pretraining-data phase's)."""
        entropy = [self.config.seed, SAMPLER_SALT, segment_index + 1]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def _open(self, segment: Segment) -> None:
        """A fresh optimiser, schedule and sampler for a segment."""
        cfg = self.config
        decay = cfg.weight_decay if self.method.decays_weights else 0.0
        named = self.method.trainable_parameters()
        self.optimizer = make_optimizer(named, cfg.learning_rate, decay)
        keys = self.method.key_parameters()
        if keys:  # the same schedule, from its own peak
            self.optimizer.add_param_group(
                {"params": keys, "lr": cfg.key_learning_rate, "weight_decay": 0.0}
            )
        schedule = partial(
            warmup_cosine, warmup_steps=cfg.warmup_steps, total_steps=segment.updates
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        data = self.data if segment.task_id is None else task_data(self.data, self._task(segment))
        steps = self.model.config.context_steps
        self.sampler = ContextSampler(data, steps, self._seed(segment.index))
        self.active = segment

    def _update(self, segment: Segment) -> UpdateStats:
        """One gradient step on a batch of the segment's data."""
        assert self.sampler is not None and self.optimizer is not None
        assert self.scheduler is not None
        context = self.sampler.sample(self.config.batch_size).to_context()
        embedded = self.model.embed(context)
        modulation, extra = self.method.training_modulation(embedded, segment.task_id)
        prediction = self.model.run(embedded, modulation)
        action_loss = self.model.action_loss(prediction, context)
        penalty = self.method.penalty()
        loss = action_loss
        for term in (extra, penalty):
            if term is not None:
                loss = loss + term
        grad_norm = apply_gradients(loss, self.optimizer, self.scheduler, self.config.grad_clip)
        return UpdateStats(
            action_loss=action_loss.detach(),
            action_accuracy=action_accuracy(self.model, prediction, context),
            grad_norm=grad_norm,
            extra_loss=None if extra is None else extra.detach(),
            penalty=None if penalty is None else penalty.detach(),
            entries=self.method.selected_entries(),
        )

    def _training_metrics(
        self, window: list[UpdateStats], seconds: float, segment: Segment
    ) -> dict[str, float]:
        """Means over the updates since the last log, the learning rate, the rate, the pool.

        ``charts/updates_per_s`` counts the updates' own time (sampling included), not the
        evaluations' and checkpoints' in between.
        """

        def mean(values: list[torch.Tensor | None]) -> float | None:
            present = [v for v in values if v is not None]
            return float(torch.stack(present).mean()) if present else None

        cfg = self.config
        in_segment = self.update - 1 - segment.start
        metrics = {
            "losses/action_loss": mean([s.action_loss for s in window]),
            "losses/action_accuracy": mean([s.action_accuracy for s in window]),
            "losses/grad_norm": mean([s.grad_norm for s in window]),
            "losses/extra_loss": mean([s.extra_loss for s in window]),
            "losses/penalty": mean([s.penalty for s in window]),
            "charts/learning_rate": cfg.learning_rate
            * warmup_cosine(in_segment, cfg.warmup_steps, segment.updates),
            "charts/updates_per_s": len(window) / seconds,
            "charts/task": -1.0 if segment.task_id is None else float(segment.task_id),
        }
        entries = window[-1].entries
        if entries is not None:  # the pool entry most of the last batch used, and its share
            counts = torch.bincount(entries)
            metrics["charts/top_entry"] = float(counts.argmax())
            metrics["charts/top_entry_share"] = float(counts.max()) / len(entries)
        return {key: value for key, value in metrics.items() if value is not None}

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate_initial(self) -> list[float]:
        """Play every task with the frozen model (before the stream): the log's initial row."""
        success, returns = self._play(modulated=False)
        self.evaluations.set_initial(success, returns)
        self._log_evaluation(success, returns)
        return success

    def evaluate(self) -> list[float]:
        """Play every task with the agent now; log and return the success rates."""
        success, returns = self._play(modulated=True)
        self.evaluations.append(self.update, success, returns)
        self._log_evaluation(success, returns)
        return success

    def _play(self, modulated: bool) -> tuple[list[float], list[float]]:
        """Success (or normalised return) and mean return of every evaluated task."""
        stream_index = {task: i for i, task in enumerate(self.stream_tasks)}

        def modulate_for(task: PretrainTask) -> Any:
            if not modulated:
                return None
            return self.method.evaluation_modulation(stream_index.get(task.name))

        self.method.train(False)
        try:
            results = evaluate_model(
                self.model, self.evaluated, self.config.eval_episodes, self.config.seed,
                modulate_for=modulate_for,
            )  # fmt: skip
        finally:
            self.method.train(True)
        ordered = [results[task.name] for task in self.evaluated]
        return [_score(r) for r in ordered], [r.mean_return for r in ordered]

    def _log_evaluation(self, success: list[float], returns: list[float]) -> None:
        """Save the evaluation log and write the evaluation's metrics at the current update."""
        self.evaluations.save(self.run_dir / LOG_FILE)
        log = self.evaluations
        names = log.task_names
        metrics = {"eval/average_success": self._trained_mean(success)}
        by_task = dict(zip(names, success, strict=True))
        if log.held_out_only:
            metrics["eval/held_out_average_success"] = _mean(by_task, log.held_out_only)
        if log.pretraining:
            metrics["eval/pretraining_success"] = _mean(by_task, log.pretraining)
            if log.initial_success is not None:
                initial = dict(zip(names, log.initial_success, strict=True))
                baseline = _mean(initial, log.pretraining)
                if baseline > 0:
                    metrics["eval/pretraining_retention"] = (
                        metrics["eval/pretraining_success"] / baseline
                    )
        for task, rate, mean_return in zip(names, success, returns, strict=True):
            metrics[f"eval/{task}/success"] = rate
            metrics[f"eval/{task}/return"] = mean_return
        if self.update > 0 and self.update % self.config.updates_per_task == 0:
            metrics.update({f"retention/{task}": rate for task, rate in by_task.items()})
        self.log.write(self.update, metrics)

    def _trained_mean(self, success: list[float]) -> float:
        """Mean success over the stream's tasks."""
        return float(np.mean(success[: len(self.stream_tasks)]))

    def summary(self) -> dict[str, float]:
        """The updates reached and the last evaluation (average over the stream, per task)."""
        out = {
            "updates": float(self.update),
            "finished": float(self.update >= self.total_updates),
        }
        if self.evaluations.success:
            last = self.evaluations.success[-1]
            out["eval/average_success"] = self._trained_mean(last)
            out.update({f"eval/{t}/success": s for t, s in
                        zip(self.evaluations.task_names, last, strict=True)})  # fmt: skip
        return out

    # -- checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write everything needed to continue exactly; returns the checkpoint's path."""
        self.log.flush()
        open_segment = self.active is not None
        payload = {
            "config": self.config.to_dict(),
            "tasks": self._task_tables(),
            "pretrained_sha256": self.pretrained_digest,
            "update": self.update,
            "model": self.model.state_dict(),
            "method": self.method.state_dict(),
            "segment": self.active.index if self.active is not None else None,
            "optimizer": self.optimizer.state_dict() if open_segment and self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if open_segment and self.scheduler else None,
            "sampler": self.sampler.state_dict() if open_segment and self.sampler else None,
            "torch_rng": torch.get_rng_state(),
            "evaluations": self.evaluations.to_dict(),
        }
        return self.checkpoints.save(payload)

    def _load_checkpoint(self) -> None:
        """Continue from the newest intact checkpoint, if its data, model and settings are ours."""
        _, payload = self.checkpoints.load(required=CHECKPOINT_KEYS)
        saved = {**OfflineConfig().to_dict(), **payload["config"]}
        check_resumable_config(self.run_dir, saved, self.config.to_dict(), RESUMABLE_CHANGES)
        if payload["tasks"] != self._task_tables():
            raise ValueError(
                f"cannot resume {self.run_dir}: the data differ from the run's (compare its "
                f"{TASKS_FILE} with the tasks, episodes and returns found now); point "
                f"{self.name('data')} at the datasets the run was started with"
            )
        if payload["pretrained_sha256"] != self.pretrained_digest:
            raise ValueError(
                f"cannot resume {self.run_dir}: {self.name('pretrained')} "
                f"{self.config.pretrained} is not the model the run started from"
            )
        self.model.load_state_dict(payload["model"])
        self.method.load_state_dict(payload["method"])
        self.update = payload["update"]
        self.prepared = True  # the first checkpoint is written once the run is prepared
        if payload["segment"] is not None:
            self._open(self.segments[payload["segment"]])
            assert self.optimizer is not None and self.scheduler is not None
            assert self.sampler is not None
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.sampler.load_state_dict(payload["sampler"])
        torch.set_rng_state(payload["torch_rng"])
        self.evaluations = EvaluationLog.from_dict(payload["evaluations"])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.evaluations.save(self.run_dir / LOG_FILE)  # drops evaluations after the checkpoint


def _score(result: TaskEvaluation) -> float:
    """A task's score: its success rate, or its mean normalised return (dm_control)."""
    if result.success_rate is not None:
        return result.success_rate
    return float(np.mean([min(max(r / MAX_RETURN, 0.0), 1.0) for r in result.returns]))


def _mean(by_task: dict[str, float], tasks: tuple[str, ...]) -> float:
    return float(np.mean([by_task[task] for task in tasks]))


def _json(value: Any) -> Callable[[Path], None]:
    """A writer of ``value`` as indented JSON, for :func:`atomic_write`."""

    def write(path: Path) -> None:
        path.write_text(json.dumps(value, indent=2) + "\n")

    return write
