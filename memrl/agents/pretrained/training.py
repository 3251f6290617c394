"""Offline pretraining of the multi-domain Decision Transformer, read top to bottom.

Before the first update the model takes every domain's state mean and standard deviation from
the data (:func:`~memrl.agents.pretrained.dataset.state_statistics`); they are buffers of the
model, so checkpoints and ``model.safetensors`` carry them. The loop is CleanRL's shape for a
supervised learner: sample a batch of task-balanced contexts
(:class:`~memrl.agents.pretrained.dataset.ContextSampler`), predict every step's action, take
the head's loss on the real steps and action dimensions (cross-entropy over 64 bins, or
mean-squared error), step AdamW under a linear warm-up and cosine schedule with the gradients'
norm clipped, log, checkpoint. At the end the model is exported as ``model.safetensors``
(:func:`~memrl.agents.pretrained.checkpoint.save_model`, with its task table) and played online
on every task (:mod:`memrl.agents.pretrained.evaluation`).

A run directory holds ``config.json``, ``tasks.json`` (the task table: names, indices, data,
target returns), ``metrics.csv`` and TensorBoard events (``tb/``), ``checkpoints/latest.pt`` and
``previous.pt``, and at the end ``model.safetensors`` and ``evaluation.json``. A checkpoint holds
the model, the optimiser, the schedule, the sampler's generator and torch's generator, so a
resumed run continues bit for bit as if it had not stopped; a damaged ``latest.pt`` falls back to
``previous.pt`` (:class:`~memrl.agents.checkpoints.CheckpointStore`). A resume refuses other data
(tasks, episodes, steps, returns) or a changed setting that would change learning.

:func:`gradient_step`, :func:`apply_gradients`, :func:`action_accuracy`, :func:`make_optimizer`
and :func:`warmup_cosine` are the pieces a fine-tuning loop reuses (it passes its own parameters,
a modulation and extra losses).

Measured cost. The default model (``MDDTConfig()``: 2 blocks x 64, 216k parameters) at the
default batch of 256 contexts of 5 steps (3,840 tokens per update), sampling, logging and
checkpoints included, one torch thread, on this 2-core machine while it was shared (load
average 6)::

    memrl data collect --tasks reach-v3,button-press-v3 --episodes-per-task 3 --out DATA
    nice -n 10 memrl pretrain --data DATA --out RUN --steps 500 --log-every 100 \
        --checkpoint-every 250 --eval-episodes 0 --threads 1 --no-progress
    # then charts/updates_per_s and charts/tokens_per_s in RUN/metrics.csv

gave 6.0-6.4 updates/s (23,000-24,800 tokens/s) of wall-clock time, and 35 s of CPU time for
the 500 updates (startup included): about 65 ms of CPU per update, so about 15 updates/s
(58,000 tokens/s) on a core of its own. A batch's sampling costs about 0.07 ms (a numpy gather);
the update is the model's forward and backward. Cost of a pretraining run: 20,000 updates take
about 55 minutes at the shared rate (22 minutes on a free core), the default 30,000 about 80
(33), 50,000 about 2.2 hours (56 minutes); the final evaluation (MT40 x 5 episodes of 200 steps,
10 dm_control tasks x 5 episodes of 1,000 steps) adds a few minutes (estimated from the tests'
timings, not measured at full size). Loading: a task of 100 scripted episodes (20,000 steps,
``memrl data collect``'s default) loads in 0.8 s, so MT40 in about 30 s; the arrays take
200 bytes per step (a million steps: 200 MB).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from memrl.agents.checkpoints import CheckpointStore, atomic_write
from memrl.agents.pretrained.checkpoint import save_model
from memrl.agents.pretrained.dataset import (
    ContextSampler,
    PretrainingData,
    load_pretraining_data,
    state_statistics,
)
from memrl.agents.pretrained.evaluation import (
    TaskEvaluation,
    check_playable,
    evaluate_model,
    summary,
)
from memrl.agents.pretrained.inputs import Modulation, TrajectoryContext
from memrl.agents.pretrained.model import TOKENS_PER_STEP, MultiDomainDecisionTransformer
from memrl.agents.pretrained.pretrain_config import RESUMABLE_CHANGES, PretrainConfig
from memrl.agents.pretrained.tasks import tasks_to_json
from memrl.agents.resume import check_resumable_config
from memrl.agents.run_lock import LOCK_FILE, RunLock
from memrl.agents.run_log import RunLog

CHECKPOINT_KEYS = ("config", "tasks", "model", "optimizer", "scheduler", "update", "sampler",
                   "torch_rng")  # fmt: skip
"""What a checkpoint must hold to resume."""
MODEL_FILE = "model.safetensors"
"""The trained model in a run directory (safetensors, with the task table in its metadata)."""
TASKS_FILE = "tasks.json"
"""The run's task table."""
EVALUATION_FILE = "evaluation.json"
"""The per-task online evaluation at the end of a run."""


