"""scripts/continual_study.py: the plan (fast) and the whole pipeline on a tiny budget (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "continual_study.py"


def _run(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dry_run_prints_every_run_and_the_expected_cost(tmp_path):
    out = _run("--dry-run", "--out", str(tmp_path))
    # 6 methods x 3 seeds of continual runs, 3 tasks x 3 seeds of reference runs.
    assert out.splitlines()[0].startswith("27 runs on reach-v3 > button-press-v3 > window-open-v3")
    assert "expected" in out and f"{tmp_path}/packnet/seed2" in out
    assert f"{tmp_path}/reference/window-open-v3/seed0" in out
    runs = [line.split(":")[0].strip() for line in out.splitlines()[1:]]
    assert runs[0] == f"{tmp_path}/finetune/seed0"
    # Seed by seed: seed 0's methods and references all come before any seed-1 run.
    assert all(run.endswith("seed0") for run in runs[:9])
    assert runs[9] == f"{tmp_path}/finetune/seed1"
    assert not any(tmp_path.iterdir())  # nothing trained
    # The cost comes from the measured rates: replay's batch of 512 makes its runs the longest.
    hours = {run: float(line.rsplit(",", 1)[1].split()[0]) for run, line in
             zip(runs, out.splitlines()[1:], strict=True)}  # fmt: skip
    assert hours[f"{tmp_path}/replay/seed0"] > 2 * hours[f"{tmp_path}/finetune/seed0"]


def test_a_missing_bench_file_is_named(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--bench", str(tmp_path / "none.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "none.json does not exist: make it with `memrl bench continual --json" in result.stderr


@pytest.mark.slow
def test_tiny_study_runs_end_to_end(tmp_path):
    out = _run(
        "--tiny", "--budget", "300", "--tasks", "reach-v3,button-press-v3",
        "--methods", "finetune", "packnet", "--seeds", "0", "--out", str(tmp_path),
    )  # fmt: skip
    assert "| finetune |" in out and "| packnet |" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["metrics"]) == {"finetune", "packnet"}
    assert (tmp_path / "reference" / "reference_curves.json").exists()
    section = (tmp_path / "RESULTS_SECTION.md").read_text()
    assert section.startswith("## Continual SAC on")
    assert "core-hours (projected from the rates of `memrl bench continual`" in section
    assert "#### Forgetting / forward transfer per window" in section
