from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from memrl.agents.l2m import ModulatorPool, PromptPool, attach_lora
from memrl.agents.l2m.key_pool import USAGE_EPSILON
from memrl.agents.pretrained import Modulation

from .conftest import TINY, make_context, replace

KEY_DIM = 8


def _task_queries(direction: torch.Tensor, seed: int, batch: int = 32) -> torch.Tensor:
    """Queries of one synthetic task: a tight cluster around ``3 * direction``."""
    noise = torch.randn(batch, KEY_DIM, generator=torch.Generator().manual_seed(seed))
    return 3.0 * direction + 0.05 * noise


def _train_task(pool: ModulatorPool, queries: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """Fine-tune the keys on one task with the pull loss; the entries chosen on the first step."""
    pool.train()
    pool.start_task()
    optimizer = torch.optim.Adam(pool.parameters(), lr=0.05)
    first = None
    for _ in range(steps):
        selection = pool(queries)
        first = selection.entry if first is None else first
        optimizer.zero_grad()
        selection.pull_loss.backward()
        optimizer.step()
    return first


def _unit(index: int) -> torch.Tensor:
    return torch.eye(KEY_DIM)[index]


def test_same_task_same_entry_and_different_tasks_different_entries_after_pull_training():
    """Both tasks first match key 0 (halfway between them); after pull-loss training (and the
    count penalty moving task B off task A's entry) each task keeps an entry of its own."""
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=6)
    with torch.no_grad():
        pool.keys.copy_(torch.eye(KEY_DIM)[[0, 2, 3, 4, 5, 6]])
        pool.keys[0] = _unit(0) + _unit(1)
    task_a, task_b = _unit(0), _unit(1)
    pool.eval()
    assert set(pool(_task_queries(task_a, 1)).entry.tolist()) == {0}
    assert set(pool(_task_queries(task_b, 2)).entry.tolist()) == {0}
    _train_task(pool, _task_queries(task_a, 1))
    _train_task(pool, _task_queries(task_b, 2))
    pool.eval()
    entries_a = pool(_task_queries(task_a, 3)).entry  # fresh queries of the same tasks
    entries_b = pool(_task_queries(task_b, 4)).entry
    assert len(set(entries_a.tolist())) == 1 and len(set(entries_b.tolist())) == 1
    assert entries_a[0] != entries_b[0]


@pytest.mark.parametrize("count_penalty", [True, False])
def test_count_penalty_moves_a_similar_new_task_to_an_unused_entry(count_penalty):
    torch.manual_seed(0)
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=30, count_penalty=count_penalty)
    task_a = functional.normalize(
        torch.randn(KEY_DIM, generator=torch.Generator().manual_seed(5)), dim=0
    )
    task_b = functional.normalize(task_a + 0.4 * _unit(0), dim=0)  # cos(a, b) about 0.9
    first_a = _train_task(pool, _task_queries(task_a, 1))
    (entry_a,) = set(first_a.tolist())
    first_b = _train_task(pool, _task_queries(task_b, 2))
    if count_penalty:
        assert entry_a not in first_b.tolist()
    else:
        assert set(first_b.tolist()) == {entry_a}


def test_usage_is_a_running_mean_frozen_into_l2m_inverse_weights_at_task_start():
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=4, count_penalty=True).train()
    with torch.no_grad():
        pool.keys.copy_(torch.eye(KEY_DIM)[:4])
    pool(torch.stack([_unit(0), _unit(0), _unit(1), _unit(0)]))  # histogram 3/4, 1/4, 0, 0
    pool(torch.stack([_unit(2), _unit(2), _unit(2), _unit(2)]))  # histogram 0, 0, 1, 0
    assert torch.allclose(pool.usage, torch.tensor([3 / 8, 1 / 8, 1 / 2, 0.0]))
    assert torch.allclose(pool.penalty_weights, torch.full((4,), 0.25))  # not yet frozen
    pool.start_task()
    inverse = 1 / (torch.tensor([3 / 8, 1 / 8, 1 / 2, 0.0]) + USAGE_EPSILON)
    assert torch.allclose(pool.penalty_weights, inverse / inverse.sum())


def test_evaluation_ranks_by_plain_cosine_and_counts_nothing():
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=3)
    with torch.no_grad():
        pool.keys.copy_(torch.eye(KEY_DIM)[:3])
        pool.penalty_weights.copy_(torch.tensor([1e-9, 0.5, 0.5]))  # entry 0 heavily penalised
    pool.eval()
    assert pool(_unit(0)[None]).entry.tolist() == [0]
    assert pool.usage.sum() == 0 and pool.updates == 0
    pool.train()
    assert pool(_unit(0)[None]).entry.tolist() != [0]


def test_penalised_score_shifts_cosine_to_zero_one_before_weighting():
    """L2M ranks by ((cos + 1) / 2) * w: an unused entry pointing away from the query (cos -0.6)
    still beats a well-used one pointing at it (cos 0.8) when its weight is high enough."""
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=2).train()
    with torch.no_grad():
        pool.keys.copy_(torch.stack([-0.6 * _unit(0) + 0.8 * _unit(1), _unit(0) + 0.75 * _unit(1)]))
        pool.penalty_weights.copy_(torch.tensor([0.9, 0.1]))
    selection = pool(_unit(0)[None])
    assert torch.allclose(selection.cosine, torch.tensor([[-0.6, 0.8]]))
    assert selection.entry.tolist() == [0]  # 0.2 * 0.9 = 0.18 > 0.9 * 0.1 = 0.09


