"""Continual World's actor and critic: a layer-normed MLP trunk and one output head per task.

Trunk (``Trunk``): ``Linear -> LayerNorm -> tanh``, then ``Linear -> leaky-ReLU`` for every further
hidden layer (Continual World: 4 x 256, leaky-ReLU slope 0.2 as ``tf.nn.leaky_relu``). Weights
are Glorot-uniform and biases zero, LayerNorm's epsilon 1e-3: Keras' defaults, which Continual
World uses.

Heads. With ``multi_head`` every output layer is ``num_tasks`` times as wide and the task's slice
is selected by the task one-hot at the end of the observation (``task_index``), as Continual
World's ``_choose_head``. With ``hide_task_id`` the trunk sees the observation without the
one-hot, so the task id only selects the head (Continual World's default).

Observations are ``[batch, obs_dim + num_tasks]`` float tensors whose last ``num_tasks`` entries are
the task one-hot (``ContinualEnv(task_one_hot=True)``'s layout).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Clip of the actor's log standard deviation (Spinning Up's and Continual World's)."""
LEAKY_RELU_SLOPE = 0.2
"""``tf.nn.leaky_relu``'s slope, Continual World's "lrelu"."""
LAYER_NORM_EPS = 1e-3
"""Keras' LayerNormalization epsilon."""


def task_index(observation: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """The task of each observation, from the one-hot in its last ``num_tasks`` entries.

    Args:
        observation: ``[batch, obs_dim + num_tasks]``.
        num_tasks: Length of the one-hot.

    Returns:
        ``[batch]`` long task indices.
    """
    return observation[:, -num_tasks:].argmax(dim=1)


def _dense(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Trunk(nn.Module):
    """Continual World's MLP: ``Linear -> LayerNorm -> tanh``, then ``Linear -> leaky-ReLU``.

    Args:
        in_features: Input width.
        hidden_size: Width of every hidden layer.
        num_layers: Number of hidden layers (>= 1).
    """

    def __init__(self, in_features: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.first = _dense(in_features, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=LAYER_NORM_EPS)
        self.rest = nn.ModuleList(_dense(hidden_size, hidden_size) for _ in range(num_layers - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, in_features] -> [batch, hidden_size]``."""
        x = torch.tanh(self.norm(self.first(x)))
        for layer in self.rest:
            x = nn.functional.leaky_relu(layer(x), LEAKY_RELU_SLOPE)
        return x


class _MultiHead(nn.Module, abc.ABC):
    """The actor's and the critic's common part: trunk, output heads, each row's head.

    Each row's head is picked by the one-hot at the end of its observation.

    Args:
        observation_dim: Width of the observation, one-hot included.
        action_dim: Action dimensions.
        num_tasks: Length of the task one-hot.
        hidden_size: Trunk width.
        num_layers: Trunk depth.
        multi_head: One head per task.
        hide_task_id: Keep the one-hot out of the trunk.
    """

    trunk_sees_action = False
    """Whether the trunk's input is the observation and the action (the critic's)."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        num_tasks: int,
        hidden_size: int = 256,
        num_layers: int = 4,
        multi_head: bool = True,
        hide_task_id: bool = True,
    ) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.num_heads = num_tasks if multi_head else 1
        self.hide_task_id = hide_task_id
        trunk_in = observation_dim - num_tasks if hide_task_id else observation_dim
        trunk_in += action_dim if self.trunk_sees_action else 0
        self.trunk = Trunk(trunk_in, hidden_size, num_layers)
        self.build_heads(hidden_size, action_dim)

    @abc.abstractmethod
    def build_heads(self, hidden_size: int, action_dim: int) -> None:
        """Create the output layers (after the trunk: the order of initialisation)."""

    @abc.abstractmethod
    def output_heads(self) -> list[nn.Linear]:
        """The output layers, each ``num_heads`` slices wide."""

    def trunk_input(self, observation: torch.Tensor) -> torch.Tensor:
        """The observation the trunk sees (without the one-hot when ``hide_task_id``)."""
        return observation[:, : -self.num_tasks] if self.hide_task_id else observation

    def choose_head(self, out: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
        """``[batch, num_heads * width] -> [batch, width]``: each row's task head."""
        if self.num_heads == 1:
            return out
        heads = out.view(out.shape[0], self.num_heads, -1)  # [batch, heads, width]
        rows = torch.arange(out.shape[0], device=out.device)
        return heads[rows, task_index(observation, self.num_tasks)]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task uses: the trunk (and the output layers if there is one head)."""
        heads = [] if self.num_heads > 1 else self.output_heads()
        return [*self.trunk.parameters(), *(p for head in heads for p in head.parameters())]


class Actor(_MultiHead):
    """Squashed-Gaussian policy with per-task mean and log-std heads (``_MultiHead``'s args)."""

    def build_heads(self, hidden_size: int, action_dim: int) -> None:
        """The mean and log-std layers."""
        self.mean_head = _dense(hidden_size, action_dim * self.num_heads)
        self.log_std_head = _dense(hidden_size, action_dim * self.num_heads)

    def output_heads(self) -> list[nn.Linear]:
        """The mean and log-std layers."""
        return [self.mean_head, self.log_std_head]

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash mean and clipped log-std, ``[batch, action_dim]`` each."""
        features = self.trunk(self.trunk_input(observation))
        mean = self.choose_head(self.mean_head(features), observation)
        log_std = self.choose_head(self.log_std_head(features), observation)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, observation: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A reparameterised action in ``[-1, 1]``, its log-probability and the mean action.

        Args:
            observation: ``[batch, observation_dim]``.
            generator: Source of the Gaussian noise (torch's global generator if None).

        Returns:
            ``tanh(u)`` with ``u ~ N(mean, std)`` ``[batch, action_dim]``, ``log pi(tanh(u))``
            ``[batch]`` (with the tanh correction), and ``tanh(mean)`` ``[batch, action_dim]``.
        """
        mean, log_std = self(observation)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        u = mean + noise * log_std.exp()
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=1)
        # log |d tanh(u) / du| = log(1 - tanh(u)^2), in the numerically stable form.
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(dim=1)
        return torch.tanh(u), log_prob, torch.tanh(mean)


class Critic(_MultiHead):
    """Q-function with per-task output heads (``_MultiHead``'s args).

    Its trunk sees the observation and the action.
    """

    trunk_sees_action = True

    def build_heads(self, hidden_size: int, action_dim: int) -> None:
        """The Q layer."""
        self.head = _dense(hidden_size, self.num_heads)

    def output_heads(self) -> list[nn.Linear]:
        """The Q layer."""
        return [self.head]

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q(observation, action)``, ``[batch]``."""
        features = self.trunk(torch.cat([self.trunk_input(observation), action], dim=1))
        return self.choose_head(self.head(features), observation).squeeze(1)
