"""The pretraining loop: it learns, it resumes bit for bit, it survives a damaged checkpoint."""

from __future__ import annotations

import csv
import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from damage import DAMAGE

from memrl.agents.pretrained.checkpoint import load_model
from memrl.agents.pretrained.dataset import ContextSampler, load_pretraining_data
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.pretrained.tasks import tasks_from_json
from memrl.agents.pretrained.training import (
    MODEL_FILE,
    PretrainTrainer,
    gradient_step,
    make_optimizer,
    warmup_cosine,
)
from memrl.agents.run_lock import RunInUseError

from .conftest import episode, random_episode, tiny_config, write_task


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tasks of different widths, a few short episodes each (read-only)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    write_task(
        root, "cheetah-run", "dm_control", [random_episode(rng, 12, 17, 6) for _ in range(3)]
    )
    write_task(root, "reach-v3", "metaworld", [random_episode(rng, 9, 39, 4) for _ in range(2)])
    return root


def _stop_at(trainer: PretrainTrainer, call: int) -> None:
    """Make the trainer's ``call``-th batch raise KeyboardInterrupt, as a kill would stop it."""
    sample = trainer.sampler.sample
    calls = {"n": 0}

    def interrupted(batch_size: int):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return sample(batch_size)

    trainer.sampler.sample = interrupted  # type: ignore[method-assign]


def _losses(run_dir: Path) -> list[tuple[int, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [(int(r["global_step"]), r["losses/action_loss"]) for r in csv.DictReader(f)]


def _assert_same_state(a: PretrainTrainer, b: PretrainTrainer) -> None:
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    state_a, state_b = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    for key, entry in state_a["state"].items():
        for field, value in entry.items():
            assert torch.equal(value, state_b["state"][key][field]), (key, field)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.update == b.update


@pytest.mark.parametrize("head", ["discrete", "regression"])
def test_the_loss_falls_on_a_tiny_overfit_case(tmp_path, head):
    rng = np.random.default_rng(0)
    episodes = [
        episode(rng.normal(size=(9, 5)), rng.uniform(-1, 1, (8, 2)), rng.uniform(0, 1, 8))
        for _ in range(2)
    ]
    write_task(tmp_path / "data", "cheetah-run", "dm_control", episodes)
    config = tiny_config(
        [tmp_path / "data"], steps=150, batch_size=32, warmup_steps=0, learning_rate=3e-3,
        log_every=10, checkpoint_every=1000, action_head=head,
    )  # fmt: skip
    result = PretrainTrainer(config, tmp_path / "run", progress=False).train()
    losses = [float(loss) for _, loss in _losses(tmp_path / "run")]
    if head == "discrete":
        assert losses[0] > 3.5  # about ln(64): nothing learnt yet
        assert result.metrics["losses/action_accuracy"] > 0.5
    else:
        assert "losses/action_accuracy" not in result.metrics
    assert losses[-1] < 0.5 * losses[0]


def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path, data_dir):
    config = partial(tiny_config, [data_dir], steps=8, dropout=0.1)  # dropout: torch's RNG counts
    whole = PretrainTrainer(config(), tmp_path / "whole", progress=False)
    whole.train()
    killed = PretrainTrainer(config(), tmp_path / "part", progress=False)
    _stop_at(killed, 6)  # after updates 1-5; the last checkpoint was at update 3
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    resumed = PretrainTrainer(config(), tmp_path / "part", resume=True, progress=False)
    assert resumed.update == 3
    resumed.train()
    _assert_same_state(whole, resumed)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "whole")
    assert [step for step, _ in _losses(tmp_path / "whole")] == list(range(1, 9))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, data_dir, damage):
    config = partial(tiny_config, [data_dir], steps=8)
    whole = PretrainTrainer(config(), tmp_path / "whole", progress=False)
    whole.train()
    killed = PretrainTrainer(config(), tmp_path / "part", progress=False)
    _stop_at(killed, 8)  # checkpoints at updates 3 (previous.pt) and 6 (latest.pt)
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    DAMAGE[damage](tmp_path / "part" / "checkpoints" / "latest.pt")
    with pytest.warns(UserWarning, match="damaged checkpoint .*latest.pt.* using the older"):
        resumed = PretrainTrainer(config(), tmp_path / "part", resume=True, progress=False)
    assert resumed.update == 3
    resumed.train()
    _assert_same_state(whole, resumed)


