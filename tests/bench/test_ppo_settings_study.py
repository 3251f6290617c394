"""scripts/ppo_settings_study.py: its plan, and docs/RESULTS.md's table rebuilt from the archive."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ppo_settings_study.py"


def _study():
    spec = importlib.util.spec_from_file_location("ppo_settings_study", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_archive_rebuilds_the_results_table_exactly():
    table = subprocess.run(
        [sys.executable, str(SCRIPT), "--table"], check=True, capture_output=True, text=True
    ).stdout
    results = (ROOT / "docs" / "RESULTS.md").read_text()
    start = results.index("<!-- ppo-settings:start -->\n") + len("<!-- ppo-settings:start -->\n")
    assert results[start : results.index("<!-- ppo-settings:end -->")] == table
    assert "| e8_m8 |" in table and "| e4_m4 |" in table
    assert "SB3's RecurrentPPO at its defaults, seconds to 0.9: " in table


def test_each_archived_run_is_the_setting_it_is_filed_under():
    study = _study()
    for path in sorted(study.ARCHIVE.glob("*.json")):
        setting, seed = path.stem.rsplit("-seed", 1)
        report = json.loads(path.read_text())
        assert {r["seed"] for r in report["runs"]} == {int(seed)}, path.name
        agents = sorted(r["agent"] for r in report["runs"])
        if setting == study.REFERENCE:
            assert agents == ["sb3-recurrent-ppo"] and report["ppo"] == {}, path.name
        else:
            assert report["ppo"] == study.SETTINGS[setting], path.name
            assert agents == sorted(study.AGENTS), path.name
        assert report["max_steps"] == study.MAX_STEPS and report["env"].endswith("Easy-v0")


def test_the_plan_skips_archived_runs_and_names_the_settings(tmp_path):
    study = _study()
    (tmp_path / "e8_m8-seed1.json").write_text("{}")
    command = study.bench_command("e8_m8", 0, tmp_path)
    assert command[:2] == ["bench", "learning"] and command[-2:] == [
        "--ppo", '{"update_epochs": 8, "num_minibatches": 8}'
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--archive", str(tmp_path), "--settings", "e8_m8",
         "--dry-run"], check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert out.startswith("2 of 3 (setting, seed) runs left")
    reference = study.bench_command(study.REFERENCE, 1, tmp_path)
    assert reference[2:4] == ["--agents", "sb3-recurrent-ppo"] and "--ppo" not in reference
    assert "--seeds 0" in out and "--seeds 2" in out and "--seeds 1" not in out
