"""The continual-learning methods: L2, EWC, PackNet, segments, the method registry."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from memrl.agents.continual.buffers import ReplayBuffer
from memrl.agents.continual.methods import (
    EWC,
    L2,
    METHOD_CLASSES,
    InterleavedTasks,
    PackNet,
    Segment,
    fisher_diagonal,
    make_method,
    task_segments,
)
from memrl.streams import make_stream

from .conftest import random_batch, tiny_agent, tiny_config

THREE_TASKS = "reach-v3,button-press-v3,drawer-close-v3"


def _buffer_with(agent, task: int, size: int = 64) -> ReplayBuffer:
    batch = random_batch(agent, size, task, seed=task + 10)
    buffer = ReplayBuffer(size, agent.observation_space.shape[0], agent.action_space.shape[0])
    for row in zip(*(t.numpy() for t in batch), strict=True):
        buffer.add(*row)
    return buffer


def _method(cls, agent, **overrides):
    config = tiny_config(tasks=THREE_TASKS, **overrides)
    method = cls(config, config.build_stream())
    method.attach(agent)
    agent.method = method
    return method


def test_l2_penalty_is_zero_at_the_anchor_and_grows_with_distance():
    agent = tiny_agent(num_tasks=3)
    l2 = _method(L2, agent, l2_coef=3.0)
    assert l2.extra_loss(agent, 0).item() == 0.0  # no penalty during the first task
    l2.on_task_start(agent, Segment(1, 1, 300, 300), _buffer_with(agent, 0))
    assert l2.extra_loss(agent, 1).item() == 0.0  # at the anchor
    count = sum(p.numel() for p in l2.parameters)
    penalties = []
    for distance in (0.1, 0.2, 0.4):
        with torch.no_grad():
            for p, anchor in zip(l2.parameters, l2.anchors, strict=True):
                p.copy_(anchor + distance)
        penalties.append(l2.extra_loss(agent, 1).item())
        assert penalties[-1] == pytest.approx(3.0 * count * distance**2, rel=1e-5)
    assert penalties == sorted(penalties)
    # Importance accumulates: after a second task change each weight counts twice.
    l2.on_task_start(agent, Segment(2, 2, 600, 300), _buffer_with(agent, 1))
    assert all(torch.all(w == 2) for w in l2.importance)


def test_l2_regularises_the_shared_trunk_only():
    agent = tiny_agent(num_tasks=3)
    l2 = _method(L2, agent)
    ids = {id(p) for p in l2.parameters}
    assert ids == {id(p) for p in agent.actor.trunk.parameters()}  # not heads, not critics
    l2_critic = _method(L2, tiny_agent(num_tasks=3), regularize_critic=True)
    assert len(l2_critic.parameters) == 3 * len(list(agent.actor.trunk.parameters()))


def _hand_fisher(agent, observations):
    """Per transition, per parameter: sum_d (dmu_d^2 + 2 dsigma_d^2) / (sigma_d^2 + 1e-6)."""
    params = agent.actor.shared_parameters()
    total = [torch.zeros_like(p) for p in params]
    for obs in observations:
        mean, log_std = agent.actor(obs[None])
        mu, sigma = torch.tanh(mean[0]), log_std[0].exp()
        per_sample = [torch.zeros_like(p) for p in params]
        for d in range(mu.shape[0]):
            d_mu = torch.autograd.grad(mu[d], params, retain_graph=True, allow_unused=True)
            d_sigma = torch.autograd.grad(sigma[d], params, retain_graph=True, allow_unused=True)
            for i, (gm, gs) in enumerate(zip(d_mu, d_sigma, strict=True)):
                gm = torch.zeros_like(params[i]) if gm is None else gm
                gs = torch.zeros_like(params[i]) if gs is None else gs
                per_sample[i] += (gm**2 + 2 * gs**2) / (sigma[d].detach() ** 2 + 1e-6)
        for i in range(len(params)):
            total[i] += per_sample[i].clamp(min=1e-5)
    return [t / len(observations) for t in total]


def test_ewc_fisher_is_non_negative_and_matches_a_hand_computation():
    torch.manual_seed(3)
    agent = tiny_agent(num_tasks=2, obs_features=3, action_dim=2, hidden_size=4)
    batch = random_batch(agent, 20, task=1)  # more than one chunk of 16 transitions
    fisher = fisher_diagonal(agent, batch)
    expected = _hand_fisher(agent, batch.observations)
    assert len(fisher) == len(expected)
    for got, want in zip(fisher, expected, strict=True):
        assert torch.all(got >= 1e-5)  # non-negative, clipped from below as Continual World
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_ewc_penalty_is_the_fisher_weighted_squared_distance():
    torch.manual_seed(4)
    agent = tiny_agent(num_tasks=2, obs_features=3, hidden_size=4)
    ewc = _method(EWC, agent, ewc_coef=10.0, ewc_fisher_batches=1, ewc_fisher_batch_size=8)
    ewc.on_task_start(agent, Segment(1, 1, 300, 300), _buffer_with(agent, 0, size=32))
    assert ewc.extra_loss(agent, 1).item() == 0.0
    shifts = [torch.randn_like(p) * 0.1 for p in ewc.parameters]
    with torch.no_grad():
        for p, shift in zip(ewc.parameters, shifts, strict=True):
            p.add_(shift)
    by_hand = 10.0 * sum(float((f * s**2).sum()) for f, s in zip(ewc.importance, shifts,
                                                                   strict=True))  # fmt: skip
    assert ewc.extra_loss(agent, 1).item() == pytest.approx(by_hand, rel=1e-5)


def _hand_critic_fisher(critic, batch):
    """Per parameter: the mean over transitions of dQ(s, a)/dtheta squared."""
    params = critic.shared_parameters()
    total = [torch.zeros_like(p) for p in params]
    for obs, action in zip(batch.observations, batch.actions, strict=True):
        grads = torch.autograd.grad(critic(obs[None], action[None])[0], params)
        for i, g in enumerate(grads):
            total[i] += g**2
    return [t / len(batch.observations) for t in total]


def test_ewc_critic_fisher_matches_a_hand_computation():
    torch.manual_seed(5)
    agent = tiny_agent(num_tasks=2, hidden_size=4)
    batch = random_batch(agent, 20, task=0)  # more than one chunk of 16 transitions
    fisher = fisher_diagonal(agent, batch, regularize_critic=True)
    actor = len(agent.actor.shared_parameters())
    assert len(fisher) == 3 * actor
    expected = [
        *_hand_critic_fisher(agent.critic1, batch),
        *_hand_critic_fisher(agent.critic2, batch),
    ]
    for got, want in zip(fisher[actor:], expected, strict=True):
        assert torch.all(got >= 0)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-8)


def test_a_regularizer_checkpointed_during_the_first_task_restores():
    agent = tiny_agent(num_tasks=3)
    l2 = _method(L2, agent)
    state = l2.state_dict()  # before any task change: anchored at the initial weights
    for param, anchor in zip(l2.parameters, state["anchors"], strict=True):
        assert torch.equal(param.detach(), anchor)
    restored = _method(L2, tiny_agent(num_tasks=3))
    restored.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(restored.anchors, l2.anchors, strict=True))


def test_ewc_with_regularize_critic_adds_the_critics_fisher_to_the_importance():
    torch.manual_seed(4)
    agent = tiny_agent(num_tasks=2, obs_features=3, hidden_size=4)
    ewc = _method(EWC, agent, regularize_critic=True, ewc_fisher_batches=1,
                  ewc_fisher_batch_size=8)  # fmt: skip
    buffer = _buffer_with(agent, 0, size=32)
    batch = copy.deepcopy(buffer).sample(8)  # the batch on_task_start will draw
    ewc.on_task_start(agent, Segment(1, 1, 300, 300), buffer)
    expected = fisher_diagonal(agent, batch, regularize_critic=True)
    assert len(ewc.importance) == len(expected) == len(ewc.parameters)
    for got, want in zip(ewc.importance, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_ewc_fisher_adds_the_epsilon_to_the_variance_of_a_nearly_deterministic_policy():
    # With sigma^2 about 1e-6 the epsilon (1e-6) is half the denominator.
    torch.manual_seed(3)
    agent = tiny_agent(num_tasks=2, obs_features=3, action_dim=2, hidden_size=4)
    with torch.no_grad():
        agent.actor.log_std_head.bias.fill_(-7.0)
    batch = random_batch(agent, 8, task=1)
    for got, want in zip(fisher_diagonal(agent, batch), _hand_fisher(agent, batch.observations),
                         strict=True):  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_the_methods_buffers_sample_with_the_seed_they_are_given():
    for name in ("finetune", "replay"):
        config = tiny_config(method=name, replay_buffer_size=10)
        method = make_method(config, config.build_stream())
        buffers = [method.make_buffer(1, 1, seed) for seed in (3, 3, 4)]
        for buffer in buffers:
            for i in range(10):
                buffer.add(np.zeros(1), np.zeros(1), float(i), np.zeros(1), False)
        first, same, other = (buffer.sample(20).rewards for buffer in buffers)
        assert torch.equal(first, same) and not torch.equal(first, other)


def _owned(packnet, segment):
    return [int((owner == segment).sum()) for owner in packnet.owner]


def test_packnet_frees_exactly_the_expected_fraction():
    torch.manual_seed(5)
    agent = tiny_agent(num_tasks=3, hidden_size=10)
    packnet = _method(PackNet, agent)
    sizes = [w.numel() for w in packnet.weights]
    assert _owned(packnet, 0) == sizes
    packnet.prune(0, 2 / 3)  # three tasks: task 0 keeps a third
    freed = [math.floor(n * 2 / 3) for n in sizes]
    assert _owned(packnet, 1) == freed
    assert _owned(packnet, 0) == [n - f for n, f in zip(sizes, freed, strict=True)]
    for weight, owner in zip(packnet.weights, packnet.owner, strict=True):
        assert torch.all(weight[owner == 1] == 0)  # freed weights are zeroed
        kept = weight[owner == 0].abs()
        assert kept.min() >= weight.detach().abs()[owner == 1].max()  # the largest are kept
    packnet.prune(1, 1 / 2)
    assert _owned(packnet, 2) == [math.floor(f / 2) for f in freed]


def test_packnet_keeps_earlier_tasks_weights_frozen_while_training_the_next():
    torch.manual_seed(6)
    agent = tiny_agent(num_tasks=3, hidden_size=10)
    packnet = _method(PackNet, agent, packnet_retrain_steps=3, packnet_clipnorm=0.0)
    packnet.on_task_start(agent, Segment(0, 0, 0, 300), _buffer_with(agent, 0))
    for step in range(3):
        agent.update(random_batch(agent, 16, task=0, seed=step), packnet, 0)
    buffer = _buffer_with(agent, 0)
    packnet.on_task_end(agent, Segment(0, 0, 0, 300), buffer,
                        lambda: agent.update(buffer.sample(16), packnet, 0))  # fmt: skip
    assert packnet.frozen_others
    frozen_weights = [w.detach().clone() for w in packnet.weights]
    frozen_others = [p.detach().clone() for p in packnet.others]
    heads = agent.actor.mean_head.weight.detach().clone()

    agent.reset_optimizers()
    packnet.on_task_start(agent, Segment(1, 1, 300, 300), buffer)
    for step in range(5):
        agent.update(random_batch(agent, 16, task=1, seed=100 + step), packnet, 1)
    for before, weight, owner in zip(frozen_weights, packnet.weights, packnet.owner, strict=True):
        assert torch.equal(weight[owner == 0], before[owner == 0])  # task 0's weights: unchanged
        assert not torch.equal(weight[owner == 1], before[owner == 1])  # task 1's: trained
    for before, param in zip(frozen_others, packnet.others, strict=True):
        assert torch.equal(param, before)  # biases and LayerNorm frozen after task 0
    assert not torch.equal(agent.actor.mean_head.weight, heads)  # heads are not managed

    # Task 0 is evaluated with its own weights only; everything is put back afterwards.
    current = [w.detach().clone() for w in packnet.weights]
    with agent.task_view(0):
        for weight, owner in zip(packnet.weights, packnet.owner, strict=True):
            assert torch.all(weight[owner == 1] == 0)
    for weight, value in zip(packnet.weights, current, strict=True):
        assert torch.equal(weight, value)


def test_packnet_trains_biases_and_norms_during_the_first_task():
    torch.manual_seed(6)
    agent = tiny_agent(num_tasks=3, hidden_size=10)
    packnet = _method(PackNet, agent, packnet_clipnorm=0.0)
    before = [p.detach().clone() for p in packnet.others]
    agent.update(random_batch(agent, 16, task=0), packnet, 0)
    for old, param in zip(before, packnet.others, strict=True):
        assert not torch.equal(param, old)


def test_packnet_leaves_each_later_task_an_equal_share_at_every_task_end():
    agent = tiny_agent(num_tasks=3, hidden_size=10)
    packnet = _method(PackNet, agent, packnet_retrain_steps=0)
    sizes = [w.numel() for w in packnet.weights]
    buffer = _buffer_with(agent, 0)
    packnet.on_task_end(agent, packnet.segments[0], buffer, lambda: None)
    freed = [math.floor(n * 2 / 3) for n in sizes]  # two tasks to come: task 0 keeps a third
    assert _owned(packnet, 1) == freed
    packnet.on_task_end(agent, packnet.segments[1], buffer, lambda: None)
    assert _owned(packnet, 2) == [math.floor(f / 2) for f in freed]  # one to come: half


def test_packnet_does_not_prune_after_the_last_task():
    agent = tiny_agent(num_tasks=3)
    packnet = _method(PackNet, agent, packnet_retrain_steps=0)
    buffer = _buffer_with(agent, 2)
    packnet.on_task_end(agent, Segment(2, 2, 600, 300), buffer, lambda: None)
    assert _owned(packnet, 0) == [w.numel() for w in packnet.weights]


def test_packnet_retrain_steps_default_to_a_tenth_of_the_task():
    config = tiny_config(tasks=THREE_TASKS, steps_per_task=1000, packnet_retrain_steps=-1)
    assert PackNet(config, config.build_stream()).retrain_steps == 100


def test_consecutive_stages_of_one_task_form_one_segment():
    stream = make_stream(tasks=["reach-v3", "push-v3"], schedule={"kind": "repeat", "times": 2},
                         steps_per_task=10)  # fmt: skip
    assert [(s.task_id, s.start, s.steps) for s in task_segments(stream.timeline)] == [
        (0, 0, 10), (1, 10, 10), (0, 20, 10), (1, 30, 10)
    ]  # fmt: skip
    stream = make_stream(tasks=["reach-v3"], schedule={"kind": "repeat", "times": 3},
                         steps_per_task=10)  # fmt: skip
    assert task_segments(stream.timeline) == [Segment(0, 0, 0, 30)]


def test_every_method_name_builds_its_method():
    config = tiny_config()
    stream = config.build_stream()
    for name, cls in METHOD_CLASSES.items():
        config.method = name
        assert isinstance(make_method(config, stream), cls)
    config.method = "agem"
    with pytest.raises(ValueError, match="method must be one of .*'packnet'"):
        make_method(config, stream)


def test_multitask_interleaves_the_tasks_episode_by_episode():
    names = ["reach-v3", "push-v3", "button-press-v3"]
    env = InterleavedTasks(make_stream(tasks=names, steps_per_task=10))
    tasks, observations = [], []
    for episode in range(4):
        obs, info = env.reset(seed=0 if episode == 0 else None)
        tasks.append(info["task"]["name"])
        observations.append(obs)
    assert tasks == [*names, names[0]]  # from task 0, in the stream's order
    assert env.np_random_seed == 0  # Gymnasium's reset(seed=...) seeds the env itself too
    for _ in range(2):
        obs, *_ = env.step(env.action_space.sample())
    assert obs[-3:].tolist() == [1.0, 0.0, 0.0]  # the one-hot of the episode's task
    assert env.stream_step == 2  # steps taken
    # reset(seed=...) re-seeds every task's env: the next episode (task 1) starts as its first did.
    obs, info = env.reset(seed=0)
    assert info["task"]["name"] == names[1]
    np.testing.assert_array_equal(obs, observations[1])
    env.close()


def test_multitask_runs_on_a_one_task_stream():
    env = InterleavedTasks(make_stream(tasks=["reach-v3"], steps_per_task=10))
    for seed in (0, None):
        _, info = env.reset(seed=seed)
        assert info["task"]["name"] == "reach-v3"
    assert env.action_space.shape == (4,) and env.observation_space.shape == (40,)
    env.close()
