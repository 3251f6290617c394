from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from memrl.agents.continual.reference import save_reference_curves
from memrl.cli import main
from memrl.envs import ALL

BALLET = "memrl/BalletGrid-2-delay16-v0"


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("list", "bench", "play", "render", "run"):
        assert command in out


def test_list_prints_every_registered_env(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in ALL:
        assert env_id in out


def test_unknown_env_id_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "memrl/Balet-2-delay16-v0", "--out", "x.gif"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown env id" in err and "memrl list" in err


def test_bench_envs_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "envs", "--ids", BALLET, "--seconds", "0.05", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["id"] == BALLET
    assert row["single_steps_per_s"] > 0 and row["vector_steps_per_s"] > 0
    assert report["command"].startswith("memrl bench envs")
    assert report["machine"]["cores"] >= 1
    assert BALLET in capsys.readouterr().out


def test_render_gif_and_png(tmp_path):
    gif = tmp_path / "ballet.gif"
    assert main(["render", BALLET, "--out", str(gif), "--max-frames", "20"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 20
    png = tmp_path / "ballet.png"
    assert main(["render", BALLET, "--out", str(png), "--max-frames", "30"]) == 0
    assert np.asarray(Image.open(png)).ndim == 3


def test_render_rejects_unknown_format(tmp_path, capsys):
    assert main(["render", BALLET, "--out", str(tmp_path / "x.mp4")]) == 2
    assert ".gif" in capsys.readouterr().err


def test_play_reads_actions_from_stdin():
    # Enter repeats the last action; "quit" stops; a bad word gets a helpful message.
    typed = "\n".join(["0", "", "bogus", "quit"]) + "\n"
    out = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "play", BALLET, "--seed", "1"],
        input=typed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "unknown action 'bogus'" in out
    assert out.count("action>") >= 3


def test_train_stream_and_eval_continual(tmp_path, capsys):
    run = tmp_path / "cw"
    kwargs = (
        '{"eval_every": 100, "eval_episodes": 1, "start_steps": 50, "update_after": 50, '
        '"tensorboard": false, "hidden_size": 32}'
    )
    code = main(["train", "--stream", "CW10", "--tasks", "reach-v3,button-press-v3",
                 "--steps-per-task", "200", "--method", "l2", "--out", str(run),
                 "--no-progress", "--continual-kwargs", kwargs])  # fmt: skip
    assert code == 0
    assert main(["eval", str(run)]) == 0
    report = json.loads((run / "report.json").read_text())
    assert "forward transfer omitted" in report["details"]["reference"]
    markdown = (run / "report.md").read_text()
    assert "average performance" in markdown
    assert f"- {report['details']['reference']}" in markdown  # the reader sees why FT is "-"

    # With single-task reference curves, forward transfer is computed from them.
    reference = save_reference_curves(
        tmp_path / "ref.json",
        {"reach-v3": [[0.0, 0.0]], "button-press-v3": [[0.0, 0.0]]},
        steps_per_task=200, eval_every=100, eval_episodes=1, seeds=[0],
    )  # fmt: skip
    assert main(["eval", str(run), "--reference", str(reference)]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["details"]["reference"].startswith(f"reference curves: {reference}")


def test_train_needs_an_env_or_a_stream(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x")]) == 2
    assert "--env" in capsys.readouterr().err


def test_unknown_continual_option_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--stream", "CW10", "--out", str(tmp_path / "x"),
                 "--continual-kwargs", '{"bogus": 1}'])  # fmt: skip
    assert code == 2
    assert "bogus" in capsys.readouterr().err


def test_eval_reference_must_exist_and_suit_a_continual_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tmp_path), "--reference", str(tmp_path / "nope.json")])
    assert exit_info.value.code == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "ref.json").write_text("{}")
    assert main(["eval", str(tmp_path), "--reference", str(tmp_path / "ref.json")]) == 2
    assert "continual runs (trained with --stream) only" in capsys.readouterr().err
