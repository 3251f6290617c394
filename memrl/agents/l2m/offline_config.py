"""The configuration of offline continual fine-tuning (torch-free, so ``memrl --help`` is fast).

``memrl train --offline --stream CW10 --agent AGENT`` fine-tunes the frozen pretrained multi-domain
Decision Transformer (``memrl pretrain``) task after task on each task's offline data, with L2M
(Schmied et al. 2023) or one of its baselines, and plays every task online after each
evaluation interval (:mod:`memrl.agents.l2m.offline_trainer`).

Defaults and why:

- Optimisation: L2M's AdamW (weight decay 0.01, gradient clipping 0.25, batch 256). L2M
  fine-tunes for 100,000 updates per task at a constant learning rate of 1e-4; memrl's budget is
  about 50 times smaller (``updates_per_task`` 2,000: at batch 256 that is 512,000 contexts, about
  25 passes over a task's 20,000 steps of scripted data), so the learning rate is 1e-3 (L2M's own
  rate for its offline fine-tuning of small DTs) with a warm-up of 100 updates and a cosine decay
  to zero within every task. A probe of 400 updates on hammer-v3 from the model pretrained for
  18,000 of its 30,000 updates ended at an action loss of 2.85 (ft), 3.02 (l2m) and 3.03 (lora)
  with 1e-3, and 2.95, 3.18 and 3.18 with 1e-4, the adapters' loss still falling.
- Keys: L2M trains the pools' keys with the same learning rate, 1e-4, for 100,000 updates per
  task; at 1e-3 for 2,000 updates the keys rotate too little: in a probe (300 updates per task,
  the 18,000-update model) the keys of hammer-v3 and push-wall-v3 ended at a cosine of 0.42 and
  0.36 with their tasks' queries while the identity keys (1,000 updates) reached 0.85-0.92, so
  every query matched an identity key when the tasks were played. Queries of different Meta-World
  tasks are close (cosine 0.90-1.00 between the tasks' mean queries, 0.996 within a task), so the
  keys must converge to tell them apart. ``key_learning_rate`` 1e-2 gives the keys L2M's travel
  (learning rate x updates: about 10 per coordinate); in the same probe hammer-v3's key then
  reached 0.99 and took all of its queries. Even converged keys (each task's key at its mean
  query, the identity keys as trained) route only 23-100% of a CW10 task's queries to its own
  entry with the 30,000-update model (push-v3 and push-wall-v3 least; up to 62% go to identity
  keys), and 68-100% of the queries of five MT40 tasks to identity keys: the query of memrl's
  small model separates the Meta-World tasks only partly.
- Modulators: L2M's pool of 30 entries with LoRA of rank 8, alpha 16 on query, value and the first
  feed-forward layer; top-1 cosine match; pull loss 0.5; usage-count penalty on. 10 identity keys
  trained for 1,000 updates on the pretraining data before the stream: each covers about five of the
  50 pretraining tasks once the usage penalty has spread the data over them (more identity keys
  would catch more fine-tuning queries, fewer would leave pretraining queries to the modulators).
- L2P: L2M's L2P configuration (100 prompts of length 5, top-5, count penalty).
- EWC: L2M's lambda 400 on L2M's Fisher (squared gradients of the batch action loss, 10 batches).
  L2: a coefficient that gives the penalty EWC's would have if the importance were spread evenly
  over the weights: 400 x the mean Fisher diagonal at the end of a task. Measured 7e-6 after the
  400-update ft probe above (1.5e-3 before it, on data the model has not learnt), so 3e-3.
  Continual World's L2 (1e5) is on another scale (a Gaussian policy's Fisher, SAC's losses).
- Evaluation: 10 episodes per task (Continual World's), 5 evaluations per task so that every
  task's window holds the 5 evaluations Continual World's end-of-task values average; a fixed
  sample of five MT40 pretraining tasks (:data:`PRETRAIN_EVAL_TASKS`) for the retention of
  pretraining skill.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGENTS: tuple[str, ...] = ("l2m", "l2m-oracle", "l2p", "ft", "lora", "l2", "ewc", "multitask")
"""The offline fine-tuning agents: L2M, L2M with the task id choosing the entry, L2P's prompt pool,
full fine-tuning, one shared LoRA, fine-tuning with an L2 or EWC penalty, multi-task fine-tuning
on every task's data at once (the upper bound)."""
OFFLINE_STREAMS: tuple[str, ...] = ("CW10",)
"""The streams fine-tuned offline (``tasks`` replaces their tasks)."""
DEFAULT_PRETRAINED = "assets/pretrained/mddt.safetensors"
"""Where the shipped pretrained model lives in a source checkout."""
SHIPPED_PRETRAINED = str(Path(__file__).resolve().parents[3] / DEFAULT_PRETRAINED)
"""The shipped model of the checkout this memrl runs from, whatever the working directory."""
PRETRAIN_EVAL_TASKS = (
    "door-open-v3,plate-slide-side-v3,door-close-v3,button-press-topdown-wall-v3,dial-turn-v3"
)
"""Five MT40 tasks, evaluated at every evaluation to measure how much of the pretraining skill
survives fine-tuning. They were chosen as the tasks an earlier pretrained model (30,000 updates,
without per-domain normalisation) solved most often in its own evaluation, so that the frozen
model's success is a baseline worth retaining, and kept fixed since: the shipped model's success on
them is 0.8, 1.0, 1.0, 1.0 and 0.6 (5 episodes each, its model card)."""
RESUMABLE_CHANGES = ("data", "pretrained", "checkpoint_every", "log_every", "tensorboard",
                     "threads")  # fmt: skip
