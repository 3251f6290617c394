"""The agent: per-task heads, per-task entropy coefficients, the update, predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.continual.methods import Finetune
from memrl.agents.continual.networks import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    Actor,
    Critic,
    Trunk,
    task_index,
)
from memrl.agents.continual.sac import ContinualSAC

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
    pairs = ((agent.target1, agent.critic1), (agent.target2, agent.critic2))
    targets_before = [[p.clone() for p in target.parameters()] for target, _ in pairs]
    agent.update(random_batch(agent, 16, task=0), method, 0)
    for (target, critic), before in zip(pairs, targets_before, strict=True):
        for old, new, online in zip(before, target.parameters(), critic.parameters(), strict=True):
            torch.testing.assert_close(new, 0.9 * old + 0.1 * online.detach())


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
    with pytest.raises(ValueError, match="Box action space"):
        ContinualSAC(spaces.Box(0, 1, (4,)), spaces.Discrete(4), 2)


def _widths(trunk: Trunk) -> list[int]:
    return [trunk.first.out_features, *(layer.out_features for layer in trunk.rest)]


def test_defaults_are_continual_worlds():
    """Continual World's SAC (REFERENCES.md): 4 x 256 MLPs with a LayerNorm (Keras' epsilon 1e-3)
    after the first layer, a head per task, the one-hot hidden from the trunks, Adam with lr 1e-3
    (Keras' epsilon 1e-7), gamma 0.99, polyak 0.995, log alpha starting at 1, the entropy target of
    an output std of 0.089 (about -1 per action dimension), log-std clipped to [-20, 2]."""
    features, action_dim, num_tasks = 39, 4, 10  # Meta-World v3 with CW10's one-hot
    observation_space = spaces.Box(-np.inf, np.inf, (features + num_tasks,), np.float32)
    agent = ContinualSAC(observation_space, spaces.Box(-1, 1, (action_dim,)), num_tasks)
    standalone = (Actor(features + num_tasks, action_dim, num_tasks),
                  Critic(features + num_tasks, action_dim, num_tasks))  # fmt: skip
    for net in (*agent.modules().values(), *standalone):
        trunk = net.trunk
        assert _widths(trunk) == [256] * 4
        assert trunk.norm.eps == 1e-3
        sees_action = isinstance(net, Critic)
        assert trunk.first.in_features == features + (action_dim if sees_action else 0)
        assert net.num_heads == num_tasks
    assert agent.actor.mean_head.out_features == action_dim * num_tasks
    assert (agent.gamma, agent.polyak, agent.learning_rate) == (0.99, 0.995, 1e-3)
    for optimizer in agent.optimizers.values():
        assert [(g["lr"], g["eps"]) for g in optimizer.param_groups] == [(1e-3, 1e-7)]
    assert torch.equal(agent.log_alpha.detach(), torch.ones(num_tasks))
    assert agent.target_entropy == pytest.approx(
        action_dim * math.log(0.089 * math.sqrt(2 * math.pi * math.e))
    )
    assert agent.target_entropy == pytest.approx(-action_dim, abs=0.01)
    assert (LOG_STD_MIN, LOG_STD_MAX) == (-20.0, 2.0)


def test_network_sizes_are_the_ones_asked_for():
    agent = tiny_agent(num_tasks=2, hidden_size=8, num_layers=3)
    for net in agent.modules().values():
        assert _widths(net.trunk) == [8] * 3


def test_log_std_is_clipped_to_spinning_ups_bounds():
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2)
    observations = random_batch(agent, 4, task=1).observations
    for bias, bound in ((50.0, LOG_STD_MAX), (-50.0, LOG_STD_MIN)):
        with torch.no_grad():
            agent.actor.log_std_head.bias.fill_(bias)
        _, log_std = agent.actor(observations)
        assert torch.all(log_std == bound)


def test_sample_is_a_tanh_squashed_gaussian_with_the_change_of_variables_correction():
    torch.manual_seed(0)
    actor = tiny_agent(num_tasks=2).actor
    with torch.no_grad():  # an off-centre mean and a std far from 1, so every term shows
        actor.mean_head.bias.fill_(0.4)
        actor.log_std_head.bias.fill_(-1.0)
    observations = random_batch(tiny_agent(num_tasks=2), 6, task=1).observations
    mean, log_std = actor(observations)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7))
    action, log_prob, mean_action = actor.sample(observations, torch.Generator().manual_seed(7))

    u = (mean + noise * log_std.exp()).double()  # the pre-squash Gaussian sample
    gaussian = torch.distributions.Normal(mean.double(), log_std.exp().double())
    # log pi(tanh(u)) = log N(u) - sum_d log(1 - tanh(u_d)^2)
    expected = gaussian.log_prob(u).sum(dim=1) - torch.log1p(-torch.tanh(u).pow(2)).sum(dim=1)
    torch.testing.assert_close(action.double(), torch.tanh(u), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(log_prob.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mean_action, torch.tanh(mean))


@pytest.mark.parametrize("multi_head", [True, False])
def test_shared_parameters_are_the_trunk_and_with_one_head_the_head_too(multi_head):
    agent = tiny_agent(num_tasks=2, multi_head=multi_head)
    for net, heads in (
        (agent.actor, [agent.actor.mean_head, agent.actor.log_std_head]),
        (agent.critic1, [agent.critic1.head]),
    ):
        expected = [*net.trunk.parameters()]
        if not multi_head:  # one head serves every task
            expected += [p for head in heads for p in head.parameters()]
        assert [id(p) for p in net.shared_parameters()] == [id(p) for p in expected]


def test_checkpoints_name_each_network():
    # The names are the keys of the checkpoint file: renaming one breaks every saved run.
    agent = tiny_agent(num_tasks=2)
    names = ("actor", "critic1", "critic2", "target1", "target2")
    modules = agent.modules()
    assert list(modules) == list(names)
    assert all(modules[name] is getattr(agent, name) for name in names)
    assert set(agent.state_dict()) == {*names, "log_alpha", "optimizers"}
