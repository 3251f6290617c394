"""Continual SAC survives damaged checkpoints: fallback to previous.pt, buffer parts kept for it.

The module's run is stopped at step 450 (checkpoints at 150, 300, 450) and copied before it goes
on to the end of the stream uninterrupted; each test damages a copy and resumes it. After the
task switch at 300 the FIFO buffer is cleared, so ``latest.pt`` (450) refers to one new buffer
part and ``previous.pt`` (300) to the two parts of the first task, which must outlive the 450
checkpoint for the fallback to work.
"""

from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import pytest
import torch
from damage import DAMAGE, corrupt, tensorboard_steps, truncate

from memrl.agents.checkpoints import NoIntactCheckpointError
from memrl.agents.continual import EvaluationLog, load_continual_agent
from memrl.agents.continual.buffers import check_parts
from memrl.agents.continual.trainer import ContinualTrainer
from memrl.agents.run_log import RunLog

from .conftest import tiny_config
from .test_trainer import _assert_same_networks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The run copied at step 450 (``at450``) and, uninterrupted to the end, its trainer."""
    root = tmp_path_factory.mktemp("recovery")
    trainer = ContinualTrainer(tiny_config(tensorboard=True), root / "reference", progress=False)
    trainer.train(stop_at=450)
    shutil.copytree(root / "reference", root / "at450")
    trainer.train()
    trainer.close()
    return SimpleNamespace(at450=root / "at450", reference=trainer)


def _resume_and_compare(run, reference: ContinualTrainer) -> None:
    """Resume ``run`` (expecting it to fall back to step 300) and match the uninterrupted run."""
    trainer = ContinualTrainer(tiny_config(tensorboard=True), run, resume=True, progress=False)
    assert trainer.global_step == 300
    trainer.train(stop_at=450)  # its first save replaces the damaged latest.pt, keeps previous.pt
    for name in ("latest.pt", "previous.pt"):  # both usable, their buffer parts too
        payload = torch.load(run / "checkpoints" / name, weights_only=False)
        check_parts(payload["buffer"], run / "checkpoints" / "buffer")
    trainer.train()
    trainer.close()
    _assert_same_networks(trainer.agent, reference.agent)
    assert torch.equal(trainer.agent.log_alpha, reference.agent.log_alpha)
    assert EvaluationLog.load(run) == EvaluationLog.load(reference.run_dir)
    steps = tensorboard_steps(run, "eval/average_success")
    assert steps == [0, 150, 300, 450, 600]  # 450, logged before the damage, shows once


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_resumes_from_previous_exactly(tmp_path, runs, damage):
    run = shutil.copytree(runs.at450, tmp_path / "run")
    latest = run / "checkpoints" / "latest.pt"
    DAMAGE[damage](latest)
    previous = re.escape(str(run / "checkpoints" / "previous.pt"))
    match = f"damaged checkpoint {re.escape(str(latest))} .*older checkpoint {previous} instead"
    with pytest.warns(UserWarning, match=match):
        _resume_and_compare(run, runs.reference)


def test_a_damaged_buffer_part_resumes_from_previous_exactly(tmp_path, runs):
    run = shutil.copytree(runs.at450, tmp_path / "run")
    buffer = run / "checkpoints" / "buffer"
    # previous.pt's two parts (the first task) and latest.pt's one (the second task's start)
    assert sorted(p.name for p in buffer.iterdir()) == [f"part-00000{i}.npz" for i in range(3)]
    corrupt(buffer / "part-000002.npz")
    match = f"latest.pt \\({re.escape(str(buffer / 'part-000002.npz'))} is damaged: corrupted"
    with pytest.warns(UserWarning, match=match):
        _resume_and_compare(run, runs.reference)


def test_a_missing_latest_resumes_from_previous(tmp_path, runs, monkeypatch):
    run = shutil.copytree(runs.at450, tmp_path / "run")
    checkpoints = run / "checkpoints"
    (checkpoints / "latest.pt").unlink()  # killed between the renames of a save
    with pytest.warns(UserWarning, match="latest.pt is missing .*using the older checkpoint"):
        trainer = ContinualTrainer(tiny_config(), run, resume=True, progress=False)
    assert trainer.global_step == 300
    flushed = []
    flush = RunLog.flush
    monkeypatch.setattr(RunLog, "flush", lambda log: (flushed.append(log.run_dir), flush(log)))
    trainer.save_checkpoint()  # TensorBoard's events first; previous.pt stays, with its parts
    assert flushed == [run]
    for name in ("latest.pt", "previous.pt"):
        payload = torch.load(checkpoints / name, weights_only=False)
        assert payload["global_step"] == 300
        check_parts(payload["buffer"], checkpoints / "buffer")
    trainer.close()


def test_both_checkpoints_damaged_is_a_clear_error(tmp_path, runs):
    run = shutil.copytree(runs.at450, tmp_path / "run")
    truncate(run / "checkpoints" / "latest.pt")
    (run / "checkpoints" / "buffer" / "part-000000.npz").unlink()  # one of previous.pt's
    checkpoints = re.escape(str(run / "checkpoints"))
    with pytest.raises(NoIntactCheckpointError) as error:
        ContinualTrainer(tiny_config(), run, resume=True, progress=False)
    assert re.fullmatch(
        f"no intact checkpoint left in {checkpoints}: latest.pt \\(truncated .+\\), previous.pt "
        f"\\({checkpoints}/buffer/part-000000.npz is damaged: missing\\)",
        str(error.value),
    )


def test_load_continual_agent_falls_back_to_previous(tmp_path, runs):
    damaged = shutil.copytree(runs.at450, tmp_path / "damaged")
    corrupt(damaged / "checkpoints" / "latest.pt")
    older = shutil.copytree(runs.at450, tmp_path / "older")
    (older / "checkpoints" / "latest.pt").unlink()
    with pytest.warns(UserWarning, match="damaged checkpoint .*latest.pt"):
        agent, _ = load_continual_agent(damaged)
    with pytest.warns(UserWarning, match="latest.pt is missing"):
        expected, _ = load_continual_agent(older)
    _assert_same_networks(agent, expected)
