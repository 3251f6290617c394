from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.continual import ContinualConfig
from memrl.agents.continual.buffers import Batch
from memrl.agents.continual.sac import ContinualSAC

TASKS = "reach-v3,button-press-v3"
"""A cheap two-task Meta-World stream for the trainer tests."""


def tiny_config(**overrides) -> ContinualConfig:
    """Two Meta-World tasks of 300 steps, tiny nets, one evaluation episode: a few seconds."""
    values = dict(
        stream="CW10",
        tasks=TASKS,
        steps_per_task=300,
        eval_every=150,
        eval_episodes=1,
        hidden_size=16,
        num_layers=2,
        start_steps=100,
        update_after=200,
        update_every=50,
        checkpoint_every=150,
        log_every=50,
        tensorboard=False,
        packnet_retrain_steps=10,
        ewc_fisher_batches=2,
        ewc_fisher_batch_size=16,
        replay_batch_size=32,
        batch_size=32,
    )
    values.update(overrides)
    return ContinualConfig(**values)


def tiny_agent(num_tasks: int = 3, obs_features: int = 5, action_dim: int = 2, **kwargs):
    """A small agent on hand-made spaces (no env needed)."""
    observation_space = spaces.Box(-np.inf, np.inf, (obs_features + num_tasks,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
    shape = dict(hidden_size=8, num_layers=2)
    shape.update(kwargs)
    return ContinualSAC(observation_space, action_space, num_tasks, **shape)


def random_batch(agent: ContinualSAC, size: int, task: int, seed: int = 0) -> Batch:
    """Transitions of one task with random features."""
    generator = torch.Generator().manual_seed(seed)
    obs_dim = agent.observation_space.shape[0]
    features = obs_dim - agent.num_tasks

    def observations() -> torch.Tensor:
        obs = torch.zeros(size, obs_dim)
        obs[:, :features] = torch.randn(size, features, generator=generator)
        obs[:, features + task] = 1.0
        return obs

    action_dim = agent.action_space.shape[0]
    return Batch(
        observations(),
        torch.rand(size, action_dim, generator=generator) * 2 - 1,
        torch.randn(size, generator=generator),
        observations(),
        torch.zeros(size),
    )


@pytest.fixture
def config_factory():
    return tiny_config


def replace(config: ContinualConfig, **changes) -> ContinualConfig:
    return dataclasses.replace(config, **changes)
