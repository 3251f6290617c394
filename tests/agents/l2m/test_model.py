from __future__ import annotations

import dataclasses

import pytest
import torch

from memrl.agents.pretrained import MDDTConfig, MultiDomainDecisionTransformer
from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM

from .conftest import TINY, make_context, replace


def test_default_config_is_the_shared_layout_and_about_216k_parameters():
    config = MDDTConfig()
    assert (config.state_dim, config.action_dim, config.num_bins) == (STATE_DIM, ACTION_DIM, 64)
    assert config.context_steps == 5
    model = MultiDomainDecisionTransformer(config)
    assert sum(p.numel() for p in model.base_parameters()) == 216_448


@pytest.mark.parametrize(
    ("head", "shape"),
    [("discrete", (3, 4, TINY.action_dim, TINY.num_bins)), ("regression", (3, 4, TINY.action_dim))],
)
def test_prediction_shapes(head, shape):
    model = MultiDomainDecisionTransformer(dataclasses.replace(TINY, action_head=head)).eval()
    context = make_context()
    prediction = model(context)
    assert prediction.shape == shape
    embedded = model.embed(context)
    assert embedded.tokens.shape == (3, 3 * 4, TINY.embed_dim)
    assert model.pool_query(embedded).shape == (3, TINY.embed_dim)
    if head == "regression":
        assert prediction.abs().max() < 1


def test_later_tokens_do_not_change_earlier_predictions(model):
    """Causal mask: the action at step 1 and the state at step 2 reach no prediction <= step 1."""
    context = make_context()
    before = model(context)
    actions, states = context.actions.clone(), context.states.clone()
    actions[:, 1] = -actions[:, 1]
    states[:, 2] += 3.0
    after = model(replace(context, actions=actions, states=states))
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)
    assert not torch.allclose(before[:, 2:], after[:, 2:], atol=1e-3)


def test_padding_steps_are_invisible_to_real_steps(model):
    """A context padded at the front predicts the real steps as the short context does."""
    short = make_context(steps=2)
    padded = make_context(seed=1)  # garbage in steps 0 and 1
    padded = replace(
        padded,
        states=torch.cat((padded.states[:, :2], short.states), dim=1),
        actions=torch.cat((padded.actions[:, :2], short.actions), dim=1),
        returns_to_go=torch.cat((padded.returns_to_go[:, :2], short.returns_to_go), dim=1),
        timesteps=torch.cat((padded.timesteps[:, :2], short.timesteps), dim=1),
        action_mask=short.action_mask,
        step_mask=torch.tensor([[False, False, True, True]] * 3),
    )
    assert torch.allclose(model(padded)[:, 2:], model(short), atol=1e-5)
    query = model.pool_query(model.embed(padded))
    assert torch.allclose(query, model.pool_query(model.embed(short)), atol=1e-6)


def test_padded_action_dims_do_not_enter_the_action_tokens(model):
    context = make_context(real_action_dims=2)
    actions = context.actions.clone()
    actions[..., 2] = -actions[..., 2]  # dimension 2 is padding for this task
    assert torch.equal(model(context), model(replace(context, actions=actions)))
    actions[..., 0] = -actions[..., 0]  # a real dimension does enter
    assert not torch.allclose(model(context), model(replace(context, actions=actions)))


@pytest.mark.parametrize("head", ["discrete", "regression"])
def test_loss_ignores_padded_action_dims_and_padded_steps(head):
    torch.manual_seed(0)
    model = MultiDomainDecisionTransformer(dataclasses.replace(TINY, action_head=head)).eval()
    context = replace(make_context(real_action_dims=2), step_mask=torch.ones(3, 4, dtype=bool))
    context.step_mask[:, 0] = False
    prediction = model(context)
    loss = model.action_loss(prediction, context)
    padded_dim = context.actions.clone()
    padded_dim[..., 2] = -padded_dim[..., 2]
    assert torch.equal(model.action_loss(prediction, replace(context, actions=padded_dim)), loss)
    padded_step = context.actions.clone()
    padded_step[:, 0] = -padded_step[:, 0]
    assert torch.equal(model.action_loss(prediction, replace(context, actions=padded_step)), loss)
    real = context.actions.clone()
    real[:, 1:, 0] = -real[:, 1:, 0]
    assert not torch.equal(model.action_loss(prediction, replace(context, actions=real)), loss)


def test_cross_entropy_is_taken_against_the_target_bins(model):
    context = make_context()
    prediction = model(context)
    targets = model.binning.encode(context.actions)[..., :2]  # [B, K, 2] real dims
    logits = prediction[..., :2, :]
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, -2), targets.flatten())
    assert torch.allclose(model.action_loss(prediction, context), expected)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("states", torch.zeros(3, 4, 5), r"states must have shape \(3, 4, 7\), got \(3, 4, 5\)"),
        ("timesteps", torch.full((3, 4), 50), r"timesteps must be in 0..49, got values in 50..50"),
        ("action_mask", torch.ones(3, 3), "action_mask must be torch.bool, got torch.float32"),
    ],
)
def test_bad_inputs_are_refused_by_name(model, field, value, message):
    with pytest.raises(ValueError, match=message):
        model(replace(make_context(), **{field: value}))


def test_a_context_longer_than_configured_is_refused(model):
    with pytest.raises(ValueError, match="contexts must have 1..4 steps, got 5"):
        model(make_context(steps=5))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_heads": 3}, "num_heads must divide embed_dim=16, got num_heads=3"),
        ({"action_head": "gaussian"}, r"action_head must be one of \('discrete', 'regression'\)"),
        ({"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **changes)


def test_config_round_trips_through_a_dict_and_refuses_unknown_fields():
    assert MDDTConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match=r"unknown MDDTConfig fields \['width'\]"):
        MDDTConfig.from_dict({**TINY.to_dict(), "width": 3})