def warmup_cosine(update: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor of an update: linear warm-up from 0, then cosine decay to 0.

    Args:
        update: The update about to be taken (0-based).
        warmup_steps: Updates of warm-up (the factor reaches 1 at the last of them).
        total_steps: Updates in the run.
    """
    if update < warmup_steps:
        return (update + 1) / warmup_steps
    progress = (update - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(
    named_parameters: Iterable[tuple[str, nn.Parameter]], learning_rate: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (nanoGPT's rule: >= 2-D).

    Args:
        named_parameters: The parameters to train (those with ``requires_grad``).
        learning_rate: The peak learning rate.
        weight_decay: Decay of the >= 2-D parameters; biases and LayerNorm gains get none.
    """
    trainable = [(n, p) for n, p in named_parameters if p.requires_grad]
    decay = [p for _, p in trainable if p.dim() >= 2]
    no_decay = [p for _, p in trainable if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


@dataclass
class StepStats:
    """What one gradient step measured (detached scalars).

    Attributes:
        action_loss: The head's loss.
        action_accuracy: Share of real (step, dimension) entries whose argmax bin is the
            target's (discrete head), or None (regression head).
        grad_norm: The gradients' global norm before clipping.
    """

    action_loss: torch.Tensor
    action_accuracy: torch.Tensor | None
    grad_norm: torch.Tensor


def gradient_step(
    model: MultiDomainDecisionTransformer,
    context: TrajectoryContext,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
    modulation: Modulation | None = None,
) -> StepStats:
    """One update: loss on the context's own actions, backward, clip, optimiser and schedule step.

    Args:
        model: The model (in ``train()`` mode).
        context: The batch.
        optimizer: Holds the parameters to train.
        scheduler: Stepped once after the optimiser.
        grad_clip: Clip the global gradient norm of the optimiser's parameters to this.
        modulation: A per-sample modulation (fine-tuning an adapter), or None.
    """
    prediction = model(context, modulation)
    loss = model.action_loss(prediction, context)
    grad_norm = apply_gradients(loss, optimizer, scheduler, grad_clip)
    return StepStats(loss.detach(), action_accuracy(model, prediction, context), grad_norm)


def apply_gradients(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
) -> torch.Tensor:
    """Backward, clip the global gradient norm, step the optimiser and the schedule.

    Args:
        loss: The scalar to minimise.
        optimizer: Holds the parameters to train.
        scheduler: Stepped once after the optimiser.
        grad_clip: Clip the global gradient norm of the optimiser's parameters to this.

    Returns:
        The gradients' global norm before clipping (detached).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    scheduler.step()
    return grad_norm.detach()


@torch.no_grad()
def action_accuracy(
    model: MultiDomainDecisionTransformer, prediction: torch.Tensor, context: TrajectoryContext
) -> torch.Tensor | None:
    """Share of real (step, dimension) entries whose argmax bin is the target's.

    None for the regression head, which has no bins.
    """
    if model.config.action_head != "discrete":
        return None
    weights = context.action_mask[:, None, :].expand_as(context.actions)
    if context.step_mask is not None:
        weights = weights & context.step_mask[:, :, None]
    hits = prediction.argmax(-1) == model.binning.encode(context.actions)
    return (hits & weights).sum() / weights.sum().clamp_min(1)


@dataclass
class PretrainResult:
    """What a call of :meth:`PretrainTrainer.train` did.

    Attributes:
        start_update: The update the call started from (0, or the checkpoint's on a resume).
        updates: The updates trained in all (the config's ``steps``).
        model_path: The exported ``model.safetensors``.
        evaluation: Task name -> its online evaluation, or None (``eval_episodes`` 0).
        metrics: The last logged training metrics.
    """

    start_update: int
    updates: int
    model_path: Path
    evaluation: dict[str, TaskEvaluation] | None
    metrics: dict[str, float]


class PretrainTrainer:
    """Pretrains a multi-domain Decision Transformer offline; see the module docstring.

    Args:
        config: The run's configuration.
        run_dir: Where everything of the run goes (nothing is written elsewhere).
        resume: Continue the run in ``run_dir`` from its newest intact checkpoint.
        progress: Show a progress bar.
        name: How error messages name a setting (the CLI passes its options).

    Raises:
        FileExistsError: ``run_dir`` already holds files and ``resume`` is False.
        RunInUseError: Another trainer holds ``run_dir``.
        ValueError: A bad setting, bad data, or a resume whose data or settings differ.
    """

    def __init__(
        self,
        config: PretrainConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        name: Callable[[str], str] = lambda field: field,
    ) -> None:
        config.validate(name)
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        if not resume and self.run_dir.is_dir():
            existing = sorted(p.name for p in self.run_dir.iterdir() if p.name != LOCK_FILE)
            if existing:
                raise FileExistsError(
                    f"{self.run_dir} already holds {existing[:4]}; resume the run there with "
                    "--resume (resume=True) or choose another directory"
                )
        self.model_config = config.model_config()
        self.data: PretrainingData = load_pretraining_data(
            config.data,
            config.tasks,
            state_dim=self.model_config.state_dim,
            action_dim=self.model_config.action_dim,
            max_timestep=self.model_config.max_timestep,
            name=name,
        )  # before the run directory is made: bad data leave nothing behind
        if config.eval_episodes:
            check_playable(self.data.tasks)
        self.lock = RunLock(self.run_dir)  # released when train() ends or this fails
        try:
            self._build(resume)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, resume: bool) -> None:
        """Model, optimiser, schedule and sampler; the checkpoint's state when resuming."""
        config = self.config
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model = MultiDomainDecisionTransformer(self.model_config)
        self.model.set_state_statistics(*state_statistics(self.data))
        self.optimizer = make_optimizer(
            self.model.named_parameters(), config.learning_rate, config.weight_decay
        )
        schedule = partial(
            warmup_cosine, warmup_steps=config.warmup_steps, total_steps=config.steps
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.sampler = ContextSampler(self.data, config.context_steps, config.seed)
        self.update = 0
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        if resume and self.checkpoints.exists():
            self._load_checkpoint()
        atomic_write(self.run_dir / "config.json", self._write_json(config.to_dict()))
        atomic_write(self.run_dir / TASKS_FILE, self._write_json(self._task_table()))
        self.log = RunLog(self.run_dir, tensorboard=config.tensorboard)
        self.log.truncate_after(self.update)

    @staticmethod
    def _write_json(value: Any) -> Callable[[Path], None]:
        """A writer of ``value`` as indented JSON, for :func:`atomic_write`."""

        def write(path: Path) -> None:
            path.write_text(json.dumps(value, indent=2) + "\n")

        return write

    def _task_table(self) -> list[dict[str, Any]]:
        return [task.to_dict() for task in self.data.tasks]

    # -- the loop --------------------------------------------------------------------------------

    def train(self) -> PretrainResult:
        """Train until ``config.steps`` updates, export the model, evaluate it online."""
        cfg = self.config
        start_update = self.update
        tokens_per_update = cfg.batch_size * TOKENS_PER_STEP * cfg.context_steps
        bar = tqdm(
            total=cfg.steps,
            initial=self.update,
            unit="update",
            desc=f"pretrain MDDT on {len(self.data.tasks)} tasks",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        metrics: dict[str, float] = {}
        window: list[StepStats] = []
        window_start = time.perf_counter()
        self.model.train()
        try:
            while self.update < cfg.steps:
                context = self.sampler.sample(cfg.batch_size).to_context()
                window.append(
                    gradient_step(
                        self.model, context, self.optimizer, self.scheduler, cfg.grad_clip
                    )
                )
                self.update += 1
                bar.update()
                if self.update % cfg.log_every == 0 or self.update == cfg.steps:
                    elapsed = max(time.perf_counter() - window_start, 1e-9)
                    metrics = self._training_metrics(window, elapsed, tokens_per_update)
                    self.log.write(self.update, metrics)
                    bar.set_postfix(loss=f"{metrics['losses/action_loss']:.3f}")
                    window, window_start = [], time.perf_counter()
                if self.update % cfg.checkpoint_every == 0 or self.update == cfg.steps:
                    self.save_checkpoint()
            bar.close()
            model_path = self.export_model()
            evaluation = self.evaluate() if cfg.eval_episodes else None
        finally:
            bar.close()
            self.log.close()
            self.lock.release()
        return PretrainResult(start_update, self.update, model_path, evaluation, metrics)

    def _training_metrics(
        self, window: list[StepStats], elapsed: float, tokens_per_update: int
    ) -> dict[str, float]:
        """Means over the updates since the last log, the learning rate and the throughput."""
        metrics = {
            "losses/action_loss": float(torch.stack([s.action_loss for s in window]).mean()),
            "losses/grad_norm": float(torch.stack([s.grad_norm for s in window]).mean()),
            "charts/learning_rate": self._learning_rate(self.update - 1),
            "charts/updates_per_s": len(window) / elapsed,
            "charts/tokens_per_s": len(window) * tokens_per_update / elapsed,
        }
        accuracies = [s.action_accuracy for s in window if s.action_accuracy is not None]
        if accuracies:
            metrics["losses/action_accuracy"] = float(torch.stack(accuracies).mean())
        return metrics

    def _learning_rate(self, update: int) -> float:
        """The learning rate of an update (0-based), as the schedule sets it."""
        cfg = self.config
        return cfg.learning_rate * warmup_cosine(update, cfg.warmup_steps, cfg.steps)

    # -- the end ---------------------------------------------------------------------------------

    def export_model(self) -> Path:
        """Write ``model.safetensors`` (atomically) with the task table and training facts."""
        metadata = {
            "tasks": tasks_to_json(self.data.tasks),
            "updates": str(self.update),
            "pretrain_config": json.dumps(self.config.to_dict(), sort_keys=True),
        }

        def write(path: Path) -> None:
            save_model(path, self.model, extra_metadata=metadata)

        return atomic_write(self.run_dir / MODEL_FILE, write)

    def evaluate(self) -> dict[str, TaskEvaluation]:
        """Play every task online; log the results and write ``evaluation.json``."""
        results = evaluate_model(
            self.model,
            self.data.tasks,
            self.config.eval_episodes,
            self.config.seed,
            progress=self.progress,
        )
        self.log.write(self.update, summary(results))
        report = {
            "updates": self.update,
            "episodes_per_task": self.config.eval_episodes,
            "seed": self.config.seed,
            "tasks": [result.to_dict() for result in results.values()],
        }
        atomic_write(self.run_dir / EVALUATION_FILE, self._write_json(report))
        return results

    # -- checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write everything needed to continue exactly; returns the checkpoint's path.

        It becomes ``latest.pt``, the last one ``previous.pt``; TensorBoard events logged so far
        are flushed first.
        """
        self.log.flush()
        payload = {
            "config": self.config.to_dict(),
            "tasks": self._task_table(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "update": self.update,
            "sampler": self.sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        return self.checkpoints.save(payload)

    def _load_checkpoint(self) -> None:
        """Continue from the newest intact checkpoint, if its data and settings are ours."""
        _, payload = self.checkpoints.load(required=CHECKPOINT_KEYS)
        saved = {**PretrainConfig().to_dict(), **payload["config"]}
        check_resumable_config(self.run_dir, saved, self.config.to_dict(), RESUMABLE_CHANGES)
        if payload["tasks"] != self._task_table():
            raise ValueError(
                f"cannot resume {self.run_dir}: the data differ from the run's (compare its "
                f"{TASKS_FILE} with the tasks, episodes and returns found now); point the data "
                "option at the datasets the run was started with"
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.sampler.load_state_dict(payload["sampler"])
        torch.set_rng_state(payload["torch_rng"])
        self.update = payload["update"]
