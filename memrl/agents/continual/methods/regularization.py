"""L2 and EWC: a quadratic penalty that keeps shared weights near where earlier tasks left them.

Penalty (Continual World's ``Regularization_SAC``): from the second task on,

    coef * sum_i importance_i * (theta_i - anchor_i)^2

over the *shared* parameters (the trunks; the per-task heads are free), of the actor only unless
``regularize_critic``. It is added to both the actor and the critic loss. At the start of every task
after the first, the anchor becomes the current parameters and the importance of the task that just
ended is *added* to the accumulated importance (so after k tasks an L2 importance is k).

- L2: importance 1 for every parameter (Continual World's coefficient: 1e5).
- EWC: importance = the diagonal of the Fisher information of the policy, estimated on
  ``ewc_fisher_batches`` batches of ``ewc_fisher_batch_size`` transitions from the finished task's
  replay buffer (coefficient 1e4). For the squashed Gaussian policy Continual World uses the Fisher
  of a Gaussian with mean ``mu = tanh(mean)`` and standard deviation ``sigma = exp(log_std)``::

      F_i = mean_batch(max(1e-5, sum_d (dmu_d/dtheta_i^2 + 2 dsigma_d/dtheta_i^2) / (sigma_d^2+e)))

  with ``e = 1e-6``: per transition, clipped from below at 1e-5 after summing over action
  dimensions. With ``regularize_critic`` each critic adds ``mean_batch(dQ/dtheta_i^2)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from memrl.agents.continual.buffers import Batch, ReplayBuffer
from memrl.agents.continual.methods.base import Method, Segment

if TYPE_CHECKING:
    from memrl.agents.continual.sac import ContinualSAC

FISHER_CLIP = 1e-5
"""Continual World clips the actor's per-transition Fisher from below at this value."""
STD_EPS = 1e-6
"""Added to sigma^2 in the Fisher of the Gaussian (Continual World's)."""
JACOBIAN_CHUNK = 16
"""Transitions per vectorised Jacobian (bounds memory: 16 x 8 outputs x 210k weights x 4 B)."""


class Regularizer(Method):
    """Shared machinery of L2 and EWC: anchors, accumulated importances, the penalty."""

    coefficient: float = 0.0

    def regularized_modules(self, agent: ContinualSAC) -> list[nn.Module]:
        """The networks whose shared parameters are penalised: the actor (and the critics)."""
        modules: list[nn.Module] = [agent.actor]
        if self.config.regularize_critic:
            modules += [agent.critic1, agent.critic2]
        return modules

    def attach(self, agent: ContinualSAC) -> None:
        """Anchor at the initial weights with zero importance (the penalty starts at task 2)."""
        self.parameters: list[nn.Parameter] = [
            p
            for module in self.regularized_modules(agent)
            for p in module.shared_parameters()  # type: ignore[operator]
        ]
        self.anchors = [p.detach().clone() for p in self.parameters]
        self.importance = [torch.zeros_like(p) for p in self.parameters]

    def on_task_start(self, agent: ContinualSAC, segment: Segment, buffer: ReplayBuffer) -> None:
        """After the first task: add the finished task's importance, anchor at the weights now."""
        if segment.index == 0:
            return
        new = self.task_importance(agent, buffer)
        self.importance = [old + add for old, add in zip(self.importance, new, strict=True)]
        self.anchors = [p.detach().clone() for p in self.parameters]

    def task_importance(self, agent: ContinualSAC, buffer: ReplayBuffer) -> list[torch.Tensor]:
        """Importance of every regularised parameter for the task whose data is in ``buffer``."""
        raise NotImplementedError

    def extra_loss(self, agent: ContinualSAC, segment: int) -> torch.Tensor:
        """``coefficient * sum importance * (theta - anchor)^2``, zero during the first task."""
        if segment == 0:
            return torch.zeros(())
        penalty = sum(
            (w * (p - a).pow(2)).sum()
            for p, a, w in zip(self.parameters, self.anchors, self.importance, strict=True)
        )
        return self.coefficient * torch.as_tensor(penalty)

    def state_dict(self) -> dict[str, Any]:
        """Anchors and accumulated importances."""
        return {"anchors": self.anchors, "importance": self.importance}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore anchors and importances."""
        self.anchors = [t.clone() for t in state["anchors"]]
        self.importance = [t.clone() for t in state["importance"]]


class L2(Regularizer):
    """L2: every shared parameter pulled towards its value at the end of each earlier task."""

    name = "l2"

    @property
    def coefficient(self) -> float:  # type: ignore[override]
        """``l2_coef`` (Continual World: 1e5)."""
        return self.config.l2_coef

    def task_importance(self, agent: ContinualSAC, buffer: ReplayBuffer) -> list[torch.Tensor]:
        """Ones."""
        return [torch.ones_like(p) for p in self.parameters]


class EWC(Regularizer):
    """Elastic weight consolidation (Kirkpatrick et al. 2017) with Continual World's Fisher."""

    name = "ewc"

    @property
    def coefficient(self) -> float:  # type: ignore[override]
        """``ewc_coef`` (Continual World: 1e4)."""
        return self.config.ewc_coef

    def task_importance(self, agent: ContinualSAC, buffer: ReplayBuffer) -> list[torch.Tensor]:
        """The Fisher diagonal, averaged over ``ewc_fisher_batches`` replay batches."""
        fishers = [
            fisher_diagonal(
                agent,
                buffer.sample(self.config.ewc_fisher_batch_size),
                self.config.regularize_critic,
            )
            for _ in range(self.config.ewc_fisher_batches)
        ]
        return [torch.stack(per_batch).mean(dim=0) for per_batch in zip(*fishers, strict=True)]


