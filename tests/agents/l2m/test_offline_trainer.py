"""The offline fine-tuning loop: its evaluation log, bit-exact resumes, damaged checkpoints."""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from damage import DAMAGE
from pretrained.conftest import random_episode, write_task

from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.agents.l2m.offline_trainer import OfflineTrainer
from memrl.agents.pretrained.checkpoint import load_model, save_model
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer
from memrl.agents.run_lock import RunInUseError
from memrl.eval.continual import evaluation_history

from .conftest import HELD_OUT_TASK, OFFLINE_MODEL, PRETRAINING_TASK, STREAM, offline_config


def _stop_at(trainer: OfflineTrainer, call: int) -> None:
    """Make the trainer's ``call``-th update raise KeyboardInterrupt, as a kill would stop it."""
    update = trainer._update
    calls = {"n": 0}

    def interrupted(segment):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return update(segment)

    trainer._update = interrupted  # type: ignore[method-assign]


def _losses(run_dir: Path) -> list[tuple[str, ...]]:
    """Every logged row but the update rate (a timing)."""
    with (run_dir / "metrics.csv").open() as f:
        return [tuple(v for k, v in row.items() if k != "charts/updates_per_s")
                for row in csv.DictReader(f)]  # fmt: skip


def _assert_same_state(a: OfflineTrainer, b: OfflineTrainer) -> None:
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    state_a, state_b = a.method.state_dict(), b.method.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        x, y = state_a[key], state_b[key]
        if isinstance(x, dict):  # a module's state
            assert all(torch.equal(x[k], y[k]) for k in x), key
        elif x is not None:  # anchors, importances
            assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True)), key
    assert a.update == b.update
    assert a.evaluations.to_dict() == b.evaluations.to_dict()


@pytest.mark.parametrize(
    ("agent", "eval_episodes", "kill_at", "resumed_at"),
    [("l2m", 1, 11, 8), ("ewc", 0, 8, 6)],
    ids=["l2m mid-task, evaluated", "ewc at a task's start"],
)
def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(
    tmp_path, offline_data, pretrained_model, agent, eval_episodes, kill_at, resumed_at
):
    config = partial(offline_config, offline_data, pretrained_model, agent=agent,
                     eval_episodes=eval_episodes)  # fmt: skip
    whole = OfflineTrainer(config(), tmp_path / "whole", progress=False)
    whole.train()
    killed = OfflineTrainer(config(), tmp_path / "part", progress=False)
    _stop_at(killed, kill_at)  # checkpoints at 0 (before the stream), 4, 6 (task end), 8, 12
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    resumed = OfflineTrainer(config(), tmp_path / "part", resume=True, progress=False)
    assert resumed.update == resumed_at
    resumed.train()
    _assert_same_state(whole, resumed)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "whole")


def test_fine_tuning_keeps_the_pretrained_models_state_statistics(
    tmp_path, offline_data, pretrained_model
):
    pretrained, _ = load_model(pretrained_model)
    assert not torch.equal(pretrained.state_std, torch.ones_like(pretrained.state_std))
    trainer = OfflineTrainer(
        offline_config(offline_data, pretrained_model, agent="ft"), tmp_path / "run",
        progress=False,
    )  # fmt: skip
    trainer.train()
    assert torch.equal(trainer.model.state_mean, pretrained.state_mean)
    assert torch.equal(trainer.model.state_std, pretrained.state_std)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
    tmp_path, offline_data, pretrained_model, damage
):
    config = partial(offline_config, offline_data, pretrained_model, agent="l2m")
    whole = OfflineTrainer(config(), tmp_path / "whole", progress=False)
    whole.train()
    killed = OfflineTrainer(config(), tmp_path / "part", progress=False)
    _stop_at(killed, 10)  # checkpoints at 6 (previous.pt) and 8 (latest.pt)
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    DAMAGE[damage](tmp_path / "part" / "checkpoints" / "latest.pt")
    with pytest.warns(UserWarning, match="damaged checkpoint .*latest.pt.* using the older"):
        resumed = OfflineTrainer(config(), tmp_path / "part", resume=True, progress=False)
    assert resumed.update == 6
    resumed.train()
    _assert_same_state(whole, resumed)


def test_the_evaluation_log_is_continual_sacs_with_the_frozen_model_first(
    tmp_path, offline_data, pretrained_model
):
    config = offline_config(offline_data, pretrained_model, agent="lora", eval_episodes=1,
                            evaluations_per_task=2, held_out=HELD_OUT_TASK)  # fmt: skip
    OfflineTrainer(config, tmp_path / "run", progress=False).train()
    log = EvaluationLog.load(tmp_path / "run")
    assert log.task_names == (*STREAM, HELD_OUT_TASK, PRETRAINING_TASK)
    assert (log.held_out, log.pretraining, log.trained_names) == (
        (HELD_OUT_TASK, PRETRAINING_TASK), (PRETRAINING_TASK,), STREAM
    )  # fmt: skip
    tables = json.loads((tmp_path / "run" / "tasks.json").read_text())
    assert [t["name"] for t in tables["evaluated"]] == list(log.task_names)
    assert log.steps == [3, 6, 9, 12] and log.steps_per_task == 6 and log.schedule == (0, 1)
    assert log.initial_success is not None and log.method == "lora" and log.deterministic
    # Continual World's metrics read the stream's tasks.
    assert evaluation_history(log).success.shape == (4, 2)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    retention = [int(r["global_step"]) for r in rows if r.get(f"retention/{STREAM[0]}")]
    assert retention == [6, 12]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["offline"] is True


