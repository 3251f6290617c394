"""Sweeps on a real local Ray (started once for the module): run, report, resume, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memrl.cli import main

ray = pytest.importorskip("ray")

TINY = """\
[train]
env = "memrl/DelayedMatch-Easy-v0"
num_envs = 2
num_steps = 64
num_minibatches = 1
update_epochs = 1
tensorboard = false
"""


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray for the module: 2 CPUs, no dashboard; its GCS address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(TINY + textwrap.dedent(text))
    return path


def _attempts(run_dir: Path) -> list[str]:
    """The command lines of every attempt, from the trial's own log."""
    log = (run_dir / "sweep_trial.log").read_text().splitlines()
    return [line for line in log if line.startswith("== attempt")]


def _summary(sweep_dir: Path) -> dict[str, dict]:
    trials = json.loads((sweep_dir / "sweep.json").read_text())["trials"]
    return {trial["name"]: trial for trial in trials}


def test_a_2x2_sweep_runs_ordinary_runs_that_report_aggregates(ray_address, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    spec = _spec(
        tmp_path,
        """
        steps = 256
        [grid]
        agent = ["none", "lstm"]
        seed = [0, 1]
    """,
    )
    assert main(["sweep", str(spec), "--out", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 trials finished" in out and "agent-lstm_seed-1  finished" in out
    summary = _summary(sweep)
    assert {t["status"] for t in summary.values()} == {"finished"}
    run = sweep / "trials" / "agent-lstm_seed-1"
    assert summary["agent-lstm_seed-1"]["run_dir"] == str(run)
    config = json.loads((run / "config.json").read_text())
    assert (config["core"], config["seed"], config["total_steps"]) == ("lstm", 1, 256)
    assert (sweep / "spec.toml").read_text() == spec.read_text()
    assert any((sweep / "ray").glob("run-1/experiment_state-*.json"))  # Ray's results, inside
    assert main(["report", str(sweep), "--reps", "200"]) == 0
    report = json.loads((sweep / "report" / "report.json").read_text())
    groups = report["details"]["studies"]["memrl/DelayedMatch-Easy-v0"]["groups"]
    assert [(g["label"], g["seeds"]) for g in groups] == [("lstm", [0, 1]), ("none", [0, 1])]
    assert set(report["metrics"]["lstm on memrl/DelayedMatch-Easy-v0"]) == {"IQM", "mean"}
    assert {"aggregates_1-DelayedMatch-Easy-v0.png", "profile_1-DelayedMatch-Easy-v0.png"} <= {
        p.name for p in (sweep / "report").iterdir()}  # fmt: skip
    # Each trial is an ordinary run: `memrl train --resume` extends it alone.
    assert main(["train", "--out", str(run), "--resume", "--steps", "384", "--no-progress"]) == 0
    assert "resumed at step 256" in capsys.readouterr().out


def test_a_killed_sweep_resumes_without_running_finished_trials_again(
    ray_address, tmp_path, capsys
):
    sweep = tmp_path / "sweep"
    spec = _spec(
        tmp_path,
        """
        checkpoint_every = 5
        [sweep]
        max_concurrent = 1
        [[grid]]
        trial_name = "first"
        steps = [256]
        [[grid]]
        trial_name = "long"
        steps = [12800]
        [[grid]]
        trial_name = "last"
        steps = [256]
    """,
    )
    driver = subprocess.Popen(
        [sys.executable, "-m", "memrl.cli", "sweep", str(spec), "--out", str(sweep),
         "--address", ray_address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    first, long = sweep / "trials" / "first", sweep / "trials" / "long"
    deadline = time.monotonic() + 120
    while not (long / "checkpoints" / "latest.pt").exists():
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended too soon"
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert json.loads((first / "sweep_trial.json").read_text())["status"] == "finished"
    assert json.loads((long / "sweep_trial.json").read_text())["status"] == "running"

    assert main(["sweep", str(spec), "--out", str(sweep), "--resume"]) == 0
    summary = _summary(sweep)
    assert [summary[n]["status"] for n in ("first", "long", "last")] == [
        "finished earlier", "finished", "finished"]  # fmt: skip
    assert len(_attempts(first)) == 1  # not run again
    attempts = _attempts(long)
    assert len(attempts) == 2 and attempts[1].endswith("--resume")
    assert "resumed at step" in (long / "sweep_trial.log").read_text()
    assert len(_attempts(sweep / "trials" / "last")) == 1
    assert main(["sweep", str(spec), "--out", str(sweep)]) == 2  # no --resume: refused
    assert "already holds a sweep; pass --resume" in capsys.readouterr().err


def test_a_failing_trial_is_retried_reported_and_the_others_go_on(ray_address, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    spec = _spec(
        tmp_path,
        """
        agent = "none"
        steps = 256
        [sweep]
        max_failures = 1
        [grid]
        env_kwargs = [{delay = 2}, {delay = -1}]
    """,
    )
    assert main(["sweep", str(spec), "--out", str(sweep)]) == 1
    out = capsys.readouterr().out
    summary = _summary(sweep)
    good, bad = summary["env_kwargs-delay-2"], summary["env_kwargs-delay--1"]
    assert good["status"] == "finished"
    assert bad["status"] == "failed" and bad["attempts"] == 2  # tried, then retried once
    assert "delay must be an integer >= 0" in bad["error"]
    assert "env_kwargs-delay--1  failed" in out and "delay must be an integer >= 0" in out
    assert len(_attempts(Path(bad["run_dir"]))) == 2


def test_bench_sweep_times_plain_runs_against_the_same_runs_as_a_sweep(ray_address):
    from memrl.bench.sweep import bench_sweep, format_report

    report = bench_sweep(main, trials=2, agent="none", steps=128)
    assert len(report["plain_seconds"]) == len(report["trial_train_seconds"]) == 2
    assert report["speedup"] == pytest.approx(report["plain_total_seconds"]
                                              / report["sweep_seconds"])  # fmt: skip
    assert "--agent none --steps 128" in report["trial"]
    lines = format_report(report)
    assert "speed-up" in lines and "Ray's overhead per trial" in lines
