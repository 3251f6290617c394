"""One ``ContinualSAC.update`` against the SAC losses written out by hand, and Adam's first step.

The losses follow the module docstring of :mod:`memrl.agents.continual.sac` (Spinning Up's SAC as
Continual World runs it); the batch mixes two tasks, terminal and non-terminal transitions, and the
tasks have different entropy coefficients, so every term of the formulas shows in the gradients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.continual.buffers import Batch
from memrl.agents.continual.methods import Finetune
from memrl.agents.continual.sac import ContinualSAC, _clip_by_global_norm, _grads

from .conftest import random_batch, tiny_agent, tiny_config

SEED = 11
"""Seeds torch's generator before the update draws its actions (and before the hand copy does)."""


def _mixed_batch(agent) -> Batch:
    """Eight transitions of task 0 and eight of task 1; every other one terminal."""
    parts = [random_batch(agent, 8, task=task, seed=20 + task) for task in (0, 1)]
    batch = Batch(*(torch.cat(fields) for fields in zip(*parts, strict=True)))
    batch.terminated[::2] = 1.0
    return batch


def _hand_losses(agent, batch: Batch) -> dict[str, torch.Tensor]:
    """The SAC losses of ``batch``, row by row where a row's task matters.

    ``a ~ pi(s)`` is drawn before ``a' ~ pi(s')``, from torch's generator seeded with ``SEED``.
    """
    obs, actions, rewards, next_obs, terminated = batch
    tasks = obs[:, -agent.num_tasks :].argmax(dim=1).tolist()
    alpha = torch.tensor([math.exp(float(agent.log_alpha[t].detach())) for t in tasks])
    torch.manual_seed(SEED)
    action, log_pi, _ = agent.actor.sample(obs)
    next_action, next_log_pi, _ = agent.actor.sample(next_obs)
    with torch.no_grad():
        next_q = torch.minimum(agent.target1(next_obs, next_action),
                               agent.target2(next_obs, next_action))  # fmt: skip
        soft_next_value = next_q - alpha * next_log_pi
        target = rewards + 0.99 * torch.where(terminated > 0, 0.0, soft_next_value)
    q1, q2 = agent.critic1(obs, actions), agent.critic2(obs, actions)
    q_pi = torch.minimum(agent.critic1(obs, action), agent.critic2(obs, action))
    log_alpha = torch.stack([agent.log_alpha[t] for t in tasks])
    return {
        "critic": ((q1 - target) ** 2).mean() / 2 + ((q2 - target) ** 2).mean() / 2,
        "actor": (alpha * log_pi - q_pi).mean(),
        "alpha": -(log_alpha * (log_pi.detach() + agent.target_entropy)).mean(),
        "q_value": q1.detach().mean(),
        "log_pi": log_pi.detach().mean(),
    }


def test_one_update_takes_adams_first_step_on_the_sac_losses():
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2, hidden_size=16)
    with torch.no_grad():
        agent.log_alpha.copy_(torch.tensor([0.5, -0.3]))  # a different alpha per task
    batch = _mixed_batch(agent)
    losses = _hand_losses(agent, batch)
    actor, critics = list(agent.actor.parameters()), agent.critic_parameters
    expected = {
        "actor": torch.autograd.grad(losses["actor"], actor, retain_graph=True),
        "critic": torch.autograd.grad(losses["critic"], critics),
        "alpha": torch.autograd.grad(losses["alpha"], [agent.log_alpha]),
    }
    before = {"actor": [p.detach().clone() for p in actor],
              "critic": [p.detach().clone() for p in critics],
              "alpha": [agent.log_alpha.detach().clone()]}  # fmt: skip

    config = tiny_config()
    torch.manual_seed(SEED)
    diagnostics = agent.update(batch, Finetune(config, config.build_stream()), 0)

    for name in ("critic", "actor", "alpha"):
        assert diagnostics[f"losses/{name}_loss"] == pytest.approx(losses[name].item(), rel=1e-5)
    assert diagnostics["losses/q_value"] == pytest.approx(float(losses["q_value"]), rel=1e-5)
    assert diagnostics["losses/log_pi"] == pytest.approx(float(losses["log_pi"]), rel=1e-5)
    assert diagnostics["losses/penalty"] == 0.0
    params = {"actor": actor, "critic": critics, "alpha": [agent.log_alpha]}
    for name, grads in expected.items():
        for param, grad, old in zip(params[name], grads, before[name], strict=True):
            assert param.grad is not None
            torch.testing.assert_close(param.grad, grad, rtol=1e-4, atol=1e-7)
            # Adam's first step: the bias-corrected moments are g and g^2, so each weight moves
            # by lr * g / (|g| + eps) against its gradient (lr 1e-3, Keras' eps 1e-7).
            step = 1e-3 * grad / (grad.abs() + 1e-7)
            torch.testing.assert_close(param.detach(), old - step, rtol=0, atol=1e-7)


