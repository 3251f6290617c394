from __future__ import annotations

import dataclasses

import pytest
import torch

from memrl.agents.pretrained import MDDTConfig, MultiDomainDecisionTransformer, TrajectoryContext

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
