"""The memory agent: observation encoder -> memory core -> policy and value heads.

``MemoryPolicy`` acts one step at a time (``act``), replays stored windows for training
(``evaluate_window``) and answers SB3's ``predict``, so every evaluation tool treats it like any
SB3 model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution, Normal

from memrl.agents.decoders import ObservationDecoder
from memrl.agents.encoders import ObservationEncoder
from memrl.memory.base import MemoryCore, State
from memrl.memory.sat import SATFIFOCore, SATPMCore


def observation_to_tensor(observation: Any, device: torch.device | str = "cpu") -> Any:
    """Numpy observations (or dicts of them) to tensors, keeping integer dtypes."""
    if isinstance(observation, dict):
        return {k: observation_to_tensor(v, device) for k, v in observation.items()}
    array = np.asarray(observation)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.as_tensor(array, device=device)


def index_observation(observation: Any, index: Any) -> Any:
    """``observation[index]`` for a tensor or a dict of tensors."""
    if isinstance(observation, dict):
        return {k: v[index] for k, v in observation.items()}
    return observation[index]


def flatten_time(observation: Any) -> Any:
    """``[T, B, ...]`` -> ``[T * B, ...]`` for a tensor or a dict of tensors."""
    if isinstance(observation, dict):
        return {k: v.flatten(0, 1) for k, v in observation.items()}
    return observation.flatten(0, 1)


class MemoryPolicy(nn.Module):
    """Actor-critic with a memory core between the encoder and the heads.

    Args:
        observation_space: Single-env observation space.
        action_space: Single-env action space (``Discrete`` or ``Box``).
        core: The memory core; its ``input_dim`` must equal ``feature_dim``.
        feature_dim: Width of the encoded observation.
        reconstruction: Add a decoder that reconstructs each step's observation from the core's
            output (:mod:`memrl.agents.decoders`), for a self-supervised loss.
        answer_classes: Add a probe head (``answer_head``) of this many classes on the core's
            output, trained to predict the env's ``info["answer"]``; 0: none.
        observation_shapes: The ``[H, W, C]`` layout of flat symbolic grids by observation key
            (an env's ``metadata["observation_shapes"]``), read with a convolutional encoder.
    """

    def __init__(
        self,
        observation_space: gymnasium.Space,
        action_space: gymnasium.Space,
        core: MemoryCore,
        feature_dim: int,
        reconstruction: bool = False,
        answer_classes: int = 0,
        observation_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        self.action_low: torch.Tensor
        self.action_high: torch.Tensor
        if core.input_dim != feature_dim:
            raise ValueError(f"core.input_dim {core.input_dim} != feature_dim {feature_dim}")
        self.observation_space = observation_space
        self.encoder = ObservationEncoder(observation_space, feature_dim, observation_shapes)
        self.core = core
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            assert isinstance(action_space, spaces.Discrete)
            self.actor = nn.Linear(core.output_dim, int(action_space.n))
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.actor = nn.Linear(core.output_dim, action_space.shape[0])
            self.log_std = nn.Parameter(torch.full((action_space.shape[0],), -0.5))
            self.register_buffer("action_low", torch.as_tensor(action_space.low).float())
            self.register_buffer("action_high", torch.as_tensor(action_space.high).float())
        else:
            raise ValueError(f"action space must be Discrete or a 1-D Box, got {action_space}")
        self.critic = nn.Linear(core.output_dim, 1)
        self.decoder = (
            ObservationDecoder(observation_space, core.output_dim) if reconstruction else None
        )
        self.answer_head = (
            nn.Linear(core.output_dim, answer_classes) if answer_classes > 0 else None
        )
        if self.answer_head is not None:  # starts at uniform guesses, as the actor does
            nn.init.orthogonal_(self.answer_head.weight, 0.01)
            nn.init.zeros_(self.answer_head.bias)
        nn.init.orthogonal_(self.actor.weight, 0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, 1.0)
        nn.init.zeros_(self.critic.bias)

    def initial_state(self, batch_size: int) -> State:
        """The core state of ``batch_size`` fresh episodes."""
        device = next(self.parameters()).device
        return self.core.initial_state(batch_size, device)

    def _heads(self, hidden: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        logits = self.actor(hidden)
        if self.discrete:
            dist: Distribution = Categorical(logits=logits)
        else:
            dist = Normal(logits, self.log_std.exp().expand_as(logits))
        return dist, self.critic(hidden).squeeze(-1)

    def act(
        self, observation: Any, state: State, reset: torch.Tensor, places: torch.Tensor | None
    ) -> tuple[Distribution, torch.Tensor, State]:
        """One step for a batch: the action distribution, the value and the next state."""
        hidden, state = self.core(self.encoder(observation), state, reset, places)
        dist, value = self._heads(hidden)
        return dist, value, state

    def evaluate_window(
        self,
        observation: Any,
        state: State,
        resets: torch.Tensor,
        places: torch.Tensor | None,
        strategies: torch.Tensor | None = None,
    ) -> tuple[Distribution, torch.Tensor, torch.Tensor]:
        """Replay a window ``[T, B, ...]`` from its start state.

        ``strategies`` ``[T, B]`` (SAT cores whose strategy an allocator set per episode) is
        the eviction strategy in force at each step when acting.

        Returns:
            The action distributions, the values and the core's outputs ``[T, B, width]``.
        """
        steps, batch = resets.shape
        features = self.encoder(flatten_time(observation)).view(steps, batch, -1)
        if strategies is None:
            hidden, _ = self.core.forward_sequence(features, state, resets, places)
        else:
            if not isinstance(self.core, SATFIFOCore | SATPMCore):
                raise TypeError(f"only SAT cores take strategies, not {type(self.core).__name__}")
            hidden, _ = self.core.forward_sequence(features, state, resets, places, strategies)
        dist, value = self._heads(hidden)
        return dist, value, hidden

    def log_prob(self, dist: Distribution, action: torch.Tensor) -> torch.Tensor:
        """Log-probability of actions (summed over action dimensions when continuous)."""
        logp = dist.log_prob(action)
        return logp if self.discrete else logp.sum(-1)

    def entropy(self, dist: Distribution) -> torch.Tensor:
        """Entropy of the distribution (summed over action dimensions when continuous)."""
        entropy = dist.entropy()
        return entropy if self.discrete else entropy.sum(-1)

    def env_action(self, action: torch.Tensor) -> np.ndarray:
        """Actions as the env takes them (continuous ones clipped to the Box)."""
        if self.discrete:
            return action.cpu().numpy()
        return torch.clamp(action, self.action_low, self.action_high).cpu().numpy()

    @torch.no_grad()
    def predict(
        self,
        observation: Any,
        state: State | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, State]:
        """SB3's ``predict``: a batch of observations (or one) -> actions and the next state.

        Args:
            observation: A batch of observations (leading batch dimension), or a single one.
            state: The state returned by the previous call (None: fresh episodes).
            episode_start: ``[B]`` bool, True where an episode starts (memory is cleared).
            deterministic: Take the most likely action instead of sampling.

        Place-aware cores read the place ids from the observation's ``place`` entry (as in
        RoomBallet), as the trainer does.

        Returns:
            The actions and the state to pass to the next call.
        """
        device = next(self.parameters()).device
        obs = observation_to_tensor(observation, device)
        single = _is_single(obs, self.observation_space)
        if single:
            obs = _add_batch(obs)
        batch = next(iter(obs.values())).shape[0] if isinstance(obs, dict) else obs.shape[0]
        if state is None:
            state = self.initial_state(batch)
        starts = np.zeros(batch, bool) if episode_start is None else np.asarray(episode_start)
        reset = torch.as_tensor(starts.reshape(batch), dtype=torch.bool, device=device)
        place = obs["place"].long() if isinstance(obs, dict) and "place" in obs else None
        dist, _, state = self.act(obs, state, reset, place)
        if deterministic:
            action = dist.probs.argmax(-1) if isinstance(dist, Categorical) else dist.mean
        else:
            action = dist.sample()
        actions = self.env_action(action)
        return (actions[0] if single else actions), state


def _is_single(observation: Any, space: gymnasium.Space) -> bool:
    """Whether an observation lacks the batch dimension (its shape is the space's own)."""
    if isinstance(space, spaces.Dict):
        key = next(iter(space.spaces))
        return tuple(observation[key].shape) == tuple(space.spaces[key].shape or ())
    return tuple(observation.shape) == tuple(space.shape or ())


def _add_batch(observation: Any) -> Any:
    if isinstance(observation, dict):
        return {k: v.unsqueeze(0) for k, v in observation.items()}
    return observation.unsqueeze(0)


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
