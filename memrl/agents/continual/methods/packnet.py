"""PackNet (Mallya & Lazebnik 2018) as Continual World runs it: prune, retrain, freeze, per task.

Every weight matrix of the actor's trunk (and of the critics' with ``regularize_critic``; of the
heads too when there is a single head) gets an *owner*: the index of the task whose weights they
are. All weights start owned by task 0. During task ``k`` only weights owned by ``k`` receive
gradients; biases and LayerNorm parameters train during task 0 only and are frozen from then on;
the per-task heads are never touched.

At the end of every task ``k`` but the last:

1. prune: of the weights owned by ``k``, the fraction ``left / (left + 1)`` with the smallest
   magnitude (``left`` = tasks still to come) is set to 0 and handed to task ``k + 1``, so that
   every task ends up with an equal share;
2. retrain the kept weights for ``packnet_retrain_steps`` gradient steps on task ``k``'s replay
   buffer (Continual World: 100k steps for 1M-step tasks; the default here is a tenth of the task's
   budget), with fresh Adam state before and after.

Task ``k`` is evaluated with only the weights owned by tasks ``0..k`` (later tasks' weights are
zeroed for the evaluation and put back afterwards); a task not trained yet sees every weight. With
repeated tasks (cyclic, power-law, or CW20 laid out by task) a task is evaluated with the view of
the last segment that trained it.
Continual World also clips every gradient to a global norm of 2e-5 in its PackNet runs
(``packnet_clipnorm``).

Adam and frozen weights: a masked gradient is exactly zero, and the optimiser state is fresh
whenever the masks change (pruning resets Adam), so Adam's moments of a frozen weight stay zero and
its update is exactly zero.

Pruned fraction: the ``floor(count * fraction)`` smallest-magnitude weights of each matrix are freed
(Continual World frees those at or below the magnitude at that index, which can be one more, or a
few more on ties).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from memrl.agents.continual.buffers import ReplayBuffer
from memrl.agents.continual.config import packnet_retrain_steps
from memrl.agents.continual.methods.base import Method, Segment

if TYPE_CHECKING:
    from memrl.agents.continual.sac import ContinualSAC, Gradients


class PackNet(Method):
    """PackNet: a disjoint share of the shared weights for each task (see the module docstring)."""

    name = "packnet"

    @property
    def clipnorm(self) -> float | None:
        """``packnet_clipnorm`` (Continual World: 2e-5), or None when it is 0."""
        return self.config.packnet_clipnorm or None

    @property
    def retrain_steps(self) -> int:
        """Gradient steps of retraining after each pruning."""
        return packnet_retrain_steps(self.config.packnet_retrain_steps, self.stream.steps_per_task)

    def managed_modules(self, agent: ContinualSAC) -> list[nn.Module]:
        """The networks PackNet manages: the actor (and the critics with ``regularize_critic``)."""
        modules: list[nn.Module] = [agent.actor]
        if self.config.regularize_critic:
            modules += [agent.critic1, agent.critic2]
        return modules

    def attach(self, agent: ContinualSAC) -> None:
        """Every managed weight matrix owned by task 0; biases and norms trainable."""
        managed = [
            p
            for module in self.managed_modules(agent)
            for p in module.shared_parameters()  # type: ignore[operator]
        ]
        self.weights = [p for p in managed if p.dim() == 2]  # Linear weight matrices
        self.others = [p for p in managed if p.dim() != 2]  # biases, LayerNorm
        self.owner = [torch.zeros(p.shape, dtype=torch.int16) for p in self.weights]
        self.frozen_others = False
        self.last_segment_of_task: dict[int, int] = {}

    # -- training ------------------------------------------------------------------------------

    def on_task_start(self, agent: ContinualSAC, segment: Segment, buffer: ReplayBuffer) -> None:
        """Remember which segment trains the task (its evaluation view)."""
        if segment.task_id is not None:
            self.last_segment_of_task[segment.task_id] = segment.index

    def adjust_gradients(
        self,
        agent: ContinualSAC,
        segment: int,
        actor_grads: Gradients,
        critic_grads: Gradients,
    ) -> tuple[Gradients, Gradients]:
        """Zero the gradients of weights other tasks own, and of frozen biases and norms."""
        masks: dict[int, torch.Tensor | None] = {
            id(p): (owner == segment) for p, owner in zip(self.weights, self.owner, strict=True)
        }
        if self.frozen_others:
            masks.update({id(p): None for p in self.others})
        return (
            _masked(list(agent.actor.parameters()), actor_grads, masks),
            _masked(agent.critic_parameters, critic_grads, masks),
        )

    def on_task_end(
        self,
        agent: ContinualSAC,
        segment: Segment,
        buffer: ReplayBuffer,
        learn: Callable[[], object],
    ) -> None:
        """Prune, then retrain the kept weights (not after the last task)."""
        left = len(self.segments) - segment.index - 1
        if left == 0:
            return
        if segment.index == 0:
            self.frozen_others = True
        self.prune(segment.index, left / (left + 1))
        agent.reset_optimizers()
        for _ in range(self.retrain_steps):
            learn()
        agent.reset_optimizers()

    @torch.no_grad()
    def prune(self, segment: int, fraction: float) -> None:
        """Free the ``floor(count * fraction)`` smallest weights ``segment`` owns, per matrix."""
        for weight, owner in zip(self.weights, self.owner, strict=True):
            mine = torch.nonzero(owner.flatten() == segment).squeeze(1)
            count = math.floor(mine.numel() * fraction)
            if count == 0:
                continue
            magnitudes = weight.detach().flatten()[mine].abs()
            freed = mine[torch.argsort(magnitudes, stable=True)[:count]]
            weight.view(-1)[freed] = 0.0
            owner.view(-1)[freed] = segment + 1

    # -- evaluation ----------------------------------------------------------------------------

    @contextmanager
    def evaluation_view(self, agent: ContinualSAC, task_id: int) -> Iterator[None]:
        """Only the weights of segments up to the last one that trained ``task_id``."""
        segment = self.last_segment_of_task.get(task_id)
        if segment is None:  # not trained yet: every weight
            yield
            return
        saved = [w.detach().clone() for w in self.weights]
        with torch.no_grad():
            for weight, owner in zip(self.weights, self.owner, strict=True):
                weight.masked_fill_(owner > segment, 0.0)
        try:
            yield
        finally:
            with torch.no_grad():
                for weight, value in zip(self.weights, saved, strict=True):
                    weight.copy_(value)

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Owners, the freeze flag and the task -> segment map."""
        return {
            "owner": self.owner,
            "frozen_others": self.frozen_others,
            "last_segment_of_task": dict(self.last_segment_of_task),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore owners, the freeze flag and the task -> segment map."""
        self.owner = [o.clone() for o in state["owner"]]
        self.frozen_others = bool(state["frozen_others"])
        self.last_segment_of_task = {
            int(k): int(v) for k, v in state["last_segment_of_task"].items()
        }


def _masked(
    params: list[nn.Parameter], grads: Gradients, masks: dict[int, torch.Tensor | None]
) -> Gradients:
    """Gradients with each managed parameter's mask applied (None: zeroed entirely)."""
    out = []
    for param, grad in zip(params, grads, strict=True):
        if id(param) not in masks:
            out.append(grad)
            continue
        mask = masks[id(param)]
        out.append(torch.zeros_like(grad) if mask is None else grad * mask)
    return out
