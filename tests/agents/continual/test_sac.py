"""The agent: per-task heads, per-task entropy coefficients, the update, predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.continual.methods import Finetune
from memrl.agents.continual.networks import Trunk, task_index

from .conftest import random_batch, tiny_agent, tiny_config


def _observations(agent, features: np.ndarray, task: int) -> np.ndarray:
    one_hot = np.zeros((features.shape[0], agent.num_tasks), np.float32)
    one_hot[:, task] = 1
    return np.concatenate([features, one_hot], axis=1)


def test_trunk_is_continual_worlds_mlp():
    trunk = Trunk(7, 16, 4)
    assert isinstance(trunk.norm, torch.nn.LayerNorm) and len(trunk.rest) == 3
    x = torch.randn(5, 7)
    first = torch.tanh(trunk.norm(trunk.first(x)))
    assert first.abs().max() <= 1  # LayerNorm then tanh
    expected = first
    for layer in trunk.rest:
        expected = torch.nn.functional.leaky_relu(layer(expected), 0.2)
    torch.testing.assert_close(trunk(x), expected)
    assert torch.all(trunk.first.bias == 0)  # Keras' zero-initialised biases


def test_task_index_reads_the_trailing_one_hot():
    obs = torch.tensor([[0.3, 9.0, 0, 1, 0], [5.0, -1.0, 0, 0, 1]])
    assert task_index(obs, 3).tolist() == [1, 2]


def test_the_one_hot_selects_the_head_that_acts():
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=3)
    features = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    actions = [agent.act(_observations(agent, features, t), deterministic=True) for t in range(3)]
    assert not np.allclose(actions[0], actions[1]) and not np.allclose(actions[1], actions[2])
    # Changing head 1's weights changes task 1's actions and no other task's.
    with torch.no_grad():
        heads = agent.actor.mean_head.weight.view(3, 2, -1)  # [heads, action_dim, hidden]
        heads[1] += 1.0
    after = [agent.act(_observations(agent, features, t), deterministic=True) for t in range(3)]
    np.testing.assert_array_equal(after[0], actions[0])
    np.testing.assert_array_equal(after[2], actions[2])
    assert not np.allclose(after[1], actions[1])


def test_hidden_task_id_reaches_the_trunk_only_through_the_head():
    agent = tiny_agent(num_tasks=2, multi_head=False, hide_task_id=True)
    features = np.ones((1, 5), np.float32)
    a = agent.act(_observations(agent, features, 0), deterministic=True)
    b = agent.act(_observations(agent, features, 1), deterministic=True)
    np.testing.assert_array_equal(a, b)  # one head, one-hot hidden: the task is invisible
    visible = tiny_agent(num_tasks=2, multi_head=False, hide_task_id=False)
    a = visible.act(_observations(visible, features, 0), deterministic=True)
    b = visible.act(_observations(visible, features, 1), deterministic=True)
    assert not np.allclose(a, b)


def test_critic_heads_follow_the_one_hot():
    agent = tiny_agent(num_tasks=2)
    obs = torch.as_tensor(_observations(agent, np.ones((1, 5), np.float32), 0))
    action = torch.zeros(1, 2)
    before = agent.critic1(obs, action).item()
    with torch.no_grad():
        agent.critic1.head.bias[1] += 5.0  # task 1's head
    assert agent.critic1(obs, action).item() == before
    obs[0, -2:] = torch.tensor([0.0, 1.0])
    assert agent.critic1(obs, action).item() != pytest.approx(before)


def test_entropy_coefficients_are_per_task_and_start_at_e():
    agent = tiny_agent(num_tasks=3)
    assert [agent.alpha(t) for t in range(3)] == pytest.approx([math.e] * 3)
    assert agent.target_entropy == pytest.approx(
        2 * math.log(0.089 * math.sqrt(2 * math.pi * math.e))
    )
    config = tiny_config()
    method = Finetune(config, config.build_stream())
    for _ in range(3):
        agent.update(random_batch(agent, 16, task=1), method, 0)
    alphas = [agent.alpha(t) for t in range(3)]
    assert alphas[0] == pytest.approx(math.e) and alphas[2] == pytest.approx(math.e)
    assert alphas[1] != pytest.approx(math.e)  # only the trained task's coefficient moved


def test_update_moves_the_targets_by_polyak_averaging():
    torch.manual_seed(1)
    agent = tiny_agent(num_tasks=2, polyak=0.9)
    config = tiny_config()
    method = Finetune(config, config.build_stream())
    target_before = [p.clone() for p in agent.target1.parameters()]
    agent.update(random_batch(agent, 16, task=0), method, 0)
    for before, target, critic in zip(
        target_before, agent.target1.parameters(), agent.critic1.parameters(), strict=True
    ):
        torch.testing.assert_close(target, 0.9 * before + 0.1 * critic.detach())


def test_predict_follows_sb3s_signature():
    agent = tiny_agent(num_tasks=2)
    obs = _observations(agent, np.zeros((3, 5), np.float32), 1)
    actions, state = agent.predict(obs, state=None, episode_start=np.ones(3, bool),
                                   deterministic=True)  # fmt: skip
    assert actions.shape == (3, 2) and state is None
    single, _ = agent.predict(obs[0], deterministic=True)
    np.testing.assert_allclose(single, actions[0])
    assert np.all(np.abs(actions) <= 1)


def test_discrete_actions_are_refused_with_a_clear_message():
    from memrl.agents.continual.sac import ContinualSAC

    with pytest.raises(ValueError, match="Box action space"):
        ContinualSAC(spaces.Box(0, 1, (4,)), spaces.Discrete(4), 2)
