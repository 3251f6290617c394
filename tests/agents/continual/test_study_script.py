"""scripts/continual_study.py: the plan (fast) and the whole pipeline on a tiny budget (slow)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "continual_study.py"


@pytest.fixture(scope="module")
def study():
    """The script as a module (its functions, without running a study)."""
    spec = importlib.util.spec_from_file_location("continual_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    # Seed by seed: seed 0's methods and references all come before any seed-1 run.
    assert all(run.endswith("seed0") for run in runs[:9])
    assert not any(tmp_path.iterdir())  # nothing trained
    # The cost comes from the measured rates: replay's batch of 512 makes its runs the longest,
    # and each seed's runs go longest first, so that parallel jobs end together.
    hours = [float(line.rsplit(",", 1)[1].split()[0]) for line in out.splitlines()[1:]]
    assert runs[0] == f"{tmp_path}/replay/seed0" and runs[9] == f"{tmp_path}/replay/seed1"
    assert hours[0] > 2 * hours[runs.index(f"{tmp_path}/finetune/seed0")]
    assert hours[:9] == sorted(hours[:9], reverse=True) and runs[8].startswith(
        f"{tmp_path}/reference/"
    )


def _log(run_dir: Path, method: str, steps: list[int], budget: int = 30_000) -> None:
    """An evaluation log of ``steps`` in ``run_dir`` (finished when it reaches 3 x ``budget``)."""
    from memrl.agents.continual import EvaluationLog

    run_dir.mkdir(parents=True, exist_ok=True)
    log = EvaluationLog(
        task_names=("reach-v3", "button-press-v3", "window-open-v3"), steps_per_task=budget,
        schedule=(0, 1, 2), method=method, stream="s", seed=0, eval_episodes=10,
        deterministic=False,
    )  # fmt: skip
    for step in steps:
        log.append(step, [0.0] * 3, [0.0] * 3)
    log.save(run_dir / "evaluations.json")


def test_dry_run_shows_each_runs_progress_and_the_hours_left(tmp_path):
    def log(method: str, steps: list[int]) -> None:
        _log(tmp_path / method / "seed0", method, steps)

    log("finetune", list(range(2_000, 90_001, 2_000)))  # finished
    log("l2", [3_000, 6_000, 9_000])  # a tenth done
    fresh = _run("--dry-run", "--out", str(tmp_path / "none"), "--seeds", "0")
    out = _run("--dry-run", "--out", str(tmp_path), "--seeds", "0")
    lines = {line.split(":")[0].strip(): line for line in out.splitlines()[1:]}
    finetune, l2 = lines[f"{tmp_path}/finetune/seed0"], lines[f"{tmp_path}/l2/seed0"]
    assert finetune.startswith(f"  {tmp_path}/finetune/seed0: finetune, seed 0, ")
    assert finetune.endswith("h [finished]")
    assert l2.endswith("h [at step 9000 of 90000]")
    assert lines[f"{tmp_path}/ewc/seed0"].endswith("[not started]")
    assert "1 finished, about" in out.splitlines()[0]

    def hours_left(text: str) -> float:
        return float(text.splitlines()[0].rsplit("about ", 1)[1].split()[0])

    def estimate(line: str) -> float:
        return float(line.rsplit(",", 1)[1].split()[0])

    expected = hours_left(fresh) - estimate(finetune) - 0.1 * estimate(l2)
    assert hours_left(out) == pytest.approx(expected, abs=0.06)  # rounded to 0.1 h


def _archive_run(study, archive: Path, method: str, **changes) -> None:
    """A finished run of ``method``, seed 0, in ``archive``, with the study's default config."""
    args = _defaults(study)
    config = dataclasses.replace(study.base_config(args), method=method, seed=0, **changes)
    run_dir = archive / method / "seed0"
    _log(run_dir, method, list(range(2_000, 90_001, 2_000)))
    (run_dir / "config.json").write_text(json.dumps({"agent": "continual-sac",
                                                     **dataclasses.asdict(config)}))  # fmt: skip
    (run_dir / "metrics.csv").write_text("step,loss\n")


def _defaults(study) -> argparse.Namespace:
    """The study's default options, as parsed."""
    return argparse.Namespace(tasks=study.TASKS, budget=30_000, eval_every=0, eval_episodes=10,
                              tiny=False)  # fmt: skip


