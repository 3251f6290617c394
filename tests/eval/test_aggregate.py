"""`memrl report`: runs grouped by config, aggregated over seeds with rliable, and the continual
study's archive reproducing docs/RESULTS.md's table exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from memrl.cli import main
from memrl.eval.aggregate import group_runs, interval_estimates
from memrl.eval.run_results import find_run_dirs, read_run
from memrl.eval.runs_report import report_runs

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "assets" / "continual_study"
STUDY = "##### Continual SAC on reach-v3, button-press-v3, window-open-v3 (30,000 steps per task)"


def _results_tables() -> list[dict[str, str]]:
    """The continual study's tables in docs/RESULTS.md: each as method -> its row."""
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    section = text[text.index(STUDY) :]
    tables = re.findall(r"((?:^\|.*\|\n)+)", section, re.M)[:3]
    return [{line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
            for table in tables]  # fmt: skip


def _rows(table: str) -> dict[str, str]:
    return {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}


def test_the_continual_archive_reproduces_the_results_tables_exactly(tmp_path, capsys):
    assert main(["report", str(ARCHIVE), "--out", str(tmp_path), "--reps", "200"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    (study,) = report["details"]["studies"].values()
    (continual,) = study["continual_world"]
    table, success, window = _results_tables()
    assert _rows(continual["table"]) == table  # P, F, FT with their 90% intervals
    sub = json.loads((Path(continual["report"]).parent / "report.json").read_text())
    tables = sub["details"]["per_task_tables"]
    assert _rows(tables["Success at the end, per task (mean over seeds)"]) == success
    assert _rows(tables["Forgetting / forward transfer per window (mean over seeds)"]) == window
    # The reference runs are the curves, not groups; the 18 study runs are 6 groups of 3 seeds.
    assert report["details"]["runs"] == 18
    assert {g["label"]: g["seeds"] for g in study["groups"]} == {
        m: [0, 1, 2] for m in ("ewc", "finetune", "l2", "multitask", "packnet", "replay")
    }
    markdown = (tmp_path / "report.md").read_text()
    assert "9 single-task runs under" in markdown and table["ewc"] in markdown


def _memory_run(root: Path, agent: str, seed: int, success: list[float], **config) -> Path:
    """A hand-made memory run: config.json, and memrl eval's recall-vs-delay report."""
    run = root / f"{agent}-seed{seed}"
    run.mkdir(parents=True)
    settings = {
        "env_id": "memrl/DelayedMatch-v0",
        "env_kwargs": {"num_symbols": 4},
        "core": agent,
        "seed": seed,
        "total_steps": 1000,
        "threads": seed,
        **config,
    }
    (run / "config.json").write_text(json.dumps(settings))
    results = [{"label": f"delay {d}", "env_id": "memrl/DelayedMatch-v0",
                "env_kwargs": {"num_symbols": 4, "delay": d}, "success_rate": s}
               for d, s in zip((16, 64, 256), success, strict=True)]  # fmt: skip
    report = {"kind": "recall_vs_delay", "episodes": 100, "deterministic": False,
              "results": results}  # fmt: skip
    (run / "report.json").write_text(json.dumps(report))
    return run


def test_memory_runs_are_grouped_by_config_and_aggregated_per_delay(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1, 2):
        _memory_run(runs, "hcam", seed, [1.0, 0.9 - 0.1 * seed, 0.8])
        _memory_run(runs, "lstm", seed, [0.3, 0.25, 0.2 + 0.05 * seed])
    (runs / "lstm-seed0").rename(runs / "lstm-budget1000-seed0")
    _memory_run(runs, "lstm", 0, [0.5, 0.5, 0.5], total_steps=2000)  # a setting of its own
    results = [read_run(run_dir) for run_dir in find_run_dirs([runs])]
    assert results[0].source == "memrl eval: 100 episodes per condition, sampled actions"
    groups = group_runs(results)
    assert [(g.label, g.seeds) for g in groups] == [
        ("hcam", [0, 1, 2]), ("lstm (total_steps=1000)", [0, 1, 2]),
        ("lstm (total_steps=2000)", [0])]  # fmt: skip
    assert groups[0].scores.shape == (3, 3)

    report = report_runs([runs], tmp_path / "report", reps=200)
    study = report["details"]["studies"]['memrl/DelayedMatch-v0 {"num_symbols": 4}']
    assert study["recall"]["delays"] == [16, 64, 256]
    assert np.allclose(study["recall"]["hcam"]["iqm"], [1.0, 0.8, 0.8])
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert any(name.startswith("recall_1-") for name in names)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| hcam | 1.00 (1.00-1.00) | 0.80 (0.70-0.90) | 0.80 (0.80-0.80) |" in markdown


def test_interval_estimates_are_rliables_iqm_and_mean():
    scores = {"a": np.array([[0.0, 0.1], [0.5, 0.6], [0.9, 1.0], [0.2, 0.3]])}
    estimate = interval_estimates(scores, reps=200)["a"]
    assert estimate["mean"].point == pytest.approx(0.45)
    assert estimate["IQM"].point == pytest.approx(np.mean([0.2, 0.3, 0.5, 0.6]))
    assert estimate["IQM"].lower <= estimate["IQM"].point <= estimate["IQM"].upper


def test_two_runs_of_one_seed_and_setting_are_refused(tmp_path, capsys):
    _memory_run(tmp_path / "a", "hcam", 0, [1.0, 1.0, 1.0])
    _memory_run(tmp_path / "b", "hcam", 0, [0.5, 0.5, 0.5])
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                 str(tmp_path / "out")]) == 2  # fmt: skip
    assert "are both seed 0 of one setting" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run or directory" in capsys.readouterr().err