"""Fields that may differ when a run is resumed: where the data and the model live (their content
must be the same, which the trainer checks) and settings that do not change what is learnt."""


def task_names(spec: str) -> list[str]:
    """The names of a comma-separated list."""
    return [name.strip() for name in spec.split(",") if name.strip()]


@dataclass
class OfflineConfig:
    """Configuration of an offline fine-tuning run (each field is a ``memrl train`` option)."""

    agent: str = "l2m"
    """The agent: l2m, l2m-oracle, l2p, ft, lora, l2, ewc, multitask."""
    stream: str = "CW10"
    """The stream whose tasks are fine-tuned in order (CW10)."""
    tasks: str = ""
    """Comma-separated tasks that replace the stream's (names, or list names such as CW10)."""
    pretrained: str = SHIPPED_PRETRAINED
    """The pretrained model (model.safetensors of `memrl pretrain`)."""
    data: list[str] = field(default_factory=list)
    """Datasets directories holding the tasks' data (searched recursively)."""
    updates_per_task: int = 2000
    """Gradient updates on each task's data (multitask: this times the tasks, on all at once)."""
    evaluations_per_task: int = 5
    """Online evaluations in each task's window, evenly spaced, the last at the task's end; must
    divide updates_per_task (Continual World's end-of-task values average the last 5)."""
    batch_size: int = 256
    """Contexts per update."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate (warm-up, then cosine decay to zero within every task)."""
    key_learning_rate: float = 1e-2
    """Pools: peak learning rate of the keys (same schedule), so that they converge within the
    budget as L2M's do in 100,000 updates at 1e-4."""
    weight_decay: float = 0.01
    """AdamW weight decay of matrices (full fine-tuning and the shared LoRA; pools take none, as
    it would shrink the entries of earlier tasks)."""
    warmup_steps: int = 100
    """Updates of linear learning-rate warm-up at the start of every task."""
    grad_clip: float = 0.25
    """Clip the gradients' global norm to this."""
    lora_rank: int = 8
    """Rank of the LoRA modulators (l2m, l2m-oracle, lora)."""
    lora_alpha: float = 16.0
    """LoRA alpha (the update is scaled by alpha / rank)."""
    pool_size: int = 30
    """Entries of L2M's modulator pool."""
    num_identity_keys: int = 10
    """l2m: extra keys that mean "no modulation", trained on the pretraining data first."""
    identity_key_updates: int = 1000
    """l2m: updates that train the identity keys on the pretraining data before the stream."""
    count_penalty: bool = True
    """Pools: the usage-count penalty that steers a new task to unused entries."""
    pull_coefficient: float = 0.5
    """Pools: weight of the pull loss -cos(query, selected key)."""
    prompt_pool_size: int = 100
    """l2p: prompts in the pool."""
    prompt_length: int = 5
    """l2p: prefix tokens per prompt and block."""
    prompt_top_k: int = 5
    """l2p: prompts selected per sample."""
    l2_coef: float = 3e-3
    """l2: weight of the penalty sum_i (theta_i - theta*_i)^2 towards the previous task's end."""
    ewc_coef: float = 400.0
    """ewc: weight of the penalty sum_i F_i (theta_i - theta*_i)^2 (L2M: 400)."""
    ewc_fisher_batches: int = 10
    """ewc: batches of the finished task's data that estimate the Fisher diagonal."""
    eval_episodes: int = 10
    """Episodes per task and evaluation; 0: no online evaluation."""
    pretrain_eval_tasks: str = PRETRAIN_EVAL_TASKS
    """Comma-separated pretraining tasks evaluated at every evaluation (never trained here): the
    retention of pretraining skill; empty: none."""
    held_out: str = ""
    """Comma-separated tasks evaluated at every evaluation but never trained; empty: none."""
    seed: int = 0
    """Seed of the modulators' initialisation, the sampling and the evaluation."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many updates (and at every task's end)."""
    log_every: int = 100
    """Log training metrics every this many updates."""
    tensorboard: bool = True
    """Also write TensorBoard events."""
    threads: int = 1
    """torch threads (0: leave torch's default)."""

    def stream_tasks(self) -> list[str]:
        """The tasks fine-tuned, in order: ``tasks`` or the stream's own."""
        from memrl.streams.catalogue import TASK_LISTS, resolve_tasks

        names = task_names(self.tasks) or list(TASK_LISTS[self.stream])
        return [task.name for task in resolve_tasks(names)]

    def held_out_tasks(self) -> list[str]:
        """The held-out tasks."""
        from memrl.streams.catalogue import resolve_tasks

        names = task_names(self.held_out)
        return [task.name for task in resolve_tasks(names)] if names else []

    def pretraining_tasks(self) -> list[str]:
        """The pretraining tasks evaluated for retention."""
        from memrl.streams.catalogue import resolve_tasks

        names = task_names(self.pretrain_eval_tasks)
        return [task.name for task in resolve_tasks(names)] if names else []

    def stream_name(self) -> str:
        """The stream's name: its own, or its tasks in order when ``tasks`` replaces them."""
        return " > ".join(self.stream_tasks()) if task_names(self.tasks) else self.stream

    def validate(self, name: Callable[[str], str] = lambda field: field) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed.

        Args:
            name: How a message names a field: the field by default; ``memrl train`` passes its
                options (``updates_per_task`` -> ``--updates-per-task``).
        """
        if self.agent not in AGENTS:
            raise ValueError(
                f"{name('agent')} must be one of {', '.join(AGENTS)}, got {self.agent!r}"
            )
        if self.stream not in OFFLINE_STREAMS:
            raise ValueError(
                f"{name('stream')} must be one of {', '.join(OFFLINE_STREAMS)} for offline "
                f"fine-tuning (replace its tasks with {name('tasks')}), got {self.stream!r}"
            )
        positive = ("updates_per_task", "evaluations_per_task", "batch_size", "lora_rank",
                    "pool_size", "prompt_pool_size", "prompt_length", "prompt_top_k",
                    "ewc_fisher_batches", "checkpoint_every", "log_every")  # fmt: skip
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{name(key)} must be >= 1, got {getattr(self, key)}")
        non_negative = ("warmup_steps", "num_identity_keys", "identity_key_updates",
                        "eval_episodes", "seed", "threads")  # fmt: skip
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ValueError(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        for key in ("learning_rate", "key_learning_rate", "grad_clip", "lora_alpha"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{name(key)} must be > 0, got {getattr(self, key)}")
        for key in ("weight_decay", "l2_coef", "ewc_coef", "pull_coefficient"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        if self.updates_per_task % self.evaluations_per_task:
            raise ValueError(
                f"{name('evaluations_per_task')} ({self.evaluations_per_task}) must divide "
                f"{name('updates_per_task')} ({self.updates_per_task}) so that every task's window "
                "ends with an evaluation"
            )
        if self.warmup_steps > self.updates_per_task:
            raise ValueError(
                f"{name('warmup_steps')} ({self.warmup_steps}) must be at most "
                f"{name('updates_per_task')} ({self.updates_per_task})"
            )
        if self.prompt_top_k > self.prompt_pool_size:
            raise ValueError(
                f"{name('prompt_top_k')} ({self.prompt_top_k}) must be at most "
                f"{name('prompt_pool_size')} ({self.prompt_pool_size})"
            )
        if self.agent == "l2m" and self.num_identity_keys and not self.identity_key_updates:
            raise ValueError(
                f"{name('num_identity_keys')} ({self.num_identity_keys}) needs "
                f"{name('identity_key_updates')} >= 1: untrained identity keys would catch "
                f"queries at random (or set {name('num_identity_keys')} 0)"
            )
        if not self.data:
            raise ValueError(f"{name('data')} needs at least one datasets directory")
        self._validate_tasks(name)

    def _validate_tasks(self, name: Callable[[str], str]) -> None:
        """Raise ``ValueError`` for unknown tasks or a task in two of the task lists."""
        lists = {}
        for key, read in (("tasks", self.stream_tasks), ("held_out", self.held_out_tasks),
                          ("pretrain_eval_tasks", self.pretraining_tasks)):  # fmt: skip
            try:
                lists[key] = read()
            except ValueError as error:
                raise ValueError(f"{name(key)}: {error}") from None
        stream = lists["tasks"]
        if len(set(stream)) != len(stream):
            raise ValueError(f"{name('tasks')} names a task twice: {stream}")
        if self.agent == "l2m-oracle" and len(stream) > self.pool_size:
            raise ValueError(
                f"l2m-oracle gives every task its own entry: {name('pool_size')} "
                f"({self.pool_size}) must be at least the {len(stream)} tasks"
            )
        keys = list(lists)
        for index, first in enumerate(keys):
            for second in keys[index + 1 :]:
                shared = sorted(set(lists[first]) & set(lists[second]))
                if shared:
                    raise ValueError(
                        f"{shared} are in both {name(first)} and {name(second)}: a task is "
                        "trained, held out or a pretraining task, only one of them"
                    )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        return dataclasses.asdict(self)
