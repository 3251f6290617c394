"""``memrl pretrain`` end to end (tiny), its resume, and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch

from memrl.agents.pretrained.checkpoint import load_model
from memrl.agents.pretrained.tasks import tasks_from_json
from memrl.cli import main

from .conftest import METAWORLD_TASKS, TINY_MODEL

MODEL_OPTIONS: list[str] = []
for field, value in TINY_MODEL.items():
    MODEL_OPTIONS += [f"--{field.replace('_', '-')}", str(value)]
TINY = ["--steps", "4", "--batch-size", "8", "--checkpoint-every", "2", "--warmup-steps", "1",
        *MODEL_OPTIONS]  # fmt: skip


def _files(directory) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*")}


def test_pretrain_writes_a_model_load_model_reads_and_evaluates_every_task(
    tmp_path, metaworld_data, capsys
):
    data = tmp_path / "data"
    shutil.copytree(metaworld_data, data)
    data_files = _files(data)
    run = tmp_path / "run"
    argv = ["pretrain", "--data", str(data), "--out", str(run), *TINY, "--eval-episodes", "1",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]  # nothing elsewhere
    assert _files(data) == data_files
    assert {p.name for p in run.iterdir()} >= {
        "config.json", "tasks.json", "metrics.csv", "tb", "checkpoints", "model.safetensors",
        "evaluation.json",
    }  # fmt: skip
    model, metadata = load_model(run / "model.safetensors")
    assert model.config.embed_dim == TINY_MODEL["embed_dim"]
    assert [t.name for t in tasks_from_json(metadata["tasks"])] == sorted(METAWORLD_TASKS)
    report = json.loads((run / "evaluation.json").read_text())
    assert [(t["task"], t["episodes"]) for t in report["tasks"]] == [
        (name, 1) for name in sorted(METAWORLD_TASKS)
    ]
    assert all(t["success_rate"] in (0.0, 1.0) for t in report["tasks"])
    printed = capsys.readouterr().out
    assert f"pretrained the MDDT on 2 tasks for 4 updates -> {run / 'model.safetensors'}" in printed
    assert "| reach-v3 | metaworld | 1 |" in printed
    # A second run in the same directory needs --resume; --resume alone takes the run's options.
    assert main(argv) == 2
    assert "already holds" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(run), "--resume", "--eval-episodes", "0",
                 "--no-progress"]) == 0  # fmt: skip
    assert "for 4 updates, resumed at update 4" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["data"] == [str(data)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "0"], "error: --steps must be >= 1, got 0"),
        (["--num-heads", "3"], "error: --num-heads (3) must divide --embed-dim (64)"),
        (["--action-head", "bins"], "error: --action-head must be one of discrete, regression"),
        (["--learning-rate", "-1"], "error: --learning-rate must be > 0, got -1.0"),
        (["--tasks", "push-v3"], "error: --tasks asks for ['push-v3'], which no dataset in --data"),
        (["--tasks", ", ,"], "error: --tasks must name at least one task, got ', ,'"),
    ],
)
def test_bad_options_are_named_as_typed(tmp_path, metaworld_data, capsys, extra, message):
    argv = ["pretrain", "--data", str(metaworld_data), "--out", str(tmp_path / "run"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_directories_are_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--data", str(tmp_path / "nope")], f"--data {tmp_path / 'nope'}: no such directory"),
        (["--data", str(empty)], f"--data {empty} holds no Minari dataset"),
        ([], "memrl pretrain needs --data DIR [DIR ...]"),
        (["--resume"], "--resume: " + str(tmp_path / "run") + " does not exist"),
    ]
    for extra, message in cases:
        assert main(["pretrain", "--out", str(tmp_path / "run"), *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    other = tmp_path / "ppo-run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"env_id": "memrl/DelayedMatch-v0"}))
    assert main(["pretrain", "--out", str(other), "--resume"]) == 2
    assert "holds a run of another trainer, not `memrl pretrain`'s" in capsys.readouterr().err


def test_a_value_of_the_wrong_type_is_a_three_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--out", "x", "--steps", "many"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert lines[1] == "memrl pretrain: error: argument --steps: must be an integer, got 'many'"
    assert lines[2] == "see: memrl pretrain --help"


@pytest.mark.slow
def test_a_killed_process_resumes_to_the_model_of_an_uninterrupted_run(tmp_path, metaworld_data):
    command = [sys.executable, "-m", "memrl.cli", "pretrain", "--data", str(metaworld_data),
               "--steps", "2000", "--batch-size", "8", "--checkpoint-every", "100",
               "--log-every", "100", "--eval-episodes", "0", "--threads", "1", "--no-progress",
               *MODEL_OPTIONS]  # fmt: skip
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    killed = subprocess.Popen([*command, "--out", str(tmp_path / "part")])
    latest = tmp_path / "part" / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 120
    while not latest.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.kill()  # SIGKILL: no handler, no finally block runs
    killed.wait()
    assert not (tmp_path / "part" / "model.safetensors").exists()  # it died mid-run
    subprocess.run([*command, "--out", str(tmp_path / "part"), "--resume"], check=True)
    whole, _ = load_model(tmp_path / "whole" / "model.safetensors")
    resumed, _ = load_model(tmp_path / "part" / "model.safetensors")
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