def test_actions_are_squashed_then_scaled_to_the_bounds():
    observation_space = spaces.Box(-np.inf, np.inf, (5 + 2,), np.float32)
    action_space = spaces.Box(np.array([0.0, -2.0], np.float32), np.array([1.0, 6.0], np.float32))
    torch.manual_seed(0)
    agent = ContinualSAC(observation_space, action_space, 2, hidden_size=8, num_layers=2)
    observations = random_batch(agent, 6, task=1).observations
    mean, _ = agent.actor(observations)
    # tanh(mean) in [-1, 1] mapped linearly onto [low, high]: centre (low + high) / 2, half-width
    # (high - low) / 2.
    expected = torch.tanh(mean) * torch.tensor([0.5, 4.0]) + torch.tensor([0.5, 2.0])
    actions = agent.act(observations.numpy(), deterministic=True)
    np.testing.assert_allclose(actions, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    sampled = agent.act(observations.numpy())
    assert np.all(sampled >= action_space.low) and np.all(sampled <= action_space.high)


@pytest.mark.parametrize(
    ("observation_space", "action_space", "message"),
    [
        (spaces.Box(-1, 1, (7,)), spaces.Discrete(3), "needs a 1-D Box action space, got Discrete"),
        (spaces.Box(-1, 1, (7,)), spaces.Box(-1, 1, (2, 2)), "1-D Box action space, got Box"),
        (spaces.Box(-1, 1, (7,)), spaces.Box(-np.inf, 1, (2,)), "action bounds must be finite"),
        (spaces.Box(-1, 1, (7,)), spaces.Box(-1, np.inf, (2,)), "action bounds must be finite"),
        (spaces.Box(-1, 1, (7, 1)), spaces.Box(-1, 1, (2,)), "1-D Box observation with the task"),
        (spaces.Discrete(7), spaces.Box(-1, 1, (2,)), "1-D Box observation with the task one-hot"),
    ],
)
def test_spaces_it_cannot_learn_on_are_refused_naming_them(
    observation_space, action_space, message
):
    with pytest.raises(ValueError, match=message):
        ContinualSAC(observation_space, action_space, 2)


def test_predict_samples_unless_deterministic_and_takes_float64_observations():
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2)
    observations = random_batch(agent, 4, task=0).observations.numpy().astype(np.float64)
    first, _ = agent.predict(observations)
    second, _ = agent.predict(observations)
    assert first.dtype == np.float32 and first.shape == (4, 2)
    assert not np.allclose(first, second)  # SB3's default: stochastic
    mean, _ = agent.predict(observations, deterministic=True)
    np.testing.assert_array_equal(mean, agent.predict(observations, deterministic=True)[0])


class _TinyClip(Finetune):
    """Clips every gradient group to a global norm of 1e-6: the size of Keras' Adam epsilon."""

    clipnorm = 1e-6  # type: ignore[assignment]


def test_every_optimiser_steps_with_the_learning_rate_and_keras_epsilon():
    # Adam's first step moves each weight by lr * g / (|g| + eps). With gradients clipped to
    # about 1e-8 per weight, eps 1e-7 (Keras') and torch's 1e-8 give steps a few times apart.
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2, learning_rate=3e-4)
    params = [*agent.actor.parameters(), *agent.critic_parameters, agent.log_alpha]
    before = [p.detach().clone() for p in params]
    config = tiny_config()
    agent.update(_mixed_batch(agent), _TinyClip(config, config.build_stream()), 0)
    for param, old in zip(params, before, strict=True):
        assert param.grad is not None
        grad = param.grad
        torch.testing.assert_close(param.detach(), old - 3e-4 * grad / (grad.abs() + 1e-7),
                                   rtol=0, atol=2e-7)  # fmt: skip
    assert float(agent.log_alpha.grad.norm()) == pytest.approx(1e-6)  # clipped


def test_update_gives_the_method_the_agent_and_the_stage():
    calls: list[tuple[str, object, object]] = []

    class Spy(Finetune):
        def extra_loss(self, agent, segment):
            calls.append(("extra_loss", agent, segment))
            return super().extra_loss(agent, segment)

        def adjust_gradients(self, agent, segment, actor_grads, critic_grads):
            calls.append(("adjust_gradients", agent, segment))
            return actor_grads, critic_grads

    agent = tiny_agent(num_tasks=2)
    config = tiny_config()
    agent.update(random_batch(agent, 8, task=1), Spy(config, config.build_stream()), 1)
    assert calls == [("extra_loss", agent, 1), ("adjust_gradients", agent, 1)]


def test_gradients_of_parameters_a_loss_does_not_use_are_zeros():
    used, unused = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    grads = _grads((3 * used).sum(), [used, unused], retain_graph=False)
    assert [g.tolist() for g in grads] == [[3.0, 3.0], [0.0, 0.0, 0.0]]
    grads = _grads(torch.tensor(1.0), [used, unused], retain_graph=False)  # depends on nothing
    assert [g.tolist() for g in grads] == [[0.0, 0.0], [0.0, 0.0, 0.0]]


def test_clipping_scales_a_group_to_its_global_norm_as_tensorflow_does():
    grads = [torch.tensor([3.0]), torch.tensor([0.0, 4.0])]  # global norm 5
    _clip_by_global_norm(grads, 1.0)
    assert [g.tolist() for g in grads] == [pytest.approx([0.6]), pytest.approx([0.0, 0.8])]
    _clip_by_global_norm(grads, 10.0)  # already below the norm: unchanged
    assert [g.tolist() for g in grads] == [pytest.approx([0.6]), pytest.approx([0.0, 0.8])]
    _clip_by_global_norm([], 1.0)  # an empty group: nothing to do
