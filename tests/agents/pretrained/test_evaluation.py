"""Online evaluation: every task played in its real env, batched, seeded, return-conditioned."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from memrl.agents.pretrained import evaluation
from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.evaluation import (
    episode_seeds,
    evaluate_model,
    evaluate_task,
    summary,
)
from memrl.agents.pretrained.inputs import Modulation
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.pretrained.tasks import PretrainTask
from memrl.streams.catalogue import get_task

from .conftest import TINY_MODEL

REACH = PretrainTask("reach-v3", "metaworld", 0, "pretrain", 39, 4, 3, 600, 1500.0, 900.0, ())
PENDULUM = PretrainTask(
    "pendulum-swingup", "dm_control", 1, "pretrain", 3, 1, 3, 3000, 400.0, 200.0, ()
)


@pytest.fixture
def model() -> MultiDomainDecisionTransformer:
    torch.manual_seed(0)
    return MultiDomainDecisionTransformer(MDDTConfig(**TINY_MODEL))


def test_meta_world_tasks_score_success_and_a_seed_gives_the_same_episodes(model):
    model.train()
    (reach,) = evaluate_model(model, [REACH], episodes=2, seed=0).values()
    assert model.training  # put back as it was
    assert len(reach.successes) == 2 and reach.success_rate in (0.0, 0.5, 1.0)
    assert reach.target_return == pytest.approx(7.5)  # 1500 / Meta-World's scale of 200
    again = evaluate_task(model.eval(), REACH, episodes=2, seed=0)
    assert again.to_dict() == reach.to_dict()
    other_seed = evaluate_task(model, REACH, episodes=2, seed=1)
    assert other_seed.returns != reach.returns


def test_dm_control_tasks_score_their_return(model):
    results = evaluate_model(model, [REACH, PENDULUM], episodes=2, seed=0)
    pendulum = results["pendulum-swingup"]
    assert pendulum.successes is None and pendulum.success_rate is None  # no success defined
    assert len(pendulum.returns) == 2 and pendulum.target_return == pytest.approx(4.0)
    scalars = summary(results)
    assert scalars["eval/success_rate"] == results["reach-v3"].success_rate
    assert scalars["eval/return/pendulum-swingup"] == pendulum.mean_return
    assert scalars["eval/mean_return/dm_control"] == pendulum.mean_return
    assert "eval/success_rate/pendulum-swingup" not in scalars


def test_one_forward_per_step_sees_the_target_minus_the_scaled_rewards(model, monkeypatch):
    calls = []
    predict = evaluation.predict_action

    def recording(model, context, *args):
        actions = predict(model, context, *args)
        calls.append(
            (
                context.states[:, -1].clone(),
                context.returns_to_go[:, -1].clone(),
                context.timesteps[:, -1].clone(),
                actions.clone(),
            )
        )
        return actions

    monkeypatch.setattr(evaluation, "predict_action", recording)
    result = evaluate_task(model.eval(), REACH, episodes=2, seed=3)
    assert len(calls) == 200  # Meta-World's 200-step protocol, one batched forward per step
    assert all(states.shape == (2, model.config.state_dim) for states, *_ in calls)
    for i, seed in enumerate(episode_seeds("reach-v3", 2, 3)):
        env = get_task("reach-v3").make(seed=seed)
        observation, _ = env.reset(seed=seed)
        collected = 0.0
        for t, (states, returns_to_go, timesteps, actions) in enumerate(calls):
            np.testing.assert_allclose(states[i, :39].numpy(), observation, rtol=1e-6, atol=1e-6)
            assert not states[i, 39:].any()
            assert returns_to_go[i] == pytest.approx(REACH.target_return - collected / 200.0)
            assert timesteps[i] == t
            observation, reward, _, _, _ = env.step(actions[i].numpy())
            collected += reward
        env.close()
        assert result.returns[i] == pytest.approx(collected)


def test_success_is_what_the_env_reports(model, monkeypatch):
    """Acting as reach-v3's scripted expert on the states the model is shown succeeds."""
    import warnings

    from metaworld.policies import ENV_POLICY_MAP

    expert = ENV_POLICY_MAP["reach-v3"]()

    def scripted(model, context, *args):
        states = context.states[:, -1, :39].numpy().astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.tensor(np.stack([np.clip(expert.get_action(s), -1, 1) for s in states]))

    monkeypatch.setattr(evaluation, "predict_action", scripted)
    result = evaluate_task(model.eval(), REACH, episodes=2, seed=0)
    assert result.successes == (True, True)


def test_a_task_modulation_reaches_the_model(model):
    queries = []
    generator = torch.Generator().manual_seed(0)
    prefix = [
        (
            torch.randn(1, 2, 16, generator=generator) * 5,
            torch.randn(1, 2, 16, generator=generator) * 5,
        )
        for _ in range(model.config.num_layers)
    ]

    def modulate(query: torch.Tensor) -> Modulation:
        queries.append(query.shape)
        return Modulation(
            prefix=[(k.expand(len(query), -1, -1), v.expand(len(query), -1, -1)) for k, v in prefix]
        )

    plain = evaluate_model(model, [REACH], episodes=1, seed=0)
    modulated = evaluate_model(
        model, [REACH], episodes=1, seed=0, modulate_for=lambda task: modulate
    )
    assert queries == [torch.Size([1, model.config.embed_dim])] * 200
    assert modulated["reach-v3"].returns != plain["reach-v3"].returns


def test_tasks_that_cannot_be_played_are_named(model):
    unknown = dataclasses.replace(REACH, name="my-own-task")
    with pytest.raises(
        ValueError, match=r"tasks \['my-own-task'\] are not in memrl's task catalogue"
    ):
        evaluate_model(model, [REACH, unknown], episodes=1, seed=0)
    narrow = dataclasses.replace(REACH, state_dim=17)
    with pytest.raises(
        ValueError, match=r"reach-v3: the env's observation space has shape \(39,\)"
    ):
        evaluate_task(model, narrow, episodes=1, seed=0)
