"""Tiny offline datasets and a tiny model config shared by the pretraining tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from memrl.agents.pretrained.pretrain_config import PretrainConfig
from memrl.data import Episode
from memrl.data.minari_io import write_dataset

METAWORLD_TASKS = ("reach-v3", "button-press-v3")
"""Two MT40 (pretraining split) tasks."""

TINY_MODEL = {"context_steps": 3, "embed_dim": 16, "num_layers": 1, "num_heads": 2}
"""A one-block model that trains in milliseconds per update."""


class BoxEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Spaces only: what ``write_dataset`` needs to write episodes of any width."""

    def __init__(self, observation_dim: int, action_dim: int, action_high: float = 1.0) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (observation_dim,), np.float64)
        self.action_space = spaces.Box(-action_high, action_high, (action_dim,), np.float32)


def episode(observations: np.ndarray, actions: np.ndarray, rewards: Sequence[float]) -> Episode:
    """An episode from ``T + 1`` observations, ``T`` actions and ``T`` rewards."""
    steps = len(rewards)
    return Episode(
        observations=np.asarray(observations, dtype=np.float64),
        actions=np.asarray(actions, dtype=np.float32),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.zeros(steps, dtype=bool),
        truncations=np.arange(steps) == steps - 1,
    )


def random_episode(
    rng: np.random.Generator, steps: int, observation_dim: int, action_dim: int
) -> Episode:
    """Random observations, actions in [-1, 1] and rewards in [0, 1]."""
    return episode(
        rng.normal(size=(steps + 1, observation_dim)),
        rng.uniform(-1, 1, size=(steps, action_dim)),
        rng.uniform(0, 1, size=steps),
    )


def write_task(
    root: Path,
    task: str,
    domain: str,
    episodes: Sequence[Episode],
    *,
    split: str | None = "pretrain",
    name: str = "test-v0",
    action_high: float = 1.0,
) -> Path:
    """Write ``episodes`` as memrl dataset ``memrl/<domain>/<task>/<name>`` under ``root``."""
    env = BoxEnv(episodes[0].observations.shape[1], episodes[0].actions.shape[1], action_high)
    env.spec = EnvSpec(id="test/Box-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv")
    metadata = {"task": task, "domain": domain}
    if split is not None:
        metadata["split"] = split
    return write_dataset(
        root,
        f"memrl/{domain}/{task}/{name}",
        episodes,
        env,
        algorithm_name="test",
        description="test data",
        requirements=[],
        memrl_metadata=metadata,
    )


@pytest.fixture(scope="session")
def metaworld_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real scripted Meta-World data: two MT40 tasks x 3 episodes of 30 steps (read-only)."""
    from memrl.data import collect_metaworld

    root = tmp_path_factory.mktemp("metaworld")
    collect_metaworld(
        METAWORLD_TASKS,
        root,
        episodes_per_task=3,
        noise_levels=(0.0, 0.5),
        random_fraction=1 / 3,
        episode_length=30,
        progress=False,
    )
    return root


def tiny_config(data: Sequence[Path], **changes: object) -> PretrainConfig:
    """A run of a few updates of the tiny model, without evaluation unless asked."""
    values: dict[str, object] = {
        "data": [str(d) for d in data],
        "steps": 6,
        "batch_size": 8,
        "warmup_steps": 2,
        "learning_rate": 1e-3,
        "checkpoint_every": 3,
        "log_every": 1,
        "eval_episodes": 0,
        "tensorboard": False,
        **TINY_MODEL,
    }
    values.update(changes)
    return PretrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only waits for a core on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
