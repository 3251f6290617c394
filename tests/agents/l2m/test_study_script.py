"""scripts/l2m_study.py: the plan, the archive, the table from the archive (fast), and a tiny
study end to end on the tiny model and data (slow)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.agents.l2m.offline_config import AGENTS
from memrl.agents.l2m.offline_trainer import LEARNER

from .conftest import PRETRAINING_TASK, STREAM

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "l2m_study.py"
DIGEST = "ab" * 32
"""The SHA-256 of the model the synthetic runs fine-tuned."""


@pytest.fixture(scope="module")
def study():
    """The script as a module (its functions, without running a study)."""
    spec = importlib.util.spec_from_file_location("l2m_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench(tmp_path) -> Path:
    """Rates of `memrl bench l2m --json`: 16 updates/s (l2m 8), 0.3 s per episode."""
    rates = {agent: {"updates_per_s_cpu": 8.0 if agent == "l2m" else 16.0} for agent in AGENTS}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"agents": rates, "evaluation": {"cpu_seconds_per_episode": 0.3}}))
    return path


def _run(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _hours(line: str) -> float:
    """A plan line's estimate: ``  RUN: AGENT, seed K, H h [STATUS]``."""
    return float(line.split("[")[0].rsplit(",", 1)[1].split()[0])


def test_dry_run_prints_every_run_and_the_expected_cost(tmp_path, bench):
    out = tmp_path / "out"
    text = _run("--dry-run", "--data", str(tmp_path / "data"), "--out", str(out),
                "--bench", str(bench))  # fmt: skip
    first, *lines = text.splitlines()
    assert first.startswith("24 runs on CW10; expected ")
    assert first.endswith("0 finished, about " + first.rsplit("about ", 1)[1])
    runs = [line.split(":")[0].strip() for line in lines]
    assert sorted(runs) == sorted(f"{out}/{a}/seed{s}" for a in AGENTS for s in range(3))
    assert all(run.endswith("seed0") for run in runs[:8])  # seed by seed
    # l2m is the slowest (half the rate, and its identity keys): first in each seed's block.
    assert runs[0] == f"{out}/l2m/seed0" and runs[8] == f"{out}/l2m/seed1"
    hours = [_hours(line) for line in lines]
    # ft by hand: 20,000 updates at 16/s; 1 + 10 x 5 evaluations of 15 tasks x 10 episodes.
    ft = hours[runs.index(f"{out}/ft/seed0")]
    assert ft == pytest.approx((20_000 / 16 + 51 * 15 * 10 * 0.3) / 3600, abs=0.006)
    assert hours[0] > ft and hours[:8] == sorted(hours[:8], reverse=True)
    assert all(line.endswith("[not started]") for line in lines)
    assert not out.exists()  # nothing trained


def _log(run_dir: Path, agent: str, seed: int, updates: list[int], *, tasks=None,
         pretraining=("door-open-v3",), per_task: int = 2_000, initial: float = 0.5,
         end: float = 0.25) -> None:  # fmt: skip
    """An offline run's evaluation log in ``run_dir`` (finished when it reaches the last update):
    the stream's tasks at 0, the pretraining tasks at ``initial``, then at ``end``."""
    from memrl.agents.l2m.offline_config import OfflineConfig

    tasks = tasks or tuple(OfflineConfig().stream_tasks())
    run_dir.mkdir(parents=True, exist_ok=True)
    log = EvaluationLog(
        task_names=(*tasks, *pretraining), steps_per_task=per_task,
        schedule=tuple(range(len(tasks))), method=agent, stream="CW10", seed=seed,
        eval_episodes=10, deterministic=True, held_out=tuple(pretraining),
        pretraining=tuple(pretraining), learner=LEARNER,
    )  # fmt: skip
    log.set_initial([0.0] * len(tasks) + [initial] * len(pretraining), [0.0] * len(log.task_names))
    for update in updates:
        success = [0.5] * len(tasks) + [end] * len(pretraining)
        log.append(update, success, [0.0] * len(log.task_names))
    log.save(run_dir / "evaluations.json")