def _named_shared(module: nn.Module) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Names of the module's shared parameters, and every parameter (detached) by name."""
    shared = {id(p) for p in module.shared_parameters()}  # type: ignore[operator]
    names = [name for name, p in module.named_parameters() if id(p) in shared]
    return names, {name: p.detach() for name, p in module.named_parameters()}


def fisher_diagonal(
    agent: ContinualSAC, batch: Batch, regularize_critic: bool = False
) -> list[torch.Tensor]:
    """Continual World's diagonal Fisher of the actor (and critics) on a batch of transitions.

    Args:
        agent: The agent.
        batch: Transitions; each observation's one-hot selects its task's head.
        regularize_critic: Append each critic's ``mean(dQ(s, a)/dtheta^2)`` at the stored
            observations and actions.

    Returns:
        One tensor per regularised parameter, in the order of ``Regularizer.parameters``.
    """
    actor = agent.actor
    names, params = _named_shared(actor)
    others = {k: v for k, v in params.items() if k not in names}

    def outputs(shared: dict[str, torch.Tensor], obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean, log_std = functional_call(actor, {**others, **shared}, (obs[None],))
        return torch.tanh(mean[0]), log_std[0].exp()  # [action_dim] each

    jacobian = vmap(jacrev(outputs), in_dims=(None, 0))
    shared = {name: params[name] for name in names}
    total = {name: torch.zeros_like(p) for name, p in shared.items()}
    for obs in batch.observations.split(JACOBIAN_CHUNK):
        with torch.no_grad():
            _, log_std = actor(obs)
        variance = log_std.exp().pow(2) + STD_EPS  # [chunk, action_dim]
        d_mean, d_std = jacobian(shared, obs)  # name -> [chunk, action_dim, *shape]
        for name in names:
            scale = variance.reshape(*variance.shape, *([1] * shared[name].dim()))
            fisher = ((d_mean[name].pow(2) + 2 * d_std[name].pow(2)) / scale).sum(dim=1)
            total[name] += fisher.clamp(min=FISHER_CLIP).sum(dim=0)
    count = batch.observations.shape[0]
    result = [total[name] / count for name in names]
    if regularize_critic:
        for critic in (agent.critic1, agent.critic2):
            result += _critic_fisher(critic, batch)
    return result


def _critic_fisher(critic: nn.Module, batch: Batch) -> list[torch.Tensor]:
    """``mean(dQ(s, a)/dtheta^2)`` over the batch's observations and actions."""
    names, params = _named_shared(critic)
    others = {k: v for k, v in params.items() if k not in names}

    def q_value(
        shared: dict[str, torch.Tensor], obs: torch.Tensor, action: torch.Tensor
    ) -> torch.Tensor:
        return functional_call(critic, {**others, **shared}, (obs[None], action[None]))[0]

    jacobian = vmap(jacrev(q_value), in_dims=(None, 0, 0))
    shared = {name: params[name] for name in names}
    total = {name: torch.zeros_like(p) for name, p in shared.items()}
    chunks = zip(batch.observations.split(JACOBIAN_CHUNK), batch.actions.split(JACOBIAN_CHUNK),
                 strict=True)  # fmt: skip
    for obs, action in chunks:
        grads = jacobian(shared, obs, action)  # name -> [chunk, *shape]
        for name in names:
            total[name] += grads[name].pow(2).sum(dim=0)
    return [total[name] / batch.observations.shape[0] for name in names]
