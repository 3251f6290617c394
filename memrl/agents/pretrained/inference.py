"""Acting with the multi-domain Decision Transformer: a rolling context and the next action.

A Decision Transformer acts from the last ``K`` timesteps. :class:`RollingContext` keeps them for
``N`` parallel episodes of one task (a vector env; the task's domain picks the model's state
statistics): start an episode with its first state and the return to aim for, then after every
step record the action taken, the reward and the next state; the return-to-go falls by each
reward and the timestep rises by one. Steps before an episode's
start are padding (``step_mask`` False). :func:`predict_action` returns the next action of every
episode, only the task's real action dimensions, argmax or sampled, optionally modulated (an L2M
or L2P pool, an oracle entry, a fixed adapter). Put the model (and any pool) in ``eval()`` mode
first: dropout and a pool's training-time usage counting do not belong in acting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.inputs import Modulation, TrajectoryContext
from memrl.agents.pretrained.layout import action_mask, pad_actions, pad_states
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.pretrained.tasks import domain_index


def _rows(
    values: np.ndarray | torch.Tensor | Sequence[float],
    pad: Callable[[np.ndarray, int], np.ndarray],
    width: int,
    name: str,
) -> torch.Tensor:
    """``[n, d]`` values zero-padded by ``pad`` into a float32 ``[n, width]`` tensor."""
    rows = np.asarray(values, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] > width:
        raise ValueError(f"{name} must have shape (n, d) with d <= {width}, got {rows.shape}")
    return torch.from_numpy(pad(rows, width))


class RollingContext:
    """The last ``K`` timesteps of ``num_envs`` episodes of one task.

    Args:
        num_envs: Parallel episodes.
        task_action_dim: The task's own action dimension (its real dims in the layout).
        config: The model's config (layout widths and ``context_steps``).
        domain: The task's domain (``"metaworld"`` or ``"dm_control"``), whose state
            statistics the model normalises the states with.

    Raises:
        ValueError: ``num_envs`` < 1, or an unknown domain.
    """

    def __init__(
        self, num_envs: int, task_action_dim: int, config: MDDTConfig, domain: str
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.domain = torch.full((num_envs,), domain_index(domain), dtype=torch.long)  # [N]
        self.config = config
        self.task_action_dim = task_action_dim
        steps = config.context_steps
        self.states = torch.zeros(num_envs, steps, config.state_dim)
        self.actions = torch.zeros(num_envs, steps, config.action_dim)
        self.returns_to_go = torch.zeros(num_envs, steps)
        self.timesteps = torch.zeros(num_envs, steps, dtype=torch.long)
        self.step_mask = torch.zeros(num_envs, steps, dtype=torch.bool)
        mask = torch.from_numpy(action_mask(task_action_dim, config.action_dim))
        self.action_mask = mask.expand(num_envs, -1).clone()  # [N, action_dim]

    def start(
        self,
        env_ids: Sequence[int] | np.ndarray,
        states: np.ndarray | torch.Tensor,
        return_to_go: float | Sequence[float] | np.ndarray,
    ) -> None:
        """Begin new episodes: their context becomes one real step (timestep 0).

        Args:
            env_ids: Which episodes.
            states: ``[len(env_ids), d]`` first states (``d <= state_dim``; zero-padded).
            return_to_go: The return to aim for (one value, or one per episode).
        """
        rows = torch.as_tensor(np.asarray(env_ids, dtype=np.int64))
        first = _rows(states, pad_states, self.config.state_dim, "states")
        for tensor in (self.states, self.actions, self.returns_to_go, self.timesteps):
            tensor[rows] = 0
        self.step_mask[rows] = False
        self.states[rows, -1] = first
        self.returns_to_go[rows, -1] = torch.as_tensor(np.asarray(return_to_go, np.float32))
        self.step_mask[rows, -1] = True

    def record(
        self,
        actions: np.ndarray | torch.Tensor,
        rewards: np.ndarray | torch.Tensor | Sequence[float],
        next_states: np.ndarray | torch.Tensor,
    ) -> None:
        """Record every episode's step: the action taken and reward got, then the next state.

        Args:
            actions: ``[num_envs, task_action_dim]`` actions taken at the last step.
            rewards: ``[num_envs]`` rewards received.
            next_states: ``[num_envs, d]`` the states that follow.
        """
        self.actions[:, -1] = _rows(actions, pad_actions, self.config.action_dim, "actions")
        next_rows = _rows(next_states, pad_states, self.config.state_dim, "next_states")
        reward = torch.as_tensor(np.asarray(rewards, dtype=np.float32))
        next_return = self.returns_to_go[:, -1] - reward
        next_time = self.timesteps[:, -1] + 1
        for tensor in (self.states, self.actions, self.returns_to_go, self.timesteps):
            tensor[:, :-1] = tensor[:, 1:].clone()
        self.step_mask[:, :-1] = self.step_mask[:, 1:].clone()
        self.states[:, -1] = next_rows
        self.actions[:, -1] = 0.0
        self.returns_to_go[:, -1] = next_return
        self.timesteps[:, -1] = next_time
        self.step_mask[:, -1] = True

    def context(self) -> TrajectoryContext:
        """The current contexts (the last step's action is a zero placeholder)."""
        return TrajectoryContext(
            states=self.states,
            actions=self.actions,
            returns_to_go=self.returns_to_go,
            timesteps=self.timesteps,
            action_mask=self.action_mask,
            domain=self.domain,
            step_mask=self.step_mask,
        )


@torch.no_grad()
def predict_action(
    model: MultiDomainDecisionTransformer,
    context: TrajectoryContext,
    deterministic: bool = True,
    generator: torch.Generator | None = None,
    modulate: Callable[[torch.Tensor], Modulation] | None = None,
) -> torch.Tensor:
    """The next action of every context: only the task's real action dimensions.

    Args:
        model: The model (in ``eval()`` mode).
        context: ``B`` contexts of one task (one action mask for all rows).
        deterministic: Argmax bins (True) or sampled bins (False; discrete head only).
        generator: Random source for sampling.
        modulate: Maps the pool query ``[B, embed_dim]`` to a :class:`Modulation`, e.g.
            ``lambda query: pool(query).modulation``; None runs the model unmodulated.

    Returns:
        ``[B, d]`` actions (bin centres), ``d`` = the task's real action dimensions.

    Raises:
        ValueError: Rows with different action masks.
    """
    real = context.action_mask[0]
    if not bool((context.action_mask == real).all()):
        raise ValueError("predict_action needs one action mask for all rows (one task per call)")
    embedded = model.embed(context)
    modulation = modulate(model.pool_query(embedded)) if modulate is not None else None
    prediction = model.run(embedded, modulation)
    return model.decode_last(prediction, deterministic, generator)[:, real]
