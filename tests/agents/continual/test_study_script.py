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


def test_dry_run_shows_each_runs_progress_and_the_hours_left(tmp_path):
    from memrl.agents.continual import EvaluationLog

    def log(method: str, steps: list[int]) -> None:
        run_dir = tmp_path / method / "seed0"
        run_dir.mkdir(parents=True)
        log = EvaluationLog(
            task_names=("reach-v3", "button-press-v3", "window-open-v3"), steps_per_task=50_000,
            schedule=(0, 1, 2), method=method, stream="s", seed=0, eval_episodes=10,
            deterministic=False,
        )  # fmt: skip
        for step in steps:
            log.append(step, [0.0] * 3, [0.0] * 3)
        log.save(run_dir / "evaluations.json")

    log("finetune", list(range(5_000, 150_001, 5_000)))  # finished
    log("l2", [5_000, 10_000, 15_000])  # a tenth done
    fresh = _run("--dry-run", "--out", str(tmp_path / "none"), "--seeds", "0")
    out = _run("--dry-run", "--out", str(tmp_path), "--seeds", "0")
    lines = out.splitlines()
    assert f"{tmp_path}/finetune/seed0: finetune, seed 0, " in lines[1]
    assert lines[1].endswith("h [finished]")
    assert lines[2].endswith("h [at step 15000 of 150000]") and lines[3].endswith("[not started]")
    assert "1 finished, about" in lines[0]

    def hours_left(text: str) -> float:
        return float(text.splitlines()[0].rsplit("about ", 1)[1].split()[0])

    def estimate(line: str) -> float:
        return float(line.rsplit(",", 1)[1].split()[0])

    expected = hours_left(fresh) - estimate(lines[1]) - 0.1 * estimate(lines[2])
    assert hours_left(out) == pytest.approx(expected, abs=0.06)  # rounded to 0.1 h


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
