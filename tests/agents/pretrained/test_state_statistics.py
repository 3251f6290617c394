"""Per-domain state normalisation: statistics from the data, used by the embedding, saved."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from memrl.agents.pretrained.checkpoint import _digest, load_model, read_tensors, save_model
from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.dataset import (
    MIN_STATE_STD,
    ContextSampler,
    load_pretraining_data,
    state_statistics,
)
from memrl.agents.pretrained.inputs import TrajectoryContext
from memrl.agents.pretrained.layout import STATE_DIM, pad_states
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.pretrained.tasks import DOMAINS, domain_index
from memrl.agents.pretrained.training import MODEL_FILE, PretrainTrainer

from .conftest import episode, tiny_config, write_task

METAWORLD, DM_CONTROL = domain_index("metaworld"), domain_index("dm_control")
STEPS = 10
"""Steps per episode of the tiny data."""


def _metaworld_observations(rng: np.random.Generator) -> np.ndarray:
    """Meta-World-like states: small spread around offsets, one constant and one near-constant
    dimension (``STEPS + 1`` rows)."""
    observations = rng.normal(0.5, 0.05, size=(STEPS + 1, STATE_DIM))
    observations[:, 3] = 0.7  # never varies
    observations[:, 4] = 0.2 + rng.normal(0.0, 1e-4, size=STEPS + 1)  # std far below the clamp
    return observations


@pytest.fixture(scope="module")
def two_domains(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """Two Meta-World tasks and one narrower dm_control task; also each domain's padded states."""
    root = tmp_path_factory.mktemp("two-domains")
    rng = np.random.default_rng(0)
    written: dict[str, list[np.ndarray]] = {"metaworld": [], "dm_control": []}
    for task, domain, width, scale in (("reach-v3", "metaworld", STATE_DIM, None),
                                       ("button-press-v3", "metaworld", STATE_DIM, None),
                                       ("cheetah-run", "dm_control", 17, 5.0)):  # fmt: skip
        episodes = []
        for _ in range(2):
            if scale is None:
                observations = _metaworld_observations(rng)
            else:
                observations = rng.normal(1.0, scale, size=(STEPS + 1, width))
            actions = rng.uniform(-1, 1, size=(STEPS, 4))
            episodes.append(episode(observations, actions, rng.uniform(0, 1, STEPS)))
            written[domain].append(pad_states(observations[:STEPS]))
        write_task(root, task, domain, episodes)
    return root, {domain: np.concatenate(states) for domain, states in written.items()}


def _context(model: MultiDomainDecisionTransformer, domains: list[int]) -> TrajectoryContext:
    """Random full contexts, one row per entry of ``domains``."""
    generator = torch.Generator().manual_seed(0)
    config = model.config
    batch, steps = len(domains), config.context_steps
    return TrajectoryContext(
        states=torch.randn(batch, steps, config.state_dim, generator=generator),
        actions=torch.rand(batch, steps, config.action_dim, generator=generator) * 2 - 1,
        returns_to_go=torch.rand(batch, steps, generator=generator),
        timesteps=torch.arange(steps).repeat(batch, 1),
        action_mask=torch.ones(batch, config.action_dim, dtype=torch.bool),
        domain=torch.tensor(domains, dtype=torch.long),
    )


@pytest.fixture
def model() -> MultiDomainDecisionTransformer:
    torch.manual_seed(0)
    config = MDDTConfig(context_steps=3, embed_dim=16, num_layers=1, num_heads=2, max_timestep=50)
    return MultiDomainDecisionTransformer(config).eval()


def _statistics(model: MultiDomainDecisionTransformer) -> tuple[torch.Tensor, torch.Tensor]:
    """Arbitrary non-identity statistics for the model's layout."""
    generator = torch.Generator().manual_seed(1)
    shape = tuple(model.state_mean.shape)
    return torch.randn(shape, generator=generator), torch.rand(shape, generator=generator) + 0.1


