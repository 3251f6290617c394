"""scripts/memory_study.py: the plan, and a tiny study end to end (allocator and fixed strategy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "memory_study.py"


def _run(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dry_run_prints_one_train_command_per_agent_and_seed(tmp_path):
    out = _run("--env", "memrl/RoomBallet-v0", "--agents", "sat-ama", "sat-pm-lvfo",
               "--seeds", "0", "1", "--out", str(tmp_path), "--dry-run")  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == 4  # seed by seed: every agent of seed 0 first
    assert "--agent sat-pm" in lines[1] and '"strategy": "lvfo"' in lines[1]
    assert "--seed 0" in lines[1] and "--seed 1" in lines[2]
    assert not any(tmp_path.iterdir())


def test_tiny_room_ballet_study_end_to_end(tmp_path):
    args = ("--env", "memrl/RoomBallet-v0", "--agents", "sat-ama", "sat-pm-lifo", "--seeds", "0",
            "--steps", "2048", "--eval-episodes", "8", "--out", str(tmp_path),
            "--ppo", '{"objective": "supervised"}', "--greedy")  # fmt: skip
    out = _run(*args)
    assert "| sat-ama |" in out and "| sat-pm-lifo |" in out
    assert "greedy actions." in out and '`{"objective": "supervised"}`' in out
    assert "| mixture (mean) |" in out
    assert "first_seen" in out and "sat-ama: strategy picked per question type" in out
    study = json.loads((tmp_path / "study.json").read_text())
    lifo = study["reports"]["sat-pm-lifo"][0]
    assert lifo["agent"] == "sat-pm" and len(lifo["results"]) == 4
    assert lifo["deterministic"] is True
    config = json.loads((tmp_path / "sat-pm-lifo-seed0" / "config.json").read_text())
    assert config["core_kwargs"]["strategy"] == "lifo" and config["objective"] == "supervised"
    assert config["core_kwargs"]["capacity"] == 18  # half of RoomBallet's 36 watching steps
    assert (tmp_path / "training_curves.png").exists()
    again = _run(*args)  # finished runs are not trained again
    assert "trained" not in again
    assert again == (tmp_path / "study.md").read_text() + "\n"
    # A study in progress: seed 1 not run yet. --summary trains nothing and says what is missing.
    partial = _run(*args[:6], "0", "1", *args[7:], "--summary")
    assert "| sat-pm-lifo |" in partial
    assert "Seeds evaluated per agent: sat-ama 1, sat-pm-lifo 1." in partial
    assert "Not evaluated yet: sat-ama-seed1, sat-pm-lifo-seed1." in partial
    assert not (tmp_path / "sat-ama-seed1").exists()


def test_ppo_settings_reach_every_train_command_and_typos_are_refused(tmp_path):
    out = _run("--env", "memrl/BalletGrid-2-delay16-v0", "--agents", "hcam", "lstm", "--seeds",
               "0", "--out", str(tmp_path), "--dry-run",
               "--ppo", '{"ent_coef": 0.001, "num_envs": 32, "anneal_lr": false}')  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == 2
    assert all("--ent-coef 0.001 --num-envs 32 --no-anneal-lr" in line for line in lines)
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--env", "memrl/BalletGrid-2-delay16-v0", "--out",
         str(tmp_path), "--dry-run", "--ppo", '{"entcoef": 0.001}'],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0 and "unknown PPO setting 'entcoef'" in bad.stderr


def test_a_started_run_is_resumed_even_without_a_checkpoint(tmp_path):
    (tmp_path / "hcam-seed0").mkdir()  # killed before its first checkpoint
    (tmp_path / "hcam-seed0" / "metrics.csv").write_text("global_step\n2048\n")
    out = _run("--env", "memrl/BalletGrid-2-delay16-v0", "--agents", "hcam", "--seeds", "0", "1",
               "--out", str(tmp_path), "--dry-run")  # fmt: skip
    first, second = out.splitlines()
    assert first.endswith("--resume") and "--resume" not in second


def test_the_best_fixed_strategy_per_question_type_is_named():
    import importlib.util

    spec = importlib.util.spec_from_file_location("memory_study", SCRIPT)
    assert spec is not None and spec.loader is not None
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    labels = ["first_seen", "last_seen"]

    def runs(*per_seed):
        return [{"results": [{"label": label, "success_rate": rate}
                             for label, rate in zip(labels, rates, strict=True)]}
                for rates in per_seed]  # fmt: skip

    reports = {
        "sat-pm": runs([0.1, 0.9], [0.2, 0.8]),  # fifo: last_seen 0.85
        "sat-pm-lifo": runs([0.8, 0.2], [0.9, 0.1]),  # lifo: first_seen 0.85
        "sat-pm-mvfo": runs([0.5, 0.5], [0.5, 0.5]),
        "sat-pm-lvfo": runs([0.4, 0.6], [0.4, 0.6]),
    }
    (line,) = [line for line in study.best_fixed_strategies(reports, labels) if line]
    assert "first_seen: lifo (0.85), last_seen: fifo (0.85)" in line
    assert "about 0.85 on the mixture" in line
    assert study.best_fixed_strategies({"sat-pm": reports["sat-pm"]}, labels) == []


def test_archived_runs_rebuild_the_table_without_training_and_other_settings_are_refused(
    tmp_path,
):
    archive = tmp_path / "archive"
    args = ("--env", "memrl/DelayedMatch-Easy-v0", "--agents", "none", "--seeds", "0",
            "--steps", "2048", "--eval-episodes", "8", "--archive", str(archive))  # fmt: skip
    _run(*args, "--out", str(tmp_path / "first"))
    table = (tmp_path / "first" / "study.md").read_text()
    kept = archive / "none-seed0"
    assert sorted(p.name for p in kept.iterdir()) == ["config.json", "metrics.csv", "report.json"]
    assert json.loads((archive / "study.json").read_text())["steps"] == 2048
    assert not list(kept.rglob("*.pt")) and not list(kept.rglob("checkpoint*"))
    # A fresh checkout: no run directory, only the archive. Nothing is trained again.
    fresh = tmp_path / "fresh"
    assert _run(*args, "--out", str(fresh)) == table + "\n"  # no "trained ..." line
    assert not (fresh / "none-seed0").exists()
    rebuilt = _run(*args, "--summary")  # no --out: the archive alone
    assert rebuilt.splitlines()[2:5] == table.splitlines()[2:5]  # the header and the row
    assert "| none | " in rebuilt and "Seeds evaluated per agent: none 1." in rebuilt
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), *args[:7], "4096", *args[8:], "--summary"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "steps: 2048 there, 4096 here" in bad.stderr
    missing_out = subprocess.run(
        [sys.executable, str(SCRIPT), "--env", "memrl/DelayedMatch-Easy-v0", "--dry-run"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing_out.returncode != 0 and "--out is required" in missing_out.stderr