def test_dry_run_counts_archived_runs_as_finished_and_writes_nothing(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    text = _run("--dry-run", "--out", str(out), "--seeds", "0", "--archive", str(archive))
    line = next(line for line in text.splitlines() if f"{out}/l2/seed0:" in line)
    assert line.endswith("[finished, archived]")
    assert "1 finished" in text.splitlines()[0]
    assert not out.exists()


def test_archived_runs_are_restored_and_finished_runs_archived(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    args = _defaults(study)
    args.seeds, args.methods, args.reference, args.out = [0], ["l2", "ewc"], "curves.json", str(out)
    runs = study.plan(args, study.base_config(args))
    assert study.restore(runs, str(out), str(archive)) == 1
    assert {p.name for p in (out / "l2" / "seed0").iterdir()} == set(study.RESULT_FILES)
    assert study.restore(runs, str(out), str(archive)) == 0  # already there
    # A finished run of --out is archived as it finishes, or when skipped (no training here).
    ewc_config, ewc_dir = runs[1]
    _log(Path(ewc_dir), "ewc", list(range(2_000, 90_001, 2_000)))
    (Path(ewc_dir) / "checkpoints").mkdir()
    kept = archive / "ewc" / "seed0"
    line = study.run_one(ewc_config, ewc_dir, str(kept))
    assert line == f"skipped {ewc_dir} (finished), archived to {kept}"
    assert [p.name for p in kept.iterdir()] == ["evaluations.json"]  # results only


def test_an_archived_run_of_other_settings_is_refused(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2", steps_per_task=50_000)
    args = _defaults(study)
    args.seeds, args.methods, args.reference, args.out = [0], ["l2"], "curves.json", str(out)
    runs = study.plan(args, study.base_config(args))
    with pytest.raises(SystemExit, match="steps_per_task: 50000 there, 30000 here"):
        study.restore(runs, str(out), str(archive))
    assert not out.exists()


def test_an_unfinished_run_is_not_overwritten_by_its_archive(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    _log(out / "l2" / "seed0", "l2", [2_000])
    args = _defaults(study)
    args.seeds, args.methods, args.reference, args.out = [0], ["l2"], "curves.json", str(out)
    runs = study.plan(args, study.base_config(args))
    with pytest.raises(SystemExit, match="holds an unfinished run but .* a finished one"):
        study.restore(runs, str(out), str(archive))
    assert not _finished(out / "l2" / "seed0")


def _finished(run_dir: Path) -> bool:
    """Whether the evaluation log in ``run_dir`` covers its whole budget."""
    from memrl.agents.continual import EvaluationLog

    return EvaluationLog.load(run_dir).finished


def test_a_missing_bench_file_is_named(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--bench", str(tmp_path / "none.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "none.json does not exist: make it with `memrl bench continual --json" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--budget", "0"], "argument --budget: must be an integer >= 1, got 0"),
        (["--jobs", "0"], "argument --jobs: must be an integer >= 1, got 0"),
        (["--seeds", "-1"], "argument --seeds: must be an integer >= 0, got -1"),
        (["--eval-every", "7"], "error: eval_every must divide steps_per_task (30000)"),
        (["--tasks", "reach-v2"], "error: unknown task 'reach-v2'. Did you mean ['reach-v3'"),
    ],
)
def test_bad_options_are_refused_with_what_is_allowed(study, tmp_path, monkeypatch, capsys,
                                                      arguments, message):  # fmt: skip
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["continual_study.py", "--dry-run", "--out", str(out),
                                      *arguments])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        study.main()
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_tiny_study_runs_end_to_end(tmp_path):
    options = ("--tiny", "--budget", "300", "--tasks", "reach-v3,button-press-v3",
               "--methods", "finetune", "packnet", "--seeds", "0", "--jobs", "2",
               "--archive", str(tmp_path / "archive"))  # fmt: skip
    out = _run(*options, "--out", str(tmp_path / "study"))
    assert "| finetune |" in out and "| packnet |" in out
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert set(report["metrics"]) == {"finetune", "packnet"}
    assert (tmp_path / "study" / "reference" / "reference_curves.json").exists()
    section = (tmp_path / "study" / "RESULTS_SECTION.md").read_text()
    assert section.startswith("## Continual SAC on")
    assert "core-hours (projected from the rates of `memrl bench continual`" in section
    assert "#### Forgetting / forward transfer per window" in section
    # Every run was archived as it finished; a fresh --out is filled from the archive, and the
    # same report is collected from it without training anything.
    assert out.count(", archived to ") == 4  # 2 methods, 2 references
    again = _run(*options, "--out", str(tmp_path / "fresh"))
    assert "restored 4 finished runs" in again
    assert not any(line.startswith("trained ") for line in again.splitlines())
    assert not (tmp_path / "fresh" / "finetune" / "seed0" / "checkpoints").exists()
    assert (
        json.loads((tmp_path / "fresh" / "report.json").read_text())["metrics"]
        == (report["metrics"])
    )