def test_multitask_trains_every_task_at_once_for_the_whole_budget(
    tmp_path, offline_data, pretrained_model
):
    trainer = OfflineTrainer(offline_config(offline_data, pretrained_model, agent="multitask"),
                             tmp_path / "run", progress=False)  # fmt: skip
    assert [(s.task_id, s.start, s.updates) for s in trainer.segments] == [(None, 0, 12)]
    trainer.train()
    with (tmp_path / "run" / "metrics.csv").open() as f:
        tasks = {r["charts/task"] for r in csv.DictReader(f) if r["charts/task"]}
    assert tasks == {"-1.0"}


def test_a_run_directory_takes_one_run_and_a_resume_keeps_its_settings_data_and_model(
    tmp_path, offline_data, pretrained_model
):
    run = tmp_path / "run"
    config = partial(offline_config, offline_data, pretrained_model)
    OfflineTrainer(config(), run, progress=False).train()
    with pytest.raises(FileExistsError, match="already holds .*resume"):
        OfflineTrainer(config(), run, progress=False)
    with pytest.raises(ValueError, match=r"its config differs in \['learning_rate'\]"):
        OfflineTrainer(config(learning_rate=0.1), run, resume=True)
    other = tmp_path / "other"
    rng = np.random.default_rng(1)
    for task in (*STREAM, PRETRAINING_TASK):
        write_task(other, task, "metaworld", [random_episode(rng, 5, 39, 4)])
    with pytest.raises(ValueError, match="the data differ from the run's"):
        OfflineTrainer(offline_config(other, pretrained_model), run, resume=True)
    torch.manual_seed(1)  # another model of the same architecture and task table
    model = MultiDomainDecisionTransformer(OFFLINE_MODEL)
    table = load_model(pretrained_model)[1]
    other_model = save_model(tmp_path / "other.safetensors", model, extra_metadata=table)
    with pytest.raises(ValueError, match="is not the model the run started from"):
        OfflineTrainer(config(pretrained=str(other_model)), run, resume=True)
    holder = OfflineTrainer(config(log_every=2), run, resume=True, progress=False)
    with pytest.raises(RunInUseError, match="is being trained by pid"):
        OfflineTrainer(config(), run, resume=True)
    holder.train()


def test_a_missing_model_or_task_is_named_before_anything_is_written(
    tmp_path, offline_data, pretrained_model
):
    missing = tmp_path / "assets" / "mddt.safetensors"
    with pytest.raises(FileNotFoundError, match=r"mddt.safetensors: no such file. Pretrain a mod"):
        OfflineTrainer(offline_config(offline_data, missing), tmp_path / "run")
    with pytest.raises(ValueError, match=r"\['door-open-v3'\] are not tasks the model"):
        OfflineTrainer(
            offline_config(offline_data, pretrained_model, pretrain_eval_tasks="door-open-v3"),
            tmp_path / "run",
        )
    with pytest.raises(ValueError, match=r"--held-out: \['window-open-v3'\] have no data"):
        OfflineTrainer(
            offline_config(offline_data, pretrained_model, held_out="window-open-v3"),
            tmp_path / "run",
            name=lambda f: "--" + f.replace("_", "-"),
        )
    with pytest.raises(ValueError, match="faucet-close-v3"):  # a stream task without data
        OfflineTrainer(
            offline_config(offline_data, pretrained_model, tasks="hammer-v3,faucet-close-v3"),
            tmp_path / "run",
        )
    assert not (tmp_path / "run").exists()


def test_l2m_without_pretraining_data_says_what_to_add(tmp_path, pretrained_model):
    rng = np.random.default_rng(0)
    for task in STREAM:
        write_task(tmp_path / "stream", task, "metaworld", [random_episode(rng, 5, 39, 4)],
                   split="finetune")  # fmt: skip
    config = offline_config(tmp_path / "stream", pretrained_model, agent="l2m")
    with pytest.raises(ValueError, match="l2m trains its identity keys on the pretraining data"):
        OfflineTrainer(config, tmp_path / "run")
    OfflineTrainer(
        offline_config(tmp_path / "stream", pretrained_model, agent="l2m", num_identity_keys=0),
        tmp_path / "run",
        progress=False,
    ).train()
