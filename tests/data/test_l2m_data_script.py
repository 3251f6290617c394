"""scripts/l2m_data.py: its resume decisions, its dry run, and its wiring of the three steps."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from memrl.agents.checkpoints import CheckpointStore
from memrl.agents.continual.replay_export import sac_replay_dataset_id
from memrl.data import metaworld_dataset_id

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "l2m_data.py"
BUDGET = ["--steps-per-task", "10000", "--eval-every", "1000"]


@pytest.fixture(scope="module")
def script():
    """The script as a module (its functions, without running it)."""
    spec = importlib.util.spec_from_file_location("l2m_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["l2m_data"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["l2m_data"]


def _config(script, task: str = "cartpole-balance", *options: str):
    return script.sac_config(task, script.parse_arguments([*BUDGET, *options]))


def _checkpoint(run_dir: Path, config, step: int) -> None:
    """A checkpoint of ``config`` at ``step`` (what the script reads of one)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    payload = {"config": dataclasses.asdict(config), "global_step": step}
    CheckpointStore(run_dir / "checkpoints").save(payload)


def _complete_dataset(path: Path, **memrl_metadata) -> None:
    """What marks a complete memrl dataset (its metadata with memrl's key)."""
    (path / "data").mkdir(parents=True)
    (path / "data" / "metadata.json").write_text(json.dumps({"memrl": memrl_metadata}))


def test_the_checkpoint_decides_start_restart_resume_or_skip(script, tmp_path):
    config = _config(script)
    state = script.run_state

    assert state(tmp_path / "none", config).action == "start"
    killed_early = tmp_path / "killed-early"
    killed_early.mkdir()
    (killed_early / "config.json").write_text("{}")
    assert state(killed_early, config).action == "restart"

    _checkpoint(tmp_path / "half", config, 4000)
    assert state(tmp_path / "half", config) == script.RunState("resume", 4000)
    _checkpoint(tmp_path / "done", config, 10_000)
    assert state(tmp_path / "done", config) == script.RunState("finished", 10_000)

    other = dataclasses.replace(config, steps_per_task=50_000)
    _checkpoint(tmp_path / "other", other, 4000)
    refused = state(tmp_path / "other", config)
    assert (
        refused.action == "refused" and "steps_per_task 50000 there, 10000 here" in refused.detail
    )

    (tmp_path / "damaged" / "checkpoints").mkdir(parents=True)
    (tmp_path / "damaged" / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    damaged = state(tmp_path / "damaged", config)
    assert damaged.action == "refused" and "no intact checkpoint left" in damaged.detail

    (tmp_path / "half" / ".lock").write_text(f"pid {os.getpid()}\n")  # a live trainer's lock
    busy = state(tmp_path / "half", config)
    assert busy.action == "busy" and busy.detail == f"being trained by pid {os.getpid()}"
    (tmp_path / "half" / ".lock").write_text("pid 999999999\n")  # a killed trainer's lock
    assert state(tmp_path / "half", config).action == "resume"


def test_dry_run_prints_what_is_left_and_changes_nothing(script, tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    _checkpoint(runs / "cartpole-balance", _config(script), 4000)
    (runs / "cartpole-balance" / "metrics.csv").write_text("global_step,charts/sps\n1000,20.0\n")
    _checkpoint(runs / "point_mass-easy", _config(script, "point_mass-easy"), 10_000)
    datasets = out / "datasets"
    _complete_dataset(datasets / sac_replay_dataset_id("point_mass-easy"), steps=10_000)
    _complete_dataset(datasets / metaworld_dataset_id("reach-v3"))
    before = sorted(p for p in tmp_path.rglob("*"))

    script.main(["--dry-run", "--out", str(out), "--dmc-runs", str(runs), *BUDGET,
                 "--tasks", "cartpole-balance,point_mass-easy,walker-stand",
                 "--metaworld-tasks", "reach-v3,push-v3", "--sac-rate", "10"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "Meta-World: 2 tasks x 100 scripted episodes, 1 done, 1 left: 20,000 steps, about 1 min "
        "at 620 steps/s"
    )
    cartpole, point_mass, walker = lines[3:6]
    assert "at step 4,000 of 10,000 [resume]; 6,000 steps left, about 0.17 h" in cartpole
    assert cartpole.endswith("20.0 steps/s so far; export to do")
    assert "[finished]; 0 steps left" in point_mass and point_mass.endswith("export exported")
    assert f"{runs / 'walker-stand'} at step 0 of 10,000 [start]; 10,000 steps left" in walker
    # 0.54 min of collection, 0.17 h and 0.28 h of SAC; two jobs: 0.01 h + 0.28 h | 0.17 h.
    assert lines[6].startswith("left for this script: about 0.5 h in one process, 0.3 h with")
    assert "the SAC runs' 16,000 steps left take 0.4 h" in lines[6]
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_each_run_is_trained_as_decided_then_exported(script, tmp_path, monkeypatch):
    trained, exported = [], []

    def train(config, run_dir, resume, progress):
        trained.append((config.tasks, resume))
        _checkpoint(run_dir, config, config.steps_per_task)  # now finished

    monkeypatch.setattr(script, "train_continual", train)
    monkeypatch.setattr(script, "export_sac_replay", lambda run, out: exported.append(run) or out)
    runs = tmp_path / "runs"
    configs = {t: _config(script, t) for t in ("cartpole-balance", "walker-stand",
                                               "point_mass-easy", "reacher-hard")}  # fmt: skip
    _checkpoint(runs / "cartpole-balance", configs["cartpole-balance"], 4000)  # killed
    (runs / "walker-stand").mkdir(parents=True)
    (runs / "walker-stand" / "config.json").write_text("{}")  # killed before its checkpoint
    _checkpoint(runs / "reacher-hard", configs["reacher-hard"], 10_000)  # finished
    for task, config in configs.items():
        script.train_and_export(config, str(runs / task), str(tmp_path / "datasets"))
    assert trained == [("cartpole-balance", True), ("walker-stand", True),
                       ("point_mass-easy", False)]  # fmt: skip
    assert [Path(run).name for run in exported] == list(configs)

    trained.clear()
    (runs / "busy").mkdir()
    _checkpoint(runs / "busy", configs["cartpole-balance"], 4000)
    (runs / "busy" / ".lock").write_text(f"pid {os.getpid()}\n")
    line = script.train_and_export(configs["cartpole-balance"], str(runs / "busy"), "unused")
    assert trained == [] and line.endswith(f"left alone (being trained by pid {os.getpid()})")


def test_two_jobs_take_the_next_job_when_free(script):
    assert script.makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert script.makespan([1.0, 3.0, 2.0], 2) == 3.0
    assert script.makespan([1.0, 3.0, 2.0], 1) == 6.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tasks", "cartpole-swing"], "must be dm_control tasks of L2M among"),
        (["--metaworld-tasks", "hamer-v3"], "unknown Meta-World task 'hamer-v3'"),
        (["--jobs", "3"], r"invalid choice: 3 \(choose from 1, 2\)"),
        (["--eval-every", "3000"], r"--eval-every must divide --steps-per-task \(100000\)"),
    ],
)
def test_bad_options_are_clear_errors(script, capsys, options, message):
    with pytest.raises(SystemExit):
        script.parse_arguments(options)
    assert re.search(message, capsys.readouterr().err)
