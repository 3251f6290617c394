"""The self-supervised observation decoder and its loss in memory PPO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.decoders import ObservationDecoder
from memrl.agents.encoders import categorical_highs
from memrl.agents.policy import observation_to_tensor
from memrl.agents.ppo import PPOTrainer, build_policy, load_policy
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.run_log import read_metric
from memrl.envs.vector import make_vector_env

GRID_AND_INSTRUCTION = spaces.Dict(
    {
        "grid": spaces.Box(0, np.array([3, 5, 3, 5], dtype=np.uint8), (4,), np.uint8),
        "instruction": spaces.Discrete(7),
    }
)


def test_categorical_parts_and_their_highs():
    assert categorical_highs(spaces.Discrete(7)).tolist() == [6]
    assert categorical_highs(spaces.MultiDiscrete([2, 4])).tolist() == [1, 3]
    assert categorical_highs(GRID_AND_INSTRUCTION["grid"]).tolist() == [3, 5, 3, 5]
    assert categorical_highs(spaces.Box(-1.0, 1.0, (3,))) is None
    assert categorical_highs(spaces.Box(0, 255, (64, 64, 3), np.uint8)) is None  # an image


def test_the_loss_is_the_mean_cross_entropy_per_part_and_learns():
    torch.manual_seed(0)
    decoder = ObservationDecoder(GRID_AND_INSTRUCTION, width=64)
    assert decoder.shapes == {"grid": (4, 6), "instruction": (1, 7)}
    hidden = torch.randn(32, 64)  # wide enough to separate 32 examples linearly
    observation = {
        "grid": torch.randint(0, 4, (32, 4), dtype=torch.uint8),
        "instruction": torch.randint(0, 7, (32,)),
    }
    with torch.no_grad():  # all-zero logits: uniform predictions, ln(classes) per part
        for head in decoder.heads.values():
            head.weight.zero_()
            head.bias.zero_()
        expected = (np.log(6) + np.log(7)) / 2
        assert decoder.loss(hidden, observation).item() == pytest.approx(expected, rel=1e-6)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.05)
    for _ in range(200):
        loss = decoder.loss(hidden, observation)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * expected  # 32 fixed examples are memorised


def test_spaces_without_a_categorical_part_are_refused():
    with pytest.raises(ValueError, match="categorical observation part"):
        ObservationDecoder(spaces.Box(-1.0, 1.0, (3,)), width=8)
    with pytest.raises(ValueError, match="more than 65,536 outputs"):
        ObservationDecoder(spaces.Box(0, 4000, (100,), np.int64), width=8)


def test_memory_ppo_trains_with_the_reconstruction_loss_and_resumes(tmp_path):
    config = PPOConfig(
        env_id="memrl/BalletGrid-2-delay16-v0",
        core="gru",
        core_kwargs={"width": 16},
        total_steps=2 * 4 * 32,
        num_envs=4,
        num_steps=32,
        num_minibatches=2,
        update_epochs=2,
        reconstruction_coef=1.0,
        tensorboard=False,
    )
    trainer = PPOTrainer(config, tmp_path, progress=False)
    assert trainer.policy.decoder is not None
    trainer.train()
    _, losses = read_metric(tmp_path, "losses/reconstruction")
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[0] < np.log(20)  # below uniform guessing of a grid cell after one update
    policy, _ = load_policy(tmp_path)  # the decoder is part of the saved policy
    assert policy.decoder is not None
    config.total_steps = 3 * 4 * 32
    PPOTrainer(config, tmp_path, resume=True, progress=False).train()
    assert len(read_metric(tmp_path, "losses/reconstruction")[1]) == 3


def test_the_reconstruction_loss_trains_the_encoder_and_the_core():
    torch.manual_seed(1)
    config = PPOConfig(
        env_id="memrl/BalletGrid-2-delay16-v0", core="gru", core_kwargs={"width": 16},
        reconstruction_coef=1.0,
    )  # fmt: skip
    envs = make_vector_env(config.env_id, 2)
    policy = build_policy(config, envs)
    obs, _ = envs.reset(seed=0)
    envs.close()
    step = observation_to_tensor(obs)
    window = {key: value[None] for key, value in step.items()}  # [T=1, B=2, ...]
    _, _, hidden = policy.evaluate_window(
        window, policy.initial_state(2), torch.ones(1, 2, dtype=torch.bool), None
    )
    assert policy.decoder is not None
    policy.decoder.loss(hidden[0], step).backward()
    for module in (policy.encoder, policy.core):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
