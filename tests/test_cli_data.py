"""``memrl data``: collect Meta-World datasets, measure the experts, inspect a dataset."""

import json

import numpy as np
import pytest

from memrl.cli import main
from memrl.data import load_episodes


def test_collect_then_info_reads_what_was_collected(tmp_path, capsys):
    out = tmp_path / "datasets"
    argv = ["data", "collect", "--tasks", "reach-v3", "--out", str(out),
            "--episodes-per-task", "3", "--noise-levels", "0,0.5", "--random-fraction", "0.3",
            "--seed", "4", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    path = out / "memrl/metaworld/reach-v3/scripted-v0"
    dataset = load_episodes(path)
    assert len(dataset) == 3
    settings = dataset.metadata["memrl"]["settings"]
    assert settings["noise_levels"] == [0.0, 0.5]
    assert settings["random_fraction"] == 0.3
    assert settings["seed"] == 4
    policies = sorted(str(e.metadata["policy"]) for e in dataset.episodes)
    assert "random" in policies
    capsys.readouterr()
    assert main(["data", "info", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "episodes   3" in printed
    assert f"steps      {sum(len(e) for e in dataset.episodes)}" in printed
    # Run again: the complete task is skipped, the data unchanged.
    assert main(argv) == 0
    again = load_episodes(path)
    assert np.array_equal(again.episodes[0].actions, dataset.episodes[0].actions)


def test_experts_prints_the_table_and_writes_json(tmp_path, capsys):
    table = tmp_path / "experts.json"
    argv = ["data", "experts", "--tasks", "reach-v3", "--episodes", "2", "--noise-levels", "0,1",
            "--json", str(table), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(table.read_text())
    assert report["command"] == "memrl " + " ".join(argv)
    assert set(report["success"]["reach-v3"]) == {"expert", "noise-1"}
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["task", "expert", "noise-1"]
    assert printed.splitlines()[1].split()[0] == "reach-v3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "collect", "--out", "X", "--tasks", "hammer"], "hammer"),
        (["data", "collect", "--out", "X", "--noise-levels", "0,-1"], "--noise-levels"),
        (["data", "collect", "--out", "X", "--random-fraction", "1"], "--random-fraction"),
        (["data", "collect", "--out", "X", "--episodes-per-task", "0"], "--episodes-per-task"),
        (["data", "info", "no/such/dataset"], "no/such/dataset"),
    ],
)
def test_bad_input_is_a_clear_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X").exists()  # nothing written before the error