def test_dry_run_shows_each_runs_progress_and_the_hours_left(tmp_path, bench):
    out = tmp_path / "out"
    _log(out / "ft" / "seed0", "ft", 0, list(range(400, 20_001, 400)))  # finished
    _log(out / "l2" / "seed0", "l2", 0, [400, 800, 1_200, 1_600, 2_000])  # a tenth done
    options = ("--dry-run", "--data", "d", "--seeds", "0", "--bench", str(bench))
    fresh = _run(*options, "--out", str(tmp_path / "none"))
    text = _run(*options, "--out", str(out))
    lines = {line.split(":")[0].strip(): line for line in text.splitlines()[1:]}
    ft, l2 = lines[f"{out}/ft/seed0"], lines[f"{out}/l2/seed0"]
    assert ft.startswith(f"  {out}/ft/seed0: ft, seed 0, ") and ft.endswith("h [finished]")
    assert l2.endswith("h [at update 2000 of 20000]")
    assert lines[f"{out}/ewc/seed0"].endswith("[not started]")
    assert "1 finished, about" in text.splitlines()[0]

    def hours_left(output: str) -> float:
        return float(output.splitlines()[0].rsplit("about ", 1)[1].split()[0])

    expected = hours_left(fresh) - _hours(ft) - 0.1 * _hours(l2)
    assert hours_left(text) == pytest.approx(expected, abs=0.06)  # rounded to 0.1 h


def _defaults(study, **changes) -> argparse.Namespace:
    """The study's options as parsed (``changes`` replace some)."""
    args = study.parse_arguments(["--data", "d"])
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def _archive_run(study, archive: Path, agent: str, seed: int = 0, digest: str = DIGEST,
                 **changes) -> Path:  # fmt: skip
    """A finished run of ``agent`` in ``archive``, with the study's default config."""
    import dataclasses

    config = dataclasses.replace(study.base_config(_defaults(study)), agent=agent, seed=seed,
                                 **changes)  # fmt: skip
    run_dir = archive / agent / f"seed{seed}"
    _log(run_dir, agent, seed, list(range(400, 20_001, 400)))
    (run_dir / "config.json").write_text(json.dumps({"offline": True, **config.to_dict()}))
    (run_dir / "metrics.csv").write_text("global_step,losses/action_loss\n100,2.5\n")
    (run_dir / "tasks.json").write_text("{}")
    (run_dir / study.PROVENANCE).write_text(json.dumps({"pretrained_sha256": digest}))
    return run_dir


def test_dry_run_counts_archived_runs_as_finished_and_writes_nothing(study, tmp_path, bench):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    text = _run("--dry-run", "--data", "d", "--out", str(out), "--seeds", "0", "--archive",
                str(archive), "--bench", str(bench))  # fmt: skip
    line = next(line for line in text.splitlines() if f"{out}/l2/seed0:" in line)
    assert line.endswith("[finished, archived]")
    assert "1 finished" in text.splitlines()[0]
    assert not out.exists()


