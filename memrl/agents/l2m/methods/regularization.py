"""L2 and EWC on full fine-tuning: a quadratic pull towards where earlier tasks left the weights.

Penalty, from the second task on (Continual World's and L2M's ``ewc_start_experience = 1``)::

    coefficient * sum_i importance_i * (theta_i - anchor_i)^2

over every weight of the model. After each task the anchor becomes the weights at that moment and
the task's importance is *added* to the importance so far (Continual World's accumulation; after
``k`` tasks an L2 importance is ``k``).

- L2: importance 1 for every weight.
- EWC: importance = the diagonal Fisher estimate of L2M's baseline (``UDTWithEWC``, after
  avalanche): the squared gradient of the *batch* action loss, averaged over
  ``ewc_fisher_batches`` batches of the finished task's data (L2M: lambda 400, 10 batches).
"""

from __future__ import annotations

from typing import Any

import torch

from memrl.agents.l2m.methods.base import FineTuning
from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.pretrained.dataset import ContextSampler
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer


class Regularized(FineTuning):
    """Full fine-tuning plus the penalty of the module docstring; subclasses give the importance."""

    def __init__(self, model: MultiDomainDecisionTransformer, config: OfflineConfig) -> None:
        super().__init__(model, config)
        self.weights = list(model.base_parameters())
        self.anchors: list[torch.Tensor] | None = None  # None until the first task has ended
        self.importance = [torch.zeros_like(w) for w in self.weights]

    @property
    def coefficient(self) -> float:
        """The penalty's weight."""
        raise NotImplementedError

    def task_importance(self, sampler: ContextSampler) -> list[torch.Tensor]:
        """The importance of every weight for the task whose data ``sampler`` draws from."""
        raise NotImplementedError

    def penalty(self) -> torch.Tensor | None:
        """``coefficient * sum importance * (theta - anchor)^2``; None during the first task."""
        if self.anchors is None:
            return None
        terms = [
            (w * (p - a).pow(2)).sum()
            for p, a, w in zip(self.weights, self.anchors, self.importance, strict=True)
        ]
        return self.coefficient * torch.stack(terms).sum()

    def on_task_end(self, task_id: int | None, sampler: ContextSampler) -> None:
        """Add the finished task's importance; anchor at the weights now."""
        new = self.task_importance(sampler)
        self.importance = [old + add for old, add in zip(self.importance, new, strict=True)]
        self.anchors = [w.detach().clone() for w in self.weights]

    def state_dict(self) -> dict[str, Any]:
        """Anchors and accumulated importances."""
        return {"anchors": self.anchors, "importance": self.importance}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore anchors and importances."""
        anchors = state["anchors"]
        self.anchors = None if anchors is None else [t.clone() for t in anchors]
        self.importance = [t.clone() for t in state["importance"]]


class L2(Regularized):
    """l2: every weight pulled towards its value at the end of each earlier task."""

    name = "l2"

    @property
    def coefficient(self) -> float:
        """``l2_coef``."""
        return self.config.l2_coef

    def task_importance(self, sampler: ContextSampler) -> list[torch.Tensor]:
        """Ones."""
        return [torch.ones_like(w) for w in self.weights]


class EWC(Regularized):
    """ewc: elastic weight consolidation (Kirkpatrick et al. 2017) with L2M's Fisher estimate."""

    name = "ewc"

    @property
    def coefficient(self) -> float:
        """``ewc_coef`` (L2M: 400)."""
        return self.config.ewc_coef

    def task_importance(self, sampler: ContextSampler) -> list[torch.Tensor]:
        """Mean over ``ewc_fisher_batches`` batches of the squared batch-loss gradient."""
        batches = self.config.ewc_fisher_batches
        total = [torch.zeros_like(w) for w in self.weights]
        for _ in range(batches):
            context = sampler.sample(self.config.batch_size).to_context()
            loss = self.model.action_loss(self.model(context), context)
            gradients = torch.autograd.grad(loss, self.weights, allow_unused=True)
            for sum_so_far, gradient in zip(total, gradients, strict=True):
                if gradient is not None:
                    sum_so_far += gradient.pow(2)
        return [t / batches for t in total]
