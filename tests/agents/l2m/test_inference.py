from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from memrl.agents.l2m import ModulatorPool, attach_lora
from memrl.agents.l2m.speed import measure_action_ms, measure_update_ms
from memrl.agents.pretrained import (
    Modulation,
    MultiDomainDecisionTransformer,
    RollingContext,
    predict_action,
)

from .conftest import TINY, make_context, replace


def test_rolling_context_keeps_the_last_steps_with_returns_to_go_and_time():
    rolling = RollingContext(num_envs=2, task_action_dim=2, config=TINY, domain="metaworld")
    rolling.start([0, 1], np.ones((2, 5)), return_to_go=[10.0, 20.0])
    context = rolling.context()
    assert context.step_mask.tolist() == [[False, False, False, True]] * 2
    assert context.states[:, -1, :5].eq(1).all() and context.states[:, -1, 5:].eq(0).all()
    for step in range(5):
        rolling.record(
            actions=np.full((2, 2), 0.1 * (step + 1)),
            rewards=[1.0, 2.0],
            next_states=np.full((2, 5), step + 2.0),
        )
    context = rolling.context()
    assert context.step_mask.all()
    assert context.timesteps.tolist() == [[2, 3, 4, 5]] * 2
    assert context.returns_to_go.tolist() == [[8.0, 7.0, 6.0, 5.0], [16.0, 14.0, 12.0, 10.0]]
    assert context.states[0, :, 0].tolist() == [3.0, 4.0, 5.0, 6.0]
    # The actions taken in states 3, 4 and 5; the last is a placeholder for the next action.
    assert torch.allclose(context.actions[0, :, 0], torch.tensor([0.3, 0.4, 0.5, 0.0]))
    assert context.actions[:, :, 2].eq(0).all()  # padded action dimension
    rolling.start([1], np.zeros((1, 5)), return_to_go=3.0)  # only env 1 restarts
    context = rolling.context()
    assert context.step_mask.tolist() == [[True] * 4, [False, False, False, True]]
    assert context.timesteps[1, -1] == 0 and context.returns_to_go[1, -1] == 3.0
    assert context.timesteps[0, -1] == 5


def test_rolling_context_refuses_states_wider_than_the_layout():
    rolling = RollingContext(num_envs=1, task_action_dim=2, config=TINY, domain="metaworld")
    with pytest.raises(
        ValueError, match=r"states must have shape \(n, d\) with d <= 7, got \(1, 9\)"
    ):
        rolling.start([0], np.zeros((1, 9)), 1.0)
    with pytest.raises(ValueError, match="task_action_dim must be 1..3, got 4"):
        RollingContext(num_envs=1, task_action_dim=4, config=TINY, domain="metaworld")


def test_predict_returns_the_argmax_bin_centres_of_the_real_dims_only(model):
    context = make_context(real_action_dims=2)
    actions = predict_action(model, context)
    assert actions.shape == (3, 2)
    bins = model(context)[:, -1, :2].argmax(dim=-1)
    assert torch.equal(actions, model.binning.decode(bins))


def test_sampled_actions_are_bin_centres_reproducible_with_a_generator(model):
    context = make_context(real_action_dims=3)
    first = predict_action(model, context, False, torch.Generator().manual_seed(1))
    again = predict_action(model, context, False, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    centres = model.binning.decode(torch.arange(TINY.num_bins))
    assert torch.isin(first, centres).all()
    draws = torch.stack(
        [predict_action(model, context, False, torch.Generator().manual_seed(s)) for s in range(8)]
    )
    assert not (draws == draws[0]).all()  # sampling, not argmax


def test_predict_applies_the_modulation_a_pool_chooses(model):
    context = make_context()
    banks = attach_lora(model, num_adapters=3)
    with torch.no_grad():
        for bank in banks:
            bank.lora_b.normal_(0.0, 2.0)
    pool = ModulatorPool(key_dim=TINY.embed_dim, num_entries=3).eval()
    chosen = []

    def modulate(query: torch.Tensor) -> Modulation:
        selection = pool(query)
        chosen.append(selection.adapter_index)
        return selection.modulation

    actions = predict_action(model, context, modulate=modulate)
    expected = model(context, Modulation(chosen[0]))[:, -1, :2].argmax(dim=-1)
    assert torch.equal(actions, model.binning.decode(expected))


def test_predict_refuses_a_batch_of_different_tasks(model):
    context = make_context(real_action_dims=2)
    mask = context.action_mask.clone()
    mask[0, 2] = True
    with pytest.raises(ValueError, match="one action mask for all rows"):
        predict_action(model, replace(context, action_mask=mask))


def test_a_regression_head_refuses_to_sample():
    model = MultiDomainDecisionTransformer(dataclasses.replace(TINY, action_head="regression"))
    context = make_context()
    assert predict_action(model.eval(), context).shape == (3, 2)
    with pytest.raises(ValueError, match="a regression action head is deterministic"):
        predict_action(model, context, deterministic=False)


@pytest.mark.parametrize("method", ["full", "l2m"])
def test_timings_run_for_both_methods(method):
    update = measure_update_ms(TINY, batch_size=4, method=method, repeats=2, warmup=1)
    action = measure_action_ms(TINY, method=method, repeats=2, warmup=1)
    assert update.cpu_ms > 0 and update.wall_ms > 0 and action.wall_ms > 0
    with pytest.raises(ValueError, match=r"method must be one of \('full', 'l2m'\), got 'ewc'"):
        measure_update_ms(TINY, method="ewc")
