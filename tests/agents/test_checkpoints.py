"""Checkpoints that survive damage: the store, and memory PPO resuming and loading through it."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from damage import DAMAGE, corrupt, tensorboard_steps, truncate
from test_ppo import _tiny

from memrl.agents import checkpoints
from memrl.agents.checkpoints import (
    CheckpointStore,
    DamagedFileError,
    NoIntactCheckpointError,
    atomic_write,
    verify_archive,
)
from memrl.agents.loading import load_agent
from memrl.agents.ppo import PPOTrainer, load_policy
from memrl.agents.run_log import RunLog

# -- the store -------------------------------------------------------------------------------


def test_save_keeps_the_previous_checkpoint_beside_the_latest(tmp_path):
    store = CheckpointStore(tmp_path)
    for step in (1, 2, 3):
        assert store.save({"step": step}) == tmp_path / "latest.pt"
    assert torch.load(tmp_path / "latest.pt")["step"] == 3
    assert torch.load(tmp_path / "previous.pt")["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "previous.pt"]


def test_a_save_that_fails_midway_leaves_both_checkpoints_as_they_were(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1})
    store.save({"step": 2})

    def killed(payload, path):
        path.write_bytes(b"PK\x03\x04 half of a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save({"step": 3})
    monkeypatch.undo()
    assert torch.load(tmp_path / "latest.pt")["step"] == 2
    assert torch.load(tmp_path / "previous.pt")["step"] == 1


def test_atomic_write_flushes_the_file_and_its_directory_to_disk(tmp_path, monkeypatch):
    synced: list[int] = []
    fsync = os.fsync

    def record(descriptor: int) -> None:
        synced.append(os.fstat(descriptor).st_ino)
        fsync(descriptor)

    monkeypatch.setattr(checkpoints.os, "fsync", record)
    path = atomic_write(tmp_path / "model.zip", lambda p: p.write_bytes(b"weights"))
    assert path.read_bytes() == b"weights" and not (tmp_path / "model.zip.tmp").exists()
    assert path.stat().st_ino in synced  # the file (renamed from its temporary)
    assert tmp_path.stat().st_ino in synced  # the directory entry of the rename


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_falls_back_to_previous_with_a_warning(tmp_path, damage):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1, "weights": torch.arange(4096.0)})
    store.save({"step": 2, "weights": torch.arange(4096.0) + 1})
    DAMAGE[damage](tmp_path / "latest.pt")
    latest, previous = tmp_path / "latest.pt", tmp_path / "previous.pt"
    with pytest.warns(UserWarning, match=f"damaged checkpoint {latest} .*using the older "
                      f"checkpoint {previous} instead"):  # fmt: skip
        path, payload = CheckpointStore(tmp_path).load(required=("step",))
    assert path == previous and payload["step"] == 1


def test_corrupted_bytes_are_named_by_the_member_they_hit(tmp_path):
    torch.save({"weights": torch.zeros(4096)}, tmp_path / "model.pt")
    corrupt(tmp_path / "model.pt")
    with pytest.raises(
        DamagedFileError, match=r"model.pt is damaged: corrupted bytes in its member"
    ):
        verify_archive(tmp_path / "model.pt")


def test_a_checkpoint_without_the_entries_asked_for_is_damaged(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1, "policy": {}})
    store.save({"step": 2})
    with pytest.warns(UserWarning, match=r"lacks the entries \['policy'\]"):
        _, payload = CheckpointStore(tmp_path).load(required=("step", "policy"))
    assert payload["step"] == 1


def test_no_intact_checkpoint_left_names_both_files_and_why(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1})
    store.save({"step": 2})
    truncate(tmp_path / "latest.pt")
    (tmp_path / "previous.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NoIntactCheckpointError) as error:
        CheckpointStore(tmp_path).load()
    assert str(error.value) == (
        f"no intact checkpoint left in {tmp_path}: latest.pt (truncated or not a zip archive: "
        "File is not a zip file), previous.pt (truncated or not a zip archive: File is not a "
        "zip file)"
    )
    (tmp_path / "previous.pt").unlink()
    with pytest.raises(
        NoIntactCheckpointError, match=r"latest.pt \(trunc.*\), previous.pt \(missing\)"
    ):
        CheckpointStore(tmp_path).load()


def test_after_a_fallback_the_next_save_keeps_the_good_previous(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save({"step": 1})
    store.save({"step": 2})
    truncate(tmp_path / "latest.pt")
    resumed = CheckpointStore(tmp_path)
    with pytest.warns(UserWarning, match="damaged checkpoint"):
        resumed.load()
    resumed.save({"step": 3})  # replaces the damaged latest; previous stays the step-1 one
    assert torch.load(tmp_path / "latest.pt")["step"] == 3
    assert torch.load(tmp_path / "previous.pt")["step"] == 1
    resumed.save({"step": 4})
    assert torch.load(tmp_path / "previous.pt")["step"] == 3


def test_a_store_that_loaded_nothing_drops_a_stale_previous_when_it_saves(tmp_path):
    CheckpointStore(tmp_path).save({"run": "old"})
    (tmp_path / "latest.pt").rename(tmp_path / "previous.pt")
    CheckpointStore(tmp_path).save({"run": "new"})  # a fresh run: nothing of the old one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


# -- memory PPO ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """An uninterrupted 3-update run (checkpoint every update, TensorBoard on) and its weights."""
    run_dir = tmp_path_factory.mktemp("ppo") / "run"
    trainer = PPOTrainer(_tiny(tensorboard=True), run_dir, progress=False)
    trainer.train()
    return run_dir, {k: v.clone() for k, v in trainer.policy.state_dict().items()}


@pytest.mark.parametrize("damage", DAMAGE)
def test_ppo_resumes_from_previous_when_latest_is_damaged_exactly(tmp_path, finished_run, damage):
    run_dir, weights = finished_run
    run = shutil.copytree(run_dir, tmp_path / "run")
    DAMAGE[damage](run / "checkpoints" / "latest.pt")
    with pytest.warns(UserWarning, match=f"damaged checkpoint {run / 'checkpoints' / 'latest.pt'}"):
        resumed = PPOTrainer(_tiny(tensorboard=True), run, resume=True, progress=False)
    assert resumed.update == 2  # previous.pt: the checkpoint after update 2
    resumed.train()
    for name, value in resumed.policy.state_dict().items():
        assert torch.equal(value, weights[name]), name
    # The update after the checkpoint is logged once, in the CSV and in TensorBoard.
    assert tensorboard_steps(run, "losses/value_loss") == [64, 128, 192]
    assert torch.load(run / "checkpoints" / "previous.pt", weights_only=False)["update"] == 2


def test_ppo_resumes_from_previous_when_killed_between_the_renames_of_a_save(
    tmp_path, finished_run
):
    run = shutil.copytree(finished_run[0], tmp_path / "run")
    (run / "checkpoints" / "latest.pt").unlink()  # moved to previous.pt; the new one not yet in
    with pytest.warns(UserWarning, match="latest.pt is missing .*using the older checkpoint"):
        resumed = PPOTrainer(_tiny(tensorboard=True), run, resume=True, progress=False)
    assert resumed.update == 2
    resumed.close()


def test_ppo_with_both_checkpoints_damaged_is_a_clear_error(tmp_path, finished_run):
    run = shutil.copytree(finished_run[0], tmp_path / "run")
    truncate(run / "checkpoints" / "latest.pt")
    corrupt(run / "checkpoints" / "previous.pt")
    message = r"no intact checkpoint left in .*checkpoints: latest.pt \(.+\), previous.pt \(.+\)"
    with pytest.raises(NoIntactCheckpointError, match=message):
        PPOTrainer(_tiny(tensorboard=True), run, resume=True, progress=False)
    with pytest.raises(NoIntactCheckpointError, match=message):
        load_policy(run)


def test_ppo_evaluation_loads_previous_when_latest_is_damaged(tmp_path, finished_run):
    run = shutil.copytree(finished_run[0], tmp_path / "run")
    previous = torch.load(run / "checkpoints" / "previous.pt", weights_only=False)["policy"]
    corrupt(run / "checkpoints" / "latest.pt")
    with pytest.warns(UserWarning, match="using the older checkpoint .*previous.pt"):
        policy, _ = load_policy(run)
    with pytest.warns(UserWarning, match="using the older checkpoint .*previous.pt"):
        agent, _ = load_agent(run)
    for loaded in (policy, agent):
        for name, value in loaded.state_dict().items():
            assert torch.equal(value, previous[name]), name


def test_ppo_resume_with_nothing_to_train_writes_no_event_file(tmp_path, finished_run):
    run = shutil.copytree(finished_run[0], tmp_path / "run")
    events = sorted((run / "tb").iterdir())
    resumed = PPOTrainer(_tiny(tensorboard=True), run, resume=True, progress=False)
    resumed.train()  # already at total_steps: nothing to do
    assert sorted((run / "tb").iterdir()) == events


def test_ppo_flushes_its_tensorboard_events_with_each_checkpoint(tmp_path, monkeypatch):
    flushed = []
    flush = RunLog.flush
    monkeypatch.setattr(RunLog, "flush", lambda log: (flushed.append(log.run_dir), flush(log)))
    trainer = PPOTrainer(_tiny(tensorboard=True), tmp_path, progress=False)
    trainer.save_checkpoint()  # a run killed now keeps in TensorBoard what it logged until now
    assert flushed == [tmp_path]
    trainer.close()
