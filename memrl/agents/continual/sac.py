"""Soft actor-critic with Continual World's recipe: multi-head nets, per-task entropy coefficients.

One :meth:`ContinualSAC.update` is Continual World's ``learn_on_batch`` (itself Spinning Up's SAC):

1. Every loss is computed from the same parameters: the clipped double-Q target
   ``r + gamma * (1 - terminated) * (min(Q1', Q2')(s', a') - alpha * log pi(a'|s'))`` with
   ``a' ~ pi(s')``; the critic loss ``0.5 * mean((Q1 - target)^2) + 0.5 * mean((Q2 - target)^2)``;
   the actor loss ``mean(alpha * log pi(a|s) - min(Q1, Q2)(s, a))`` with ``a ~ pi(s)``
   reparameterised; the entropy loss ``-mean(log alpha * (log pi(a|s) + target_entropy))``.
2. The method's penalty (L2, EWC) is added to the actor and critic losses; gradients are taken
   separately for the actor, the critics and ``log alpha``; the method may then adjust them
   (PackNet masks them); optionally they are clipped by global norm.
3. Adam steps; the target critics move by Polyak averaging (SB3's ``polyak_update``).

The entropy coefficient is per task (``log_alpha[num_tasks]``, initialised to 1 as in Continual
World), looked up for every transition by its one-hot; the target entropy is
``action_dim * log(target_output_std * sqrt(2 pi e))`` (about ``-action_dim`` for 0.089).

Own SAC, not SB3's: step 2 (a penalty in both losses, separate gradients that a method adjusts
before the optimiser steps), per-transition heads and entropy coefficients, and optimiser resets
have no hook in ``stable_baselines3.SAC.train``, which owns loss, backward and step in one method;
the package docstring (:mod:`memrl.agents.continual`) gives the full reasoning. SB3 provides the
Polyak update and the ``predict`` signature.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.utils import polyak_update
from torch import nn

from memrl.agents.continual.buffers import Batch
from memrl.agents.continual.networks import Actor, Critic, task_index

if TYPE_CHECKING:
    from memrl.agents.continual.methods import Method

INITIAL_LOG_ALPHA = 1.0
"""Continual World initialises every task's ``log alpha`` to 1 (alpha = e)."""
ADAM_EPS = 1e-7
"""Keras' Adam epsilon (Continual World's optimiser)."""

Gradients = list[torch.Tensor]