def test_pull_loss_is_minus_half_the_mean_cosine_to_the_selected_key():
    torch.manual_seed(0)
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=5).eval()
    query = torch.randn(6, KEY_DIM)
    selection = pool(query)
    cosine = functional.cosine_similarity(query, pool.keys[selection.entry], dim=-1)
    assert torch.allclose(selection.pull_loss, -0.5 * cosine.mean())
    assert torch.equal(selection.entry, selection.cosine.argmax(dim=1))


def test_oracle_picks_the_entry_by_task_id():
    torch.manual_seed(0)
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=5, oracle=True).train()
    pool.start_task()
    query = torch.randn(3, KEY_DIM)
    assert pool(query, task_id=3).entry.tolist() == [3, 3, 3]
    assert pool(query, task_id=torch.tensor([0, 4, 2])).adapter_index.tolist() == [0, 4, 2]
    with pytest.raises(ValueError, match="an oracle pool needs task_id"):
        pool(query)
    with pytest.raises(ValueError, match=r"task_id must be in 0..4 .* got values in 5..5"):
        pool(query, task_id=5)


def test_identity_keys_mean_no_modulation():
    pool = ModulatorPool(key_dim=KEY_DIM, num_entries=3, num_identity_keys=2)
    with torch.no_grad():
        pool.keys.copy_(torch.eye(KEY_DIM)[:5])
    near_identity = _unit(3)[None] + 0.1 * _unit(0)
    pool.eval()  # evaluation matches all keys
    selection = pool(near_identity)
    assert selection.entry.tolist() == [3] and selection.adapter_index.tolist() == [-1]
    pool.train()  # fine-tuning a task matches the modulator entries only
    assert pool(near_identity).adapter_index.tolist() == [0]
    assert pool(_unit(0)[None], keys="identity").adapter_index.tolist() == [-1]
    with pytest.raises(
        ValueError, match=r"keys must be one of \('modulators', 'identity', 'all'\)"
    ):
        pool(near_identity, keys="pretrain")
    with pytest.raises(ValueError, match="keys='identity' needs num_identity_keys >= 1"):
        ModulatorPool(key_dim=KEY_DIM, num_entries=3)(near_identity, keys="identity")


def test_pool_query_is_the_mean_embedded_state_token_untouched_by_adapters(model):
    context = make_context()
    embedded = model.embed(context)
    expected = embedded.tokens[:, 1::3].mean(dim=1)
    assert torch.equal(model.pool_query(embedded), expected)
    banks = attach_lora(model, num_adapters=2)
    with torch.no_grad():
        for bank in banks:
            bank.lora_b.normal_()
    assert torch.equal(model.pool_query(model.embed(context)), expected)


def test_a_pool_selection_routes_each_sample_to_its_adapters(model):
    context = make_context()
    banks = attach_lora(model, num_adapters=4)
    with torch.no_grad():
        for bank in banks:
            bank.lora_b.normal_()
    pool = ModulatorPool(key_dim=TINY.embed_dim, num_entries=4).eval()
    embedded = model.embed(context)
    selection = pool(model.pool_query(embedded))
    routed = model.run(embedded, selection.modulation)
    for sample in range(3):
        index = selection.adapter_index[sample].repeat(3)
        assert torch.allclose(routed[sample], model(context, Modulation(index))[sample], atol=1e-5)


# -- L2P ---------------------------------------------------------------------------------------


def test_prompt_pool_selects_top_k_and_concatenates_their_prefixes():
    torch.manual_seed(0)
    pool = PromptPool(num_layers=2, embed_dim=16, pool_size=10, prompt_length=3, top_k=2).eval()
    query = torch.randn(4, 16)
    selection = pool(query)
    cosine = functional.normalize(query, dim=-1) @ functional.normalize(pool.keys, dim=-1).T
    assert torch.equal(selection.entries, cosine.topk(2, dim=1).indices)
    prefix = selection.modulation.prefix
    assert len(prefix) == 2 and prefix[0][0].shape == (4, 6, 16)
    first, second = selection.entries[1]
    assert torch.equal(
        prefix[1][0][1], torch.cat((pool.prompts[first, 1, 0], pool.prompts[second, 1, 0]))
    )
    assert torch.equal(
        prefix[1][1][1], torch.cat((pool.prompts[first, 1, 1], pool.prompts[second, 1, 1]))
    )
    expected_pull = -0.5 * cosine.topk(2, dim=1).values.sum() / 4
    assert torch.allclose(selection.pull_loss, expected_pull)


def test_prefix_prompts_change_the_model_but_keep_it_causal(model):
    pool = PromptPool(num_layers=TINY.num_layers, embed_dim=TINY.embed_dim, pool_size=6, top_k=2)
    pool.eval()
    context = make_context()
    modulation = pool(model.pool_query(model.embed(context))).modulation
    prompted = model(context, modulation)
    assert not torch.allclose(prompted, model(context), atol=1e-3)
    states = context.states.clone()
    states[:, 3] += 3.0
    later = model(replace(context, states=states), modulation)
    assert torch.allclose(prompted[:, :3], later[:, :3], atol=1e-6)


def test_prompt_pool_refuses_top_k_beyond_the_pool():
    with pytest.raises(ValueError, match=r"top_k must be 1..4 \(pool_size\), got 5"):
        PromptPool(num_layers=1, embed_dim=8, pool_size=4, top_k=5)
