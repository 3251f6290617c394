from __future__ import annotations

import math

import pytest
import torch

from memrl.agents.l2m import LoRABank, attach_lora
from memrl.agents.pretrained import Modulation

from .conftest import TINY, make_context, repeat_first


def _randomise_b(banks: list[LoRABank]) -> None:
    with torch.no_grad():
        for bank in banks:
            bank.lora_b.normal_(0.0, 0.5)


def test_banks_sit_on_query_value_and_fc1_of_every_block(model):
    banks = attach_lora(model, num_adapters=3)
    assert len(banks) == 3 * TINY.num_layers
    for block in model.blocks:
        assert list(block.adapters) == ["query", "value", "fc1"]
        fc1 = block.adapters["fc1"]
        assert fc1.lora_a.shape == (3, TINY.embed_dim, 8)
        assert fc1.lora_b.shape == (3, 8, 4 * TINY.embed_dim)
        assert fc1.scale == 2.0
        bound = 1 / math.sqrt(TINY.embed_dim)
        assert 0.5 * bound < fc1.lora_a.abs().max() <= bound


@pytest.mark.parametrize("index", [[-1, -1, -1], [0, 0, 0], [1, 1, 1], [2, 2, 2], [2, -1, 0]])
def test_zero_b_leaves_the_frozen_model_exactly_unchanged(model, index):
    context = make_context()
    frozen = model(context)
    attach_lora(model, num_adapters=3)
    adapted = model(context, Modulation(adapter_index=torch.tensor(index)))
    assert torch.equal(adapted, frozen)


def test_each_sample_gets_its_own_adapter_and_minus_one_is_the_frozen_model(model):
    batch = repeat_first(make_context(), 4)  # four copies of one context
    frozen = model(batch)
    _randomise_b(attach_lora(model, num_adapters=2))
    out = model(batch, Modulation(adapter_index=torch.tensor([0, 1, 0, -1])))
    assert torch.equal(out[0], out[2])  # same adapter, same output
    assert not torch.allclose(out[0], out[1], atol=1e-3)  # different adapters differ
    assert not torch.allclose(out[0], frozen[0], atol=1e-3)  # an adapter changes the model
    assert torch.equal(out[3], frozen[3])  # -1: exactly the frozen model
    alone = model(batch, Modulation(adapter_index=torch.tensor([1, 1, 1, 1])))
    assert torch.allclose(out[1], alone[1], atol=1e-5)  # routing = running each adapter alone


def test_frozen_base_is_bit_identical_after_optimiser_steps(model):
    model.train()
    base_before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.freeze_base()
    banks = attach_lora(model, num_adapters=2)
    assert all(not p.requires_grad for p in model.base_parameters())
    # An optimiser over every parameter (as a careless loop would build it), with weight decay.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    context = make_context()
    for _ in range(3):
        prediction = model(context, Modulation(adapter_index=torch.tensor([0, 1, 0])))
        loss = model.action_loss(prediction, context)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        if ".adapters." not in name:
            assert torch.equal(p, base_before[name]), name
    assert all(bank.lora_b.abs().sum() > 0 for bank in banks)  # the adapters did train


def test_single_shared_lora_is_one_adapter_for_every_sample(model):
    _randomise_b(attach_lora(model, num_adapters=1))
    context = make_context()
    shared = model(context, Modulation(adapter_index=torch.zeros(3, dtype=torch.long)))
    assert not torch.allclose(shared, model(context), atol=1e-3)


def test_out_of_range_indices_are_refused(model):
    attach_lora(model, num_adapters=2)
    with pytest.raises(ValueError, match=r"adapter_index must be in -1..1, got values in 0..2"):
        model(make_context(), Modulation(adapter_index=torch.tensor([0, 2, 1])))


def test_attaching_twice_or_to_an_unknown_target_is_refused(model):
    with pytest.raises(ValueError, match=r"targets must be a non-empty subset of \('query'"):
        attach_lora(model, num_adapters=1, targets=("key",))
    attach_lora(model, num_adapters=1)
    with pytest.raises(ValueError, match="block 0 already has adapters"):
        attach_lora(model, num_adapters=1)