def test_statistics_are_numpys_per_domain(two_domains):
    root, states = two_domains
    data = load_pretraining_data([root])
    mean, std = state_statistics(data)
    assert mean.shape == std.shape == (len(DOMAINS), STATE_DIM)
    metaworld = states["metaworld"].astype(np.float64)
    expected_std = np.maximum(metaworld.std(axis=0), MIN_STATE_STD)
    expected_std[3] = 1.0  # constant: passes unchanged
    expected_mean = metaworld.mean(axis=0)
    expected_mean[3] = 0.0
    assert std[METAWORLD, 4] == pytest.approx(MIN_STATE_STD)  # clamped
    np.testing.assert_allclose(mean[METAWORLD], expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std[METAWORLD], expected_std, rtol=1e-5)
    dm_control = states["dm_control"].astype(np.float64)
    np.testing.assert_allclose(mean[DM_CONTROL, :17], dm_control[:, :17].mean(0), rtol=1e-5)
    np.testing.assert_allclose(std[DM_CONTROL, :17], dm_control[:, :17].std(0), rtol=1e-5)
    assert torch.equal(mean[DM_CONTROL, 17:], torch.zeros(STATE_DIM - 17))  # padding: identity
    assert torch.equal(std[DM_CONTROL, 17:], torch.ones(STATE_DIM - 17))


def test_a_sampled_batch_carries_each_tasks_domain(two_domains):
    data = load_pretraining_data([two_domains[0]])
    batch = ContextSampler(data, context_steps=3, seed=0).sample(64)
    expected = [data.tasks[index].domain_index for index in batch.task_index]
    assert batch.to_context().domain.tolist() == expected
    assert set(expected) == {METAWORLD, DM_CONTROL}


def test_embed_normalises_states_by_their_own_domains_statistics(model):
    context = _context(model, [METAWORLD, DM_CONTROL])
    before = model.embed(context).state_tokens
    mean, std = _statistics(model)
    model.set_state_statistics(mean, std)
    after = model.embed(context).state_tokens
    # Equal to an identity-statistics model fed states normalised by hand.
    normalised = (context.states - mean[context.domain, None]) / std[context.domain, None]
    model.set_state_statistics(torch.zeros_like(mean), torch.ones_like(std))
    by_hand = model.embed(TrajectoryContext(**{**vars(context), "states": normalised}))
    torch.testing.assert_close(after, by_hand.state_tokens)
    assert not torch.allclose(after, before)
    # Changing one domain's mean changes that domain's rows and not the other's.
    model.set_state_statistics(mean, std)
    shifted = mean.clone()
    shifted[DM_CONTROL] += 1.0
    model.set_state_statistics(shifted, std)
    moved = model.embed(context).state_tokens
    assert torch.equal(moved[0], after[0])
    assert not torch.allclose(moved[1], after[1])


def test_padding_steps_stay_neutral(model):
    context = _context(model, [METAWORLD, DM_CONTROL])
    step_mask = torch.tensor([[False, False, True], [False, True, True]])
    context = TrajectoryContext(
        **{**vars(context), "states": context.states * step_mask[..., None], "step_mask": step_mask}
    )
    identity = model.embed(context).state_tokens
    model.set_state_statistics(*_statistics(model))
    normalised = model.embed(context).state_tokens
    padding = ~step_mask
    assert torch.equal(normalised[padding], identity[padding])  # zero states, as unnormalised
    assert not torch.allclose(normalised[step_mask], identity[step_mask])


def test_a_domain_index_out_of_range_is_a_clear_error(model):
    context = _context(model, [METAWORLD, len(DOMAINS)])
    with pytest.raises(ValueError, match=re.escape("domain must hold indices 0..1 of")):
        model.embed(context)


def test_statistics_round_trip_through_the_checkpoint(model, tmp_path):
    mean, std = _statistics(model)
    model.set_state_statistics(mean, std)
    loaded, _ = load_model(save_model(tmp_path / "model.safetensors", model))
    assert torch.equal(loaded.state_mean, mean) and torch.equal(loaded.state_std, std)
    context = _context(model, [METAWORLD, DM_CONTROL])
    assert torch.equal(loaded(context), model(context))


def test_a_model_file_without_statistics_is_refused(model, tmp_path):
    path = save_model(tmp_path / "model.safetensors", model)
    tensors, metadata = read_tensors(path, "mddt")
    del tensors["state_mean"], tensors["state_std"]
    save_file(tensors, str(path), metadata={**metadata, "memrl_sha256": _digest(tensors)})
    with pytest.raises(ValueError, match=re.escape("re-run `memrl pretrain`")):
        load_model(path)


def test_a_pretrained_model_carries_its_datas_statistics(two_domains, tmp_path):
    root = two_domains[0]
    PretrainTrainer(tiny_config([root]), tmp_path / "run", progress=False).train()
    loaded, _ = load_model(tmp_path / "run" / MODEL_FILE)
    mean, std = state_statistics(load_pretraining_data([root]))
    assert not torch.equal(loaded.state_std, torch.ones_like(std))
    assert torch.equal(loaded.state_mean, mean) and torch.equal(loaded.state_std, std)