def test_a_run_directory_takes_one_run_and_a_resume_keeps_its_settings_and_data(tmp_path, data_dir):
    run = tmp_path / "run"
    PretrainTrainer(tiny_config([data_dir]), run, progress=False).train()
    with pytest.raises(FileExistsError, match="already holds .*resume"):
        PretrainTrainer(tiny_config([data_dir]), run, progress=False)
    with pytest.raises(ValueError, match=r"its config differs in \['learning_rate'\]"):
        PretrainTrainer(tiny_config([data_dir], learning_rate=0.1), run, resume=True)
    more = tmp_path / "more"
    write_task(
        more, "walker-run", "dm_control", [random_episode(np.random.default_rng(1), 5, 24, 6)]
    )
    with pytest.raises(ValueError, match="the data differ from the run's"):
        PretrainTrainer(tiny_config([data_dir, more]), run, resume=True, progress=False)
    holder = PretrainTrainer(tiny_config([data_dir], log_every=2), run, resume=True, progress=False)
    with pytest.raises(RunInUseError, match="is being trained by pid"):
        PretrainTrainer(tiny_config([data_dir]), run, resume=True)
    holder.train()  # a finished run re-exports its model; the lock is released after


def test_a_task_memrl_cannot_play_is_refused_before_training_when_evaluating(tmp_path):
    write_task(
        tmp_path / "data",
        "my-task",
        "dm_control",
        [random_episode(np.random.default_rng(0), 5, 3, 1)],
    )
    with pytest.raises(ValueError, match=r"tasks \['my-task'\] are not in memrl's task catalogue"):
        PretrainTrainer(tiny_config([tmp_path / "data"], eval_episodes=1), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    PretrainTrainer(tiny_config([tmp_path / "data"]), tmp_path / "run", progress=False).train()


def test_the_exported_model_carries_its_weights_and_task_table(tmp_path, data_dir):
    trainer = PretrainTrainer(tiny_config([data_dir]), tmp_path / "run", progress=False)
    result = trainer.train()
    assert result.model_path == tmp_path / "run" / MODEL_FILE
    model, metadata = load_model(result.model_path)
    for (name, x), (_, y) in zip(
        model.state_dict().items(), trainer.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert tasks_from_json(metadata["tasks"]) == trainer.data.tasks
    assert metadata["updates"] == "6"
    assert json.loads(metadata["pretrain_config"])["steps"] == 6
    written = json.loads((tmp_path / "run" / "tasks.json").read_text())
    assert [t["name"] for t in written] == ["cheetah-run", "reach-v3"]


def test_warm_up_then_cosine_is_the_learning_rate_every_update_uses(data_dir):
    assert warmup_cosine(0, 4, 20) == pytest.approx(0.25)
    assert warmup_cosine(3, 4, 20) == pytest.approx(1.0)
    assert warmup_cosine(12, 4, 20) == pytest.approx(0.5)
    assert warmup_cosine(20, 4, 20) == pytest.approx(0.0)
    torch.manual_seed(0)
    model = MultiDomainDecisionTransformer(tiny_config([data_dir]).model_config())
    optimizer = make_optimizer(model.named_parameters(), 1e-2, 0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(warmup_cosine, warmup_steps=4, total_steps=20)
    )
    data = load_pretraining_data([data_dir])
    sampler = ContextSampler(data, 3, seed=0)
    for update in range(6):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * warmup_cosine(update, 4, 20))
        gradient_step(model, sampler.sample(4).to_context(), optimizer, scheduler, 1.0)


def test_weight_decay_spares_biases_and_layer_norms(data_dir):
    model = MultiDomainDecisionTransformer(tiny_config([data_dir]).model_config())
    decay, no_decay = make_optimizer(model.named_parameters(), 1e-3, 0.05).param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == {
        n for n, p in model.named_parameters() if n.endswith("bias") or "norm" in n
    }
    assert all(p.dim() == 2 for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_gradients_are_clipped_to_the_global_norm(data_dir):
    torch.manual_seed(0)
    model = MultiDomainDecisionTransformer(tiny_config([data_dir]).model_config())
    optimizer = make_optimizer(model.named_parameters(), 1e-3, 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda update: 1.0)
    context = ContextSampler(load_pretraining_data([data_dir]), 3, seed=0).sample(16).to_context()
    stats = gradient_step(model, context, optimizer, scheduler, grad_clip=1e-3)
    after = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
    assert float(stats.grad_norm) > 1e-2  # the norm before clipping
    assert after == pytest.approx(1e-3, rel=1e-3)
