"""Single-task reference curves: read from run directories, and the shipped default file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.eval.continual import evaluate_continual_runs
from memrl.eval.reference_curves import (
    default_reference_path,
    load_reference_curves,
    reference_from_runs,
)

STUDY = Path(__file__).resolve().parents[2] / "assets" / "continual_study"
"""The archive of scripts/continual_study.py (30,000 steps per task, evaluation every 2,000)."""


def test_a_single_task_run_with_held_out_tasks_gives_a_reference_curve(tmp_path):
    run_dir = tmp_path / "single"
    run_dir.mkdir()
    log = EvaluationLog(
        task_names=("a", "c"), steps_per_task=300, schedule=(0,), method="finetune",
        stream="a", seed=0, eval_episodes=10, deterministic=False, held_out=("c",),
    )  # fmt: skip
    log.append(150, [0.2, 0.9], [0.0, 0.0])
    log.append(300, [0.6, 0.9], [0.0, 0.0])
    log.save(run_dir / "evaluations.json")
    curves = reference_from_runs([run_dir])
    assert list(curves) == ["a"]
    np.testing.assert_allclose(curves["a"], [[0.2, 0.6]])


def test_the_shipped_reference_curves_are_the_studys_and_the_default(tmp_path):
    shipped = load_reference_curves(
        default_reference_path(30_000), steps_per_task=30_000, eval_every=2_000,
        deterministic=False,
    )  # fmt: skip
    from_runs = reference_from_runs(sorted(STUDY.glob("reference/*/seed*")))
    assert set(shipped) == set(from_runs) == {"reach-v3", "button-press-v3", "window-open-v3"}
    for task, curves in shipped.items():
        assert curves.shape == (3, 15)  # 3 seeds, 15 evaluations
        np.testing.assert_array_equal(curves, from_runs[task])
    # memrl eval reads the shipped file when no reference is given, and gets the same FT.
    runs = [shutil.copytree(run, tmp_path / run.name) for run in STUDY.glob("finetune/seed*")]
    report = evaluate_continual_runs(runs, out_dir=tmp_path / "default")
    assert report["details"]["reference"].endswith("sac-30000.json (3 runs per task)")
    given = evaluate_continual_runs(runs, reference=from_runs, out_dir=tmp_path / "given")
    transfer = [r["metrics"]["finetune"]["forward transfer"]["mean"] for r in (report, given)]
    assert transfer[0] == transfer[1]
