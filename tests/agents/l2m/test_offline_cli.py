"""``memrl train --offline`` and ``memrl eval`` on its runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from memrl.agents.l2m.offline_config import AGENTS, OfflineConfig
from memrl.cli import build_parser, main
from memrl.cli.config_options import field_docs, option_name

from .conftest import PRETRAINING_TASK, STREAM


def _train_options(data, model, run) -> list[str]:
    return ["train", "--offline", "--tasks", ",".join(STREAM), "--data", str(data),
            "--pretrained", str(model), "--updates-per-task", "4", "--warmup-steps", "1",
            "--evaluations-per-task", "1",
            "--eval-episodes", "1", "--batch-size", "8", "--identity-key-updates", "2",
            "--pretrain-eval-tasks", PRETRAINING_TASK, "--no-tensorboard", "--no-progress",
            "--out", str(run)]  # fmt: skip


def test_train_offline_then_eval_prints_continual_worlds_metrics_and_retention(
    tmp_path, capsys, offline_data, pretrained_model
):
    run = tmp_path / "run"
    assert main([*_train_options(offline_data, pretrained_model, run), "--agent", "l2m"]) == 0
    out = capsys.readouterr().out
    assert f"fine-tuned the pretrained model offline (l2m) on {' > '.join(STREAM)} for 8 " in out
    config = json.loads((run / "config.json").read_text())
    assert config["offline"] is True and config["agent"] == "l2m"
    assert config["pretrained"] == str(pretrained_model.absolute())
    # --resume alone continues the run with its own options (here: nothing is left to train).
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "for 8 updates, resumed at update 8 ->" in capsys.readouterr().out

    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    columns = "average performance | forgetting | forward transfer | pretraining retention"
    assert out.startswith(f"| method | {columns} |")
    assert "| l2m | 0.00 | 0.00 | - |" in out  # a random tiny model solves nothing
    assert "pretraining retention undefined: the frozen model solved none" in out
    assert "Retention matrix (l2m, seed 0):\n| stage | hammer-v3 | push-wall-v3 |" in out
    assert "| initial |" in out and f"| 1: {STREAM[1]} |" in out
    assert "Pretraining tasks: success of the frozen model -> after the last task" in out
    assert "--evaluations-per-task 5" in out  # one evaluation per task: Continual World wants 5
    report = json.loads((run / "report.json").read_text())
    assert report["title"].startswith("Offline fine-tuning of the pretrained MDDT on hammer-v3")
    assert "single-task curves of the same learner" in report["details"]["reference"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--agent", "l2m"], "--agent l2m applies only to offline fine-tuning of the pretrained "
         "model: add --offline"),
        (["--stream", "CW10", "--pretrained", "m.safetensors"],
         "--pretrained applies only to offline fine-tuning"),
        (["--offline", "--agent", "hcam"], "--offline fine-tunes the pretrained model with --agent "
         "l2m, l2m-oracle, l2p, ft, lora, l2, ewc, multitask; got --agent hcam"),
        (["--offline", "--method", "l2", "--steps-per-task", "5"],
         "--steps-per-task, --method apply not to offline fine-tuning (--offline)"),
        (["--offline", "--num-envs", "4"], "--num-envs applies not to offline fine-tuning"),
        (["--offline", "--data", "d", "--updates-per-task", "200", "--evaluations-per-task", "3"],
         "--evaluations-per-task (3) must divide --updates-per-task (200)"),
        (["--offline", "--data", "d", "--updates-per-task", "10"],
         "--warmup-steps (100) must be at most --updates-per-task (10)"),
        (["--offline"], "--data needs at least one datasets directory"),
        (["--offline", "--data", "d", "--tasks", "hammer-v3,nope-v3"], "--tasks: unknown task"),
        (["--offline", "--data", "d", "--held-out", "door-open-v3"],
         "['door-open-v3'] are in both --held-out and --pretrain-eval-tasks"),
    ],
)  # fmt: skip
def test_offline_options_are_checked_and_named_as_typed(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert main(["train", *options, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_pretrained_model_says_how_to_make_one(tmp_path, capsys, offline_data):
    out, missing = tmp_path / "run", tmp_path / "models" / "mddt.safetensors"
    argv = ["train", "--offline", "--data", str(offline_data), "--pretrained", str(missing)]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--pretrained " in err and f"{missing}: no such file" in err
    assert "Pretrain a model with `memrl pretrain --data DIR --out RUN_DIR`" in err
    assert not out.exists()


def test_every_offline_field_has_help_and_an_option():
    (train,) = [a for a in build_parser()._actions if hasattr(a, "choices") and a.choices
                and "train" in a.choices]  # fmt: skip
    parser = train.choices["train"]
    options = {o for action in parser._actions for o in action.option_strings}
    assert set(field_docs(OfflineConfig)) == set(OfflineConfig.__dataclass_fields__)
    for field in OfflineConfig.__dataclass_fields__:
        assert option_name(field) in options, field
    (agent,) = [a for a in parser._actions if "--agent" in a.option_strings]
    assert set(AGENTS) <= set(agent.choices)


def test_the_offline_config_imports_without_torch():
    code = "import sys, memrl.agents.l2m.offline_config; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_default_model_is_the_shipped_one_from_any_working_directory(
    tmp_path, monkeypatch, offline_data
):
    """Without --pretrained: the checkout's assets/pretrained/mddt.safetensors, not the cwd's."""
    from pathlib import Path

    import memrl.agents.l2m.offline_trainer as offline_trainer

    seen = []

    class Recorder:  # stands in for the trainer: records the config it is given
        def __init__(self, config, *args, **kwargs):
            seen.append(config)
            raise ValueError("recorded")

    monkeypatch.setattr(offline_trainer, "OfflineTrainer", Recorder)
    monkeypatch.chdir(tmp_path)
    options = _train_options(offline_data, "unused", tmp_path / "run")
    at = options.index("--pretrained")
    assert main(options[:at] + options[at + 2 :]) == 2  # "error: recorded"
    shipped = Path(__file__).resolve().parents[3] / "assets" / "pretrained" / "mddt.safetensors"
    assert seen[0].pretrained == str(shipped) and shipped.is_file()
