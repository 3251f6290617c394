"""The configuration of an offline pretraining run (torch-free, so ``memrl --help`` stays fast).

Defaults are L2M's recipe where it fits a CPU (AdamW, weight decay 0.01, linear warm-up then a
cosine decay to zero, gradient clipping at 0.25, batch 256, context 5), except the learning rate,
and memrl's CPU-sized model (:class:`~memrl.agents.pretrained.config.MDDTConfig`'s defaults). L2M
trains 1M updates with a 4k-update warm-up; memrl's budget is tens of thousands of updates
(:mod:`memrl.agents.pretrained.training` has the measured cost), so the warm-up is shorter in
proportion.

The learning rate is 6e-4, not L2M's 1e-4 (which trains a 40M-parameter model for 1M updates;
memrl trains a 216k-parameter one for tens of thousands). Measured on a 4-task diagnostic
(reach, button-press, drawer-close, window-open; 3,000 updates, 200 of warm-up, states
normalised per domain; 5 episodes per task): 1e-4 reached 0.4-0.8 Meta-World success per task,
6e-4 reached 1.0 on all four in one run and 1.0, 1.0, 1.0 and 0.8 (reach) in another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memrl.agents.pretrained.config import ACTION_HEADS, MDDTConfig

_MODEL = MDDTConfig()

RESUMABLE_CHANGES = ("data", "checkpoint_every", "log_every", "eval_episodes", "tensorboard",
                     "threads")  # fmt: skip
"""Fields that may differ when a run is resumed: where the data lives (the data themselves must
be the same, which the trainer checks), and settings that do not change what is learnt."""


@dataclass
class PretrainConfig:
    """Configuration of an offline pretraining run (each field is a ``memrl pretrain`` option)."""

    data: list[str] = field(default_factory=list)
    """Datasets directories, searched recursively for memrl's Minari datasets (any number; a
    task's datasets pool into one task)."""
    tasks: list[str] = field(default_factory=list)
    """Tasks to train on: task names or list names (MT40, DMC-pretrain, L2M-pretrain) that stand
    for their tasks. Empty: every task of the pretraining split found in the data."""
    steps: int = 30_000
    """Gradient updates to train for."""
    batch_size: int = 256
    """Contexts per update."""
    learning_rate: float = 6e-4
    """Peak AdamW learning rate (after warm-up; cosine decay to zero by the last update). Not
    L2M's 1e-4: on a 4-task diagnostic of 3,000 updates, 6e-4 reached 0.8-1.0 success per task
    where 1e-4 reached 0.4-0.8."""
    weight_decay: float = 0.01
    """AdamW weight decay, on weight matrices and embeddings (not biases or LayerNorms)."""
    warmup_steps: int = 1000
    """Updates of linear learning-rate warm-up from zero."""
    grad_clip: float = 0.25
    """Clip the gradients' global norm to this."""
    context_steps: int = _MODEL.context_steps
    """Timesteps per context (L2M: 5)."""
    embed_dim: int = _MODEL.embed_dim
    """Model: token width."""
    num_layers: int = _MODEL.num_layers
    """Model: transformer blocks."""
    num_heads: int = _MODEL.num_heads
    """Model: attention heads (must divide the token width)."""
    dropout: float = _MODEL.dropout
    """Model: dropout probability."""
    action_head: str = _MODEL.action_head
    """Model: "discrete" (64 bins per action dimension, cross-entropy; L2M's) or "regression"
    (tanh mean, mean-squared error)."""
    seed: int = 0
    """Seed of the model's initialisation, the sampling and the evaluation."""
    checkpoint_every: int = 1000
    """Save a checkpoint every this many updates (and at the end)."""
    log_every: int = 100
    """Log training metrics every this many updates."""
    eval_episodes: int = 5
    """Episodes per task of the online evaluation at the end (L2M: 5); 0: no evaluation."""
    tensorboard: bool = True
    """Also write TensorBoard events."""
    threads: int = 0
    """torch threads (0: leave torch's default)."""

    def validate(self, name: Callable[[str], str] = lambda field: field) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed.

        Args:
            name: How a message names a field: the field by default; ``memrl pretrain`` passes
                its options (``batch_size`` -> ``--batch-size``).
        """
        positive = ("steps", "batch_size", "context_steps", "embed_dim", "num_layers",
                    "num_heads", "checkpoint_every", "log_every")  # fmt: skip
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{name(key)} must be >= 1, got {getattr(self, key)}")
        for key in ("warmup_steps", "eval_episodes", "threads", "seed"):
            if getattr(self, key) < 0:
                raise ValueError(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        for key in ("learning_rate", "grad_clip"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{name(key)} must be > 0, got {getattr(self, key)}")
        if not self.weight_decay >= 0:
            raise ValueError(f"{name('weight_decay')} must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name('dropout')} must be in [0, 1), got {self.dropout}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"{name('num_heads')} ({self.num_heads}) must divide {name('embed_dim')} "
                f"({self.embed_dim})"
            )
        if self.action_head not in ACTION_HEADS:
            raise ValueError(
                f"{name('action_head')} must be one of {', '.join(ACTION_HEADS)}, got "
                f"{self.action_head!r}"
            )
        if not self.data:
            raise ValueError(f"{name('data')} needs at least one datasets directory")

    def model_config(self) -> MDDTConfig:
        """The model's architecture (the shared layout's widths, the fields above)."""
        return MDDTConfig(
            context_steps=self.context_steps,
            embed_dim=self.embed_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            dropout=self.dropout,
            action_head=self.action_head,
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        return dataclasses.asdict(self)