class ContinualSAC:
    """The agent: actor, twin critics with targets, per-task entropy coefficients, optimisers.

    Args:
        observation_space: 1-D ``Box`` whose last ``num_tasks`` entries are the task one-hot.
        action_space: 1-D ``Box`` with finite bounds.
        num_tasks: Length of the one-hot.
        hidden_size: Width of the hidden layers.
        num_layers: Hidden layers.
        multi_head: One output head per task.
        hide_task_id: Keep the one-hot out of the trunks.
        learning_rate: Adam learning rate.
        gamma: Discount.
        polyak: Target smoothing (``target <- polyak * target + (1 - polyak) * critic``).
        target_output_std: Standard deviation per action dimension that entropy tuning targets.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        num_tasks: int,
        *,
        hidden_size: int = 256,
        num_layers: int = 4,
        multi_head: bool = True,
        hide_task_id: bool = True,
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        polyak: float = 0.995,
        target_output_std: float = 0.089,
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(
                f"continual SAC needs a 1-D Box action space, got {action_space} (memrl's "
                "memory streams have Discrete actions: use a Meta-World or dm_control stream)"
            )
        if not np.all(np.isfinite(action_space.low)) or not np.all(np.isfinite(action_space.high)):
            raise ValueError(f"action bounds must be finite, got {action_space}")
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"continual SAC needs a 1-D Box observation with the task one-hot, got "
                f"{observation_space}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_tasks = num_tasks
        self.gamma = gamma
        self.polyak = polyak
        self.learning_rate = learning_rate
        self.observation_dim = obs_dim = int(observation_space.shape[0])
        self.action_dim = action_dim = int(action_space.shape[0])

        def network(cls: type[Actor] | type[Critic]) -> Any:
            return cls(
                obs_dim,
                action_dim,
                num_tasks,
                hidden_size=hidden_size,
                num_layers=num_layers,
                multi_head=multi_head,
                hide_task_id=hide_task_id,
            )

        self.actor: Actor = network(Actor)
        self.critic1: Critic = network(Critic)
        self.critic2: Critic = network(Critic)
        self.target1: Critic = network(Critic)
        self.target2: Critic = network(Critic)
        self.target1.load_state_dict(self.critic1.state_dict())
        self.target2.load_state_dict(self.critic2.state_dict())
        self.target1.requires_grad_(False)
        self.target2.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((num_tasks,), INITIAL_LOG_ALPHA))
        self.target_entropy = action_dim * math.log(
            target_output_std * math.sqrt(2 * math.pi * math.e)
        )
        low = torch.as_tensor(action_space.low, dtype=torch.float32)
        high = torch.as_tensor(action_space.high, dtype=torch.float32)
        self.action_scale, self.action_bias = (high - low) / 2, (high + low) / 2
        self.method: Method | None = None  # set by the trainer: its evaluation view applies
        self.reset_optimizers()

    # -- parameters and optimisers -------------------------------------------------------------

    @property
    def critic_parameters(self) -> list[nn.Parameter]:
        """Both critics' parameters (one optimiser steps them together)."""
        return [*self.critic1.parameters(), *self.critic2.parameters()]

    def reset_optimizers(self) -> None:
        """Fresh Adam optimisers (Continual World resets its optimiser at every task change)."""
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=self.learning_rate, eps=ADAM_EPS
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critic_parameters, lr=self.learning_rate, eps=ADAM_EPS
        )
        self.alpha_optimizer = torch.optim.Adam(
            [self.log_alpha], lr=self.learning_rate, eps=ADAM_EPS
        )

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The three optimisers by name."""
        return {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
            "alpha": self.alpha_optimizer,
        }

    def alpha(self, task: int) -> float:
        """Entropy coefficient of ``task``."""
        return float(self.log_alpha[task].detach().exp())

    # -- acting --------------------------------------------------------------------------------

    @torch.no_grad()
    def act(
        self,
        observation: np.ndarray,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Actions for a batch of observations ``[n, obs_dim]``, scaled to the action bounds."""
        obs = torch.as_tensor(observation, dtype=torch.float32)
        sampled, _, mean = self.actor.sample(obs, generator)
        action = mean if deterministic else sampled
        return (action * self.action_scale + self.action_bias).numpy()

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """SB3's ``predict``: actions for one observation or a batch; no recurrent state.

        The task of each observation is read from its one-hot; methods that evaluate each task
        with its own view of the weights (PackNet) get that view for every task in the batch.
        """
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        actions = np.zeros((batch.shape[0], *self.action_space.shape), dtype=np.float32)
        tasks = task_index(torch.as_tensor(batch), self.num_tasks).numpy()
        for task in np.unique(tasks):
            rows = tasks == task
            with self.task_view(int(task)):
                actions[rows] = self.act(batch[rows], deterministic)
        return (actions[0] if single else actions), state

    @contextmanager
    def task_view(self, task: int) -> Iterator[None]:
        """The weights with which ``task`` is evaluated (the method's view; all by default)."""
        if self.method is None:
            yield
        else:
            with self.method.evaluation_view(self, task):
                yield

    # -- learning ------------------------------------------------------------------------------

    def update(self, batch: Batch, method: Method, stage: int) -> dict[str, float]:
        """One gradient step on ``batch`` (see the module docstring); returns diagnostics.

        Args:
            batch: Transitions; their tasks are read from the observations' one-hots.
            method: The continual-learning method (penalty, gradient adjustment, clipping).
            stage: Index of the training segment in progress (the methods' task index).
        """
        obs, actions, rewards, next_obs, terminated = batch
        tasks = task_index(obs, self.num_tasks)  # [batch]
        log_alpha = self.log_alpha[tasks]  # [batch]
        alpha = log_alpha.detach().exp()

        action_pi, log_pi, _ = self.actor.sample(obs)
        q1, q2 = self.critic1(obs, actions), self.critic2(obs, actions)
        q_pi = torch.min(self.critic1(obs, action_pi), self.critic2(obs, action_pi))
        with torch.no_grad():
            next_action, next_log_pi, _ = self.actor.sample(next_obs)
            next_q = torch.min(self.target1(next_obs, next_action),
                               self.target2(next_obs, next_action))  # fmt: skip
            backup = rewards + self.gamma * (1 - terminated) * (next_q - alpha * next_log_pi)

        critic_loss = 0.5 * (q1 - backup).pow(2).mean() + 0.5 * (q2 - backup).pow(2).mean()
        actor_loss = (alpha * log_pi - q_pi).mean()
        alpha_loss = -(log_alpha * (log_pi.detach() + self.target_entropy)).mean()
        penalty = method.extra_loss(self, stage)

        actor_params, critic_params = list(self.actor.parameters()), self.critic_parameters
        actor_grads = _grads(actor_loss + penalty, actor_params, retain_graph=True)
        critic_grads = _grads(critic_loss + penalty, critic_params, retain_graph=False)
        (alpha_grad,) = _grads(alpha_loss, [self.log_alpha], retain_graph=False)
        actor_grads, critic_grads = method.adjust_gradients(self, stage, actor_grads, critic_grads)
        clipnorm = method.clipnorm
        if clipnorm:
            for grads in (actor_grads, critic_grads, [alpha_grad]):
                _clip_by_global_norm(grads, clipnorm)

        for params, grads, optimizer in (
            (actor_params, actor_grads, self.actor_optimizer),
            (critic_params, critic_grads, self.critic_optimizer),
            ([self.log_alpha], [alpha_grad], self.alpha_optimizer),
        ):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            optimizer.step()
        polyak_update(self.critic1.parameters(), self.target1.parameters(), 1 - self.polyak)
        polyak_update(self.critic2.parameters(), self.target2.parameters(), 1 - self.polyak)
        return {
            "losses/critic_loss": critic_loss.item(),
            "losses/actor_loss": actor_loss.item(),
            "losses/alpha_loss": alpha_loss.item(),
            "losses/penalty": penalty.item(),
            "losses/q_value": q1.detach().mean().item(),
            "losses/log_pi": log_pi.detach().mean().item(),
        }

    # -- checkpoints -----------------------------------------------------------------------------

    def modules(self) -> dict[str, nn.Module]:
        """The networks by name."""
        return {"actor": self.actor, "critic1": self.critic1, "critic2": self.critic2,
                "target1": self.target1, "target2": self.target2}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Networks, entropy coefficients and optimiser states."""
        return {
            **{name: module.state_dict() for name, module in self.modules().items()},
            "log_alpha": self.log_alpha.detach().clone(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor], retain_graph: bool) -> Gradients:
    """Gradients of ``loss`` w.r.t. ``params`` (zeros where it does not depend on them)."""
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _clip_by_global_norm(grads: Gradients, max_norm: float) -> None:
    """Scale ``grads`` in place so that their joint norm is at most ``max_norm`` (TF's rule)."""
    norm = torch.sqrt(sum((g.pow(2).sum() for g in grads), torch.zeros(())))
    scale = max_norm / torch.clamp(norm, min=max_norm)
    for g in grads:
        g.mul_(scale)
