"""What each offline agent trains, and what it leaves alone."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrained.conftest import random_episode, write_task

from memrl.agents.l2m.methods import METHODS, make_method
from memrl.agents.l2m.offline_config import AGENTS
from memrl.agents.l2m.offline_trainer import OfflineTrainer
from memrl.agents.pretrained.checkpoint import load_model
from memrl.agents.pretrained.dataset import ContextSampler, load_pretraining_data

from .conftest import PRETRAINING_TASK, STREAM, offline_config

FROZEN = ("lora", "l2p", "l2m", "l2m-oracle")
"""Agents that keep the pretrained weights frozen."""


def _train(tmp_path: Path, data: Path, model: Path, **changes: object) -> OfflineTrainer:
    agent = str(changes.get("agent", "ft"))
    trainer = OfflineTrainer(offline_config(data, model, **changes), tmp_path / agent,
                             progress=False)  # fmt: skip
    trainer.train()
    return trainer


def _base_weights(trainer: OfflineTrainer) -> dict[str, torch.Tensor]:
    return {
        name: tensor
        for name, tensor in trainer.model.state_dict().items()
        if ".adapters." not in name
    }


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_every_agent_has_a_class_and_the_registry_follows_the_configs_order():
    assert tuple(METHODS) == AGENTS
    assert all(METHODS[name].name == name for name in AGENTS)


@pytest.mark.parametrize("agent", AGENTS)
def test_frozen_agents_leave_the_pretrained_weights_bit_identical(
    tmp_path, offline_data, pretrained_model, agent
):
    pretrained, _ = load_model(pretrained_model)
    trainer = _train(tmp_path, offline_data, pretrained_model, agent=agent)
    after = _base_weights(trainer)
    changed = [name for name, tensor in pretrained.state_dict().items()
               if not torch.equal(tensor, after[name])]  # fmt: skip
    if agent in FROZEN:
        assert changed == []
        trained = [n for n, _ in trainer.method.trainable_parameters()]
        assert trained and all(".adapters." in n or n.startswith("pool.") for n in trained)
    else:  # full fine-tuning moves (nearly) every weight
        assert len(changed) > 0.9 * len(after)


@pytest.mark.parametrize("agent", ["l2", "ewc"])
def test_the_penalty_keeps_the_second_task_near_the_first_tasks_weights(
    tmp_path, offline_data, pretrained_model, agent
):
    strong = {"l2_coef": 30.0, "ewc_coef": 1e5}
    penalised = _train(tmp_path, offline_data, pretrained_model, agent=agent, **strong,
                       updates_per_task=20)  # fmt: skip
    free = _train(tmp_path, offline_data, pretrained_model, agent="ft", updates_per_task=20)
    # Both are full fine-tuning until the first task ends (the penalty starts with the second),
    # so the penalised agent's anchors are the weights both had after the first task.
    anchors = penalised.method.anchors
    assert anchors is not None

    def moved(trainer: OfflineTrainer) -> float:
        weights = list(trainer.model.base_parameters())
        return float(
            sum(float((w.detach() - a).pow(2).sum()) for w, a in zip(weights, anchors, strict=True))
        )

    assert moved(penalised) < 0.5 * moved(free)
    penalties = [float(r["losses/penalty"]) for r in _rows(tmp_path / agent)
                 if r["losses/penalty"]]  # fmt: skip
    assert len(penalties) == 20 and max(penalties) > 0  # logged during the second task only


def test_ewc_importance_is_the_squared_gradient_of_the_task_and_accumulates(
    tmp_path, offline_data, pretrained_model
):
    trainer = _train(tmp_path, offline_data, pretrained_model, agent="ewc", ewc_fisher_batches=3)
    importance = trainer.method.importance
    assert all((w >= 0).all() for w in importance)
    assert sum(float(w.sum()) for w in importance) > 0
    l2 = _train(tmp_path, offline_data, pretrained_model, agent="l2")
    assert all(torch.equal(w, torch.full_like(w, 2.0)) for w in l2.method.importance)  # 2 tasks


def test_the_oracle_trains_entry_t_on_task_t_and_plays_untrained_tasks_unmodulated(
    tmp_path, offline_data, pretrained_model
):
    trainer = _train(tmp_path, offline_data, pretrained_model, agent="l2m-oracle")
    rows = _rows(tmp_path / "l2m-oracle")
    for row in rows:
        if row["charts/task"]:
            assert float(row["charts/top_entry"]) == float(row["charts/task"])
            assert float(row["charts/top_entry_share"]) == 1.0
    assert {float(r["charts/task"]) for r in rows if r["charts/task"]} == {0.0, 1.0}
    query = torch.randn(3, trainer.model.config.embed_dim)
    trainer.method.train(False)
    for task_id in (0, 1):
        modulate = trainer.method.evaluation_modulation(task_id)
        assert modulate is not None
        assert modulate(query).adapter_index.tolist() == [task_id] * 3
    assert trainer.method.evaluation_modulation(None) is None


@pytest.mark.parametrize("count_penalty", [True, False])
def test_the_usage_penalty_steers_a_second_task_to_unused_entries(
    tmp_path, pretrained_model, count_penalty
):
    # Both tasks have the same data, so their queries are the same: only the usage penalty can
    # make the second task choose other entries than the first.
    episodes = [random_episode(np.random.default_rng(0), 12, 39, 4) for _ in range(3)]
    for task in STREAM:
        write_task(tmp_path / "twins", task, "metaworld", episodes)
    _train(tmp_path, tmp_path / "twins", pretrained_model, agent="l2m", num_identity_keys=0,
           pretrain_eval_tasks="", count_penalty=count_penalty, updates_per_task=8)  # fmt: skip
    entries: dict[int, set[int]] = {0: set(), 1: set()}
    for row in _rows(tmp_path / "l2m"):
        if row["charts/task"]:
            entries[int(float(row["charts/task"]))].add(int(float(row["charts/top_entry"])))
    if count_penalty:
        assert entries[0].isdisjoint(entries[1])
    else:
        assert entries[0] & entries[1]


@pytest.mark.parametrize("agent", ["l2m", "l2p"])
def test_pool_keys_train_at_their_own_learning_rate_and_nothing_twice(
    tmp_path, offline_data, pretrained_model, agent
):
    config = offline_config(offline_data, pretrained_model, agent=agent, learning_rate=1e-3,
                            key_learning_rate=5e-2)  # fmt: skip
    trainer = OfflineTrainer(config, tmp_path / "run", progress=False)
    trainer._open(trainer.segments[0])
    groups = trainer.optimizer.param_groups
    keys = [g for g in groups if any(p is trainer.method.pool.keys for p in g["params"])]
    assert len(keys) == 1 and keys[0]["lr"] == pytest.approx(50 * groups[0]["lr"])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    trainer.lock.release()


def test_identity_keys_learn_the_pretraining_queries_which_then_run_the_frozen_model(
    tmp_path, offline_data, pretrained_model
):
    config = offline_config(offline_data, pretrained_model, agent="l2m", num_identity_keys=10,
                            identity_key_updates=100, key_learning_rate=0.1)  # fmt: skip
    method = make_method(config, load_model(pretrained_model)[0])
    model, pool = method.model, method.pool
    before = pool.keys.detach().clone()
    data = load_pretraining_data([offline_data], [PRETRAINING_TASK])
    method.prepare(ContextSampler(data, model.config.context_steps, seed=0), progress=False)
    after = pool.keys.detach()
    assert torch.equal(after[: config.pool_size], before[: config.pool_size])  # modulators kept
    assert not torch.equal(after[config.pool_size :], before[config.pool_size :])
    assert pool.usage[config.pool_size :].min() > 0  # the usage penalty spread the data
    context = ContextSampler(data, model.config.context_steps, seed=1).sample(64).to_context()
    method.train(False)
    with torch.no_grad():
        query = model.pool_query(model.embed(context))
        modulate = method.evaluation_modulation(None)
        assert modulate is not None
        unmodulated = float((modulate(query).adapter_index == -1).float().mean())
    assert unmodulated > 0.9
