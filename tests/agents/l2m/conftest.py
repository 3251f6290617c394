from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrained.conftest import random_episode, write_task

from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.pretrained import MDDTConfig, MultiDomainDecisionTransformer, TrajectoryContext
from memrl.agents.pretrained.checkpoint import save_model
from memrl.agents.pretrained.dataset import load_pretraining_data, state_statistics
from memrl.agents.pretrained.tasks import tasks_to_json

TINY = MDDTConfig(
    state_dim=7,
    action_dim=3,
    num_bins=16,
    context_steps=4,
    embed_dim=16,
    num_layers=2,
    num_heads=2,
    max_timestep=50,
    dropout=0.0,
)
"""A model small enough that every test runs in milliseconds."""


def make_context(
    config: MDDTConfig = TINY,
    batch: int = 3,
    steps: int | None = None,
    real_action_dims: int = 2,
    seed: int = 0,
) -> TrajectoryContext:
    """Random full contexts of a task with ``real_action_dims`` real action dimensions."""
    generator = torch.Generator().manual_seed(seed)
    steps = steps or config.context_steps
    action_mask = torch.zeros(batch, config.action_dim, dtype=torch.bool)
    action_mask[:, :real_action_dims] = True
    return TrajectoryContext(
        states=torch.randn(batch, steps, config.state_dim, generator=generator),
        actions=torch.rand(batch, steps, config.action_dim, generator=generator) * 2 - 1,
        returns_to_go=torch.randn(batch, steps, generator=generator),
        timesteps=torch.randint(0, config.max_timestep - steps, (batch, 1), generator=generator)
        + torch.arange(steps),
        action_mask=action_mask,
        domain=torch.zeros(batch, dtype=torch.long),
    )


def replace(context: TrajectoryContext, **changes: torch.Tensor) -> TrajectoryContext:
    """A copy of ``context`` with some fields replaced (tensors cloned)."""
    fields = {field.name: getattr(context, field.name) for field in dataclasses.fields(context)}
    fields = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in fields.items()}
    fields.update(changes)
    return TrajectoryContext(**fields)


def repeat_first(context: TrajectoryContext, copies: int) -> TrajectoryContext:
    """A batch of ``copies`` copies of the first context of ``context``."""
    return replace(
        context,
        **{
            field.name: getattr(context, field.name)[:1].repeat_interleave(copies, dim=0)
            for field in dataclasses.fields(context)
            if getattr(context, field.name) is not None
        },
    )


@pytest.fixture
def model() -> MultiDomainDecisionTransformer:
    torch.manual_seed(0)
    return MultiDomainDecisionTransformer(TINY).eval()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only waits for a core on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- offline fine-tuning ---------------------------------------------------------------------

OFFLINE_MODEL = MDDTConfig(context_steps=3, embed_dim=16, num_layers=1, num_heads=2, dropout=0.1)
"""A one-block model in the full state and action layout (so that real envs can be played);
dropout, so that a resume must restore torch's generator too."""
STREAM = ("hammer-v3", "push-wall-v3")
"""Two CW10 tasks: the stream of the offline tests."""
PRETRAINING_TASK = "reach-v3"
"""An MT40 task in the tiny model's task table and data (identity keys, retention)."""
HELD_OUT_TASK = "door-open-v3"
"""An MT40 task with data but not in the tiny model's task table."""


@pytest.fixture(scope="session")
def offline_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Meta-World-shaped data (39 floats, 4 actions): the stream's two tasks, the
    pretraining task and the held-out task, three episodes of 12 steps each (read-only)."""
    root = tmp_path_factory.mktemp("offline-data")
    rng = np.random.default_rng(0)
    splits = {STREAM[0]: "finetune", STREAM[1]: "finetune", PRETRAINING_TASK: "pretrain",
              HELD_OUT_TASK: "pretrain"}  # fmt: skip
    for task, split in splits.items():
        episodes = [random_episode(rng, 12, 39, 4) for _ in range(3)]
        write_task(root, task, "metaworld", episodes, split=split)
    return root


@pytest.fixture(scope="session")
def pretrained_model(tmp_path_factory: pytest.TempPathFactory, offline_data: Path) -> Path:
    """A randomly initialised tiny model saved with a task table holding the pretraining task
    and state statistics of its data (not the identity, so a change to them would show)."""
    torch.manual_seed(0)
    model = MultiDomainDecisionTransformer(OFFLINE_MODEL)
    data = load_pretraining_data([offline_data], [PRETRAINING_TASK])
    model.set_state_statistics(*state_statistics(data))
    table = data.tasks
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    return save_model(path, model, extra_metadata={"tasks": tasks_to_json(table)})


def offline_config(data: Path, model: Path, **changes: object) -> OfflineConfig:
    """A run of a few updates per task of the tiny model, without online evaluation unless asked."""
    values: dict[str, object] = {
        "agent": "ft",
        "tasks": ",".join(STREAM),
        "pretrained": str(model),
        "data": [str(data)],
        "updates_per_task": 6,
        "evaluations_per_task": 1,
        "batch_size": 8,
        "warmup_steps": 2,
        "eval_episodes": 0,
        "pretrain_eval_tasks": PRETRAINING_TASK,
        "identity_key_updates": 4,
        "checkpoint_every": 4,
        "log_every": 1,
        "tensorboard": False,
    }
    values.update(changes)
    return OfflineConfig(**values)  # type: ignore[arg-type]
