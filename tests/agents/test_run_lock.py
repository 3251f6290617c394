"""One trainer per run directory: a second one is refused, however the first was started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memrl.agents.run_lock import LOCK_FILE, RunInUseError, RunLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="runs are not locked on Windows")


def _hold(run_dir: Path) -> subprocess.Popen:
    """Another process that holds ``run_dir``'s lock until killed."""
    program = (
        "import sys, time\nfrom memrl.agents.run_lock import RunLock\n"
        f"lock = RunLock({str(run_dir)!r})\nprint('held', flush=True)\ntime.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_is_refused_with_the_holders_pid_until_it_ends(tmp_path):
    holder = _hold(tmp_path / "run")
    try:
        with pytest.raises(RunInUseError, match=rf"run is being trained by pid {holder.pid}:"):
            RunLock(tmp_path / "run")
    finally:
        holder.kill()  # no clean-up of its own: the operating system frees the lock
        holder.wait()
    assert (tmp_path / "run" / LOCK_FILE).exists()  # left by the killed holder, locking nothing
    with RunLock(tmp_path / "run") as lock:
        assert (tmp_path / "run" / LOCK_FILE).read_text() == f"pid {os.getpid()}\n"
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # a lock released is removed
    lock.release()  # idempotent


def test_a_second_lock_in_the_same_process_is_refused_until_the_first_is_released(tmp_path):
    first = RunLock(tmp_path)
    with pytest.raises(RunInUseError):
        RunLock(tmp_path)
    first.release()
    RunLock(tmp_path).release()


def test_every_trainer_refuses_a_run_in_use_and_writes_nothing(tmp_path):
    from memrl.agents.continual import ContinualConfig, train_continual
    from memrl.agents.ppo import PPOTrainer
    from memrl.agents.ppo_config import PPOConfig
    from memrl.agents.sb3_baselines import train_sb3
    from memrl.agents.sb3_config import SB3Config

    run_dir = tmp_path / "run"
    holder = _hold(run_dir)
    try:
        with pytest.raises(RunInUseError):
            config = ContinualConfig(tasks="reach-v3", steps_per_task=300, eval_every=150,
                                     update_after=100)  # fmt: skip
            train_continual(config, run_dir, progress=False)
        with pytest.raises(RunInUseError):
            PPOTrainer(PPOConfig(env_id="memrl/DelayedMatch-v0", tensorboard=False), run_dir)
        with pytest.raises(RunInUseError):
            train_sb3(SB3Config(env_id="memrl/DelayedMatch-v0", tensorboard=False), run_dir)
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in run_dir.iterdir()] == [LOCK_FILE]


def test_a_trainer_frees_its_run_when_it_ends_or_fails(tmp_path):
    from memrl.agents.ppo import PPOTrainer
    from memrl.agents.ppo_config import PPOConfig

    config = PPOConfig(env_id="memrl/DelayedMatch-v0", env_kwargs={"delay": 2, "num_symbols": 2},
                       num_envs=2, num_minibatches=2, num_steps=8, total_steps=16,
                       tensorboard=False)  # fmt: skip
    PPOTrainer(config, tmp_path, progress=False).train()
    with pytest.raises(FileExistsError):  # fails after taking the lock: it gives it back
        PPOTrainer(config, tmp_path, progress=False)
    PPOTrainer(config, tmp_path, resume=True, progress=False).train()
    RunLock(tmp_path).release()


def test_the_cli_names_the_run_in_use(tmp_path, capsys):
    from memrl.cli import main

    holder = _hold(tmp_path / "run")
    try:
        code = main(["train", "--env", "memrl/DelayedMatch-v0", "--agent", "gru", "--steps",
                     "64", "--out", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert f"error: {tmp_path / 'run'} is being trained by pid {holder.pid}" in (
        capsys.readouterr().err
    )