def test_archived_runs_are_restored_and_finished_runs_archived_thinned(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    args = _defaults(study, seeds=[0], agents=["l2", "ewc"], out=str(out))
    runs = study.plan(args, study.base_config(args))
    assert study.restore(runs, str(out), str(archive), DIGEST) == 1
    assert {p.name for p in (out / "l2" / "seed0").iterdir()} == set(study.RESULT_FILES)
    assert study.restore(runs, str(out), str(archive), DIGEST) == 0  # already there
    # A finished run of --out is archived as it finishes, or when skipped (no training here):
    # its results without checkpoints, and metrics.csv without the evaluations, thinned.
    ewc_config, ewc_dir = runs[1]
    _log(Path(ewc_dir), "ewc", 0, list(range(400, 20_001, 400)))
    (Path(ewc_dir) / study.PROVENANCE).write_text(json.dumps({"pretrained_sha256": DIGEST}))
    (Path(ewc_dir) / "checkpoints").mkdir()
    rows = [f"{step},{2.0 - step / 20_000:.3f},," for step in range(100, 20_001, 100)]
    rows += [f"{step},,0.5,0.5" for step in range(400, 20_001, 400)]
    (Path(ewc_dir) / "metrics.csv").write_text(
        "global_step,losses/action_loss,eval/average_success,retention/hammer-v3\n"
        + "\n".join(rows) + "\n"
    )  # fmt: skip
    kept = archive / "ewc" / "seed0"
    line = study.run_one(ewc_config, ewc_dir, str(kept), DIGEST)
    assert line == f"skipped {ewc_dir} (finished), archived to {kept}"
    assert sorted(p.name for p in kept.iterdir()) == sorted(
        ["evaluations.json", "metrics.csv", study.PROVENANCE]
    )
    thinned = (kept / "metrics.csv").read_text().splitlines()
    assert thinned[0] == "global_step,losses/action_loss"
    assert thinned[1] == "100,1.995" and thinned[-1] == "20000,1.000"
    assert len(thinned) - 1 <= study.METRICS_ROWS
    assert json.loads((kept / study.PROVENANCE).read_text()) == {"pretrained_sha256": DIGEST}


def test_an_archived_run_of_other_settings_or_another_model_is_refused(study, tmp_path):
    out = tmp_path / "out"
    args = _defaults(study, seeds=[0], agents=["l2"], out=str(out))
    runs = study.plan(args, study.base_config(args))
    archive = tmp_path / "budget"
    _archive_run(study, archive, "l2", updates_per_task=1_000)
    with pytest.raises(SystemExit, match="updates_per_task: 1000 there, 2000 here"):
        study.restore(runs, str(out), str(archive), DIGEST)
    archive = tmp_path / "model"
    _archive_run(study, archive, "l2", digest="cd" * 32)
    with pytest.raises(SystemExit, match="fine-tuned another model .SHA-256 cdcdcdcdcdcd"):
        study.restore(runs, str(out), str(archive), DIGEST)
    # Only where the data and model live may differ (their content is checked).
    archive = tmp_path / "moved"
    _archive_run(study, archive, "l2", data=["/elsewhere"], pretrained="/elsewhere/m.safetensors")
    assert study.restore(runs, str(out), str(archive), DIGEST) == 1


def test_an_unfinished_run_is_not_overwritten_by_its_archive(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    _archive_run(study, archive, "l2")
    _log(out / "l2" / "seed0", "l2", 0, [400])
    args = _defaults(study, seeds=[0], agents=["l2"], out=str(out))
    runs = study.plan(args, study.base_config(args))
    with pytest.raises(SystemExit, match="holds an unfinished run but .* a finished one"):
        study.restore(runs, str(out), str(archive), DIGEST)
    assert not EvaluationLog.load(out / "l2" / "seed0").finished


def test_the_table_is_rebuilt_from_the_archive_alone(study, tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "report"
    for seed in (0, 1):
        _archive_run(study, archive, "ft", seed)
        _archive_run(study, archive, "l2m", seed)
    _log(archive / "ewc" / "seed0", "ewc", 0, [400, 800])  # unfinished: left out
    text = _run("--table", "--archive", str(archive), "--out", str(out))
    assert text.startswith(f"4 finished runs in {archive}")
    section = (out / "RESULTS_SECTION.md").read_text()
    assert section.startswith("## L2M and its baselines: offline fine-tuning on CW10 (2,000 ")
    header = ("| agent | average performance | forgetting | pretraining success | "
              "pretraining retention |")  # fmt: skip
    assert header in section
    # Every task ends at 0.5 (none forgotten); the pretraining task falls from 0.5 to 0.25.
    ft = "| ft | 0.50 [0.50, 0.50] | 0.00 [0.00, 0.00] | 0.25 [0.25, 0.25] | 0.50 [0.50, 0.50] |"
    assert ft in section
    assert "| frozen model | 0.00 [0.00, 0.00] | - | 0.50 [0.50, 0.50] | - |" in section
    assert "- Runs: 4 of 24 finished" in section and "SHA-256 abababababab..." in section
    assert "forward transfer" not in section.split("\n\n")[1]  # no references: no column
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"ft", "l2m"}
    assert "| ft |" in text  # the section is printed too


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "--data is required: the datasets directory of scripts/l2m_data.py"),
        (["--table"], "--table reads the runs of --archive: give it"),
        (["--data", "d", "--seeds", "-1"], "argument --seeds: must be an integer >= 0, got -1"),
        (["--data", "d", "--agents", "sgd"], "argument --agents: invalid choice: 'sgd'"),
        (["--data", "d", "--evaluations-per-task", "3"],
         "--evaluations-per-task (3) must divide --updates-per-task (2000)"),
        (["--data", "d", "--tasks", "hammer-v2"], "--tasks: unknown task 'hammer-v2'"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_with_what_is_allowed(study, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        study.parse_arguments(arguments)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_missing_bench_file_is_named(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--data", "d", "--bench",
         str(tmp_path / "none.json")], capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "none.json does not exist: make it with `memrl bench l2m --json" in result.stderr


@pytest.mark.slow
def test_tiny_study_runs_end_to_end(tmp_path, bench, offline_data, pretrained_model):
    archive = tmp_path / "archive"
    options = ("--tiny", "--tasks", ",".join(STREAM), "--pretrain-eval-tasks", PRETRAINING_TASK,
               "--agents", "ft", "l2m", "--seeds", "0", "--jobs", "2", "--data", str(offline_data),
               "--pretrained", str(pretrained_model), "--bench", str(bench),
               "--archive", str(archive))  # fmt: skip
    out = _run(*options, "--out", str(tmp_path / "study"))
    assert out.count(", archived to ") == 2 and "| ft |" in out and "| l2m |" in out
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert set(report["metrics"]) == {"ft", "l2m"}
    section = (tmp_path / "study" / "RESULTS_SECTION.md").read_text()
    assert "**Tiny mode: a pipeline check, not a result.**" in section
    assert "core-hours (projected from the rates of `memrl bench l2m`" in section
    assert "- Model: model.safetensors (SHA-256 " in section
    kept = archive / "l2m" / "seed0"
    assert sorted(p.name for p in kept.iterdir()) == sorted(
        ["config.json", "tasks.json", "evaluations.json", "metrics.csv", "pretrained.json"]
    )
    # A fresh --out is filled from the archive without training, and the table is rebuilt from
    # the archive alone: the same metrics.
    again = _run(*options, "--out", str(tmp_path / "fresh"))
    assert "restored 2 finished runs" in again
    assert not any(line.startswith("trained ") for line in again.splitlines())
    table = _run("--table", "--archive", str(archive), "--out", str(tmp_path / "table"))
    rebuilt = json.loads((tmp_path / "table" / "report.json").read_text())
    assert rebuilt["metrics"] == report["metrics"]
    assert "| l2m |" in table


def test_the_committed_archive_rebuilds_the_results_section_exactly(tmp_path):
    """docs/RESULTS.md's L2M study section is what the archive in assets/results/l2m gives."""
    root = SCRIPT.parents[1]
    out = tmp_path / "table"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--table", "--archive", str(root / "assets/results/l2m"),
         "--out", str(out)],
        check=True, capture_output=True, cwd=root,
    )  # fmt: skip
    section = (out / "RESULTS_SECTION.md").read_text()
    results = (root / "docs" / "RESULTS.md").read_text()
    heading = section.splitlines()[0]
    assert heading.startswith("## L2M and its baselines")

    # At the end of RESULTS, but for the day it was rebuilt and this test's paths in the command.
    def comparable(lines: list[str]) -> list[str]:
        return [line for line in lines if "date 20" not in line and "- Command:" not in line]

    committed = results[results.index(heading) :].splitlines()
    assert comparable(committed) == comparable(section.splitlines())
