"""What every offline fine-tuning agent does, and the two that only fine-tune: ft and multitask.

An agent is a few hooks the trainer (:mod:`memrl.agents.l2m.offline_trainer`) calls:

| hook | when | used by |
|---|---|---|
| `prepare` | once, before the stream, on the pretraining data | l2m: identity keys |
| `on_task_start` | a task begins | pools: usage |
| `trainable_parameters`, `key_parameters` | building a task's optimiser | all; pools |
| `training_modulation` | every update: the batch's modulation and extra loss | lora, pools |
| `penalty` | every update, added to the loss | l2, ewc |
| `on_task_end` | after a task's last update, on the task's data | l2, ewc |
| `evaluation_modulation` | playing a task (trained, held out or pretraining) | lora, pools |

and class attributes: whether the pretrained weights are frozen, whether weight decay applies,
whether the tasks are trained jointly (multitask). The model's own state (adapters included) is
saved by the trainer; :meth:`OfflineMethod.state_dict` holds the rest (pool keys and usage,
anchors and importances).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.pretrained.dataset import ContextSampler
from memrl.agents.pretrained.evaluation import Modulate
from memrl.agents.pretrained.inputs import Modulation
from memrl.agents.pretrained.model import EmbeddedContext, MultiDomainDecisionTransformer


class OfflineMethod:
    """Base of the offline agents: full fine-tuning, every hook a no-op.

    Args:
        model: The pretrained model (modules are attached to it, its weights frozen or not).
        config: The run's configuration.
    """

    name: ClassVar[str] = "ft"
    freezes_base: ClassVar[bool] = False
    """Whether the pretrained weights stay frozen (only attached modules train)."""
    decays_weights: ClassVar[bool] = True
    """Whether AdamW's weight decay applies (not to pools: it would shrink every entry, the
    entries of earlier tasks included, on every update)."""
    joint: ClassVar[bool] = False
    """Train on every task's data at once for the whole budget (multitask) instead of in turn."""

    def __init__(self, model: MultiDomainDecisionTransformer, config: OfflineConfig) -> None:
        self.model = model
        self.config = config
        if self.freezes_base:
            model.freeze_base()

    @property
    def uses_pretraining_data(self) -> bool:
        """Whether :meth:`prepare` trains on the pretraining data before the stream."""
        return False

    def extra_modules(self) -> dict[str, nn.Module]:
        """Trainable modules besides the model (a pool), by name."""
        return {}

    def key_parameters(self) -> list[nn.Parameter]:
        """The pools' keys (trained at ``key_learning_rate``), or none."""
        return []

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every parameter a task's optimiser trains at ``learning_rate``, by name (keys apart)."""
        keys = {id(p) for p in self.key_parameters()}
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        for prefix, module in self.extra_modules().items():
            named += [(f"{prefix}.{n}", p) for n, p in module.named_parameters()]
        return [(n, p) for n, p in named if id(p) not in keys]

    def train(self, mode: bool = True) -> None:
        """Put the extra modules in training (usage counting, count penalty) or evaluation mode."""
        for module in self.extra_modules().values():
            module.train(mode)

    def prepare(self, sampler: ContextSampler, progress: bool) -> dict[str, float]:
        """Train on the pretraining data before the stream; returns metrics to log."""
        return {}

    def on_task_start(self, task_id: int | None) -> None:
        """A task (its index in the stream; None: every task at once) begins."""

    def training_modulation(
        self, embedded: EmbeddedContext, task_id: int | None
    ) -> tuple[Modulation | None, torch.Tensor | None]:
        """The modulation of a training batch of task ``task_id`` and its extra loss (or None)."""
        return None, None

    def selected_entries(self) -> torch.Tensor | None:
        """``[B]`` the pool entry each sample of the last training batch used (pools only)."""
        return None

    def penalty(self) -> torch.Tensor | None:
        """A loss added to every update (a regulariser), or None."""
        return None

    def on_task_end(self, task_id: int | None, sampler: ContextSampler) -> None:
        """A task has had its last update; ``sampler`` draws from its data."""

    def evaluation_modulation(self, task_id: int | None) -> Modulate | None:
        """How to modulate the model when playing a task (its stream index, None if untrained)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the model's own state that a checkpoint must hold."""
        return {name: module.state_dict() for name, module in self.extra_modules().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        for name, module in self.extra_modules().items():
            module.load_state_dict(state[name])


class FineTuning(OfflineMethod):
    """ft: every weight of the pretrained model trains on each task in turn."""

    name = "ft"


class MultiTask(FineTuning):
    """multitask: full fine-tuning on every task's data at once, for the whole budget.

    Task-balanced batches, one optimiser and one schedule over ``updates_per_task`` times the
    tasks: the upper bound of the sequential agents.
    """

    name = "multitask"
    joint = True
