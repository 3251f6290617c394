"""The L2M part of ``memrl run demo`` on the tiny model: its table, its data, its skip."""

from __future__ import annotations

from memrl.demo import format_l2m, l2m_demo

from .conftest import PRETRAINING_TASK, STREAM


def test_l2m_and_ft_are_compared_on_the_slice_and_resume(tmp_path, capsys, offline_data,
                                                         pretrained_model):  # fmt: skip
    options = dict(pretrained=pretrained_model, tasks=STREAM, updates_per_task=4, eval_episodes=1,
                   data=[str(offline_data)], pretraining_tasks=PRETRAINING_TASK)  # fmt: skip
    rows = l2m_demo(tmp_path, **options)
    assert [row.agent for row in rows] == ["l2m", "ft"]
    for row in rows:
        assert row.tasks == list(STREAM) and len(row.after_own_task) == len(row.at_end) == 2
        assert row.pretraining_tasks == [PRETRAINING_TASK]
        assert row.pretraining_before == 0.0 and row.pretraining_retention is None  # random model
        assert (tmp_path / row.agent / "evaluations.json").exists()
    # The data hold a pretraining task, so l2m trained its identity keys.
    assert "without identity keys" not in capsys.readouterr().out
    text = format_l2m(rows)
    assert text.splitlines()[0].startswith("agent  hammer-v3: after it  after push-wall-v3")
    # Run again: the finished runs are read, not trained again.
    again = l2m_demo(tmp_path, **options)
    assert [row.at_end for row in again] == [row.at_end for row in rows]


def test_the_slice_is_collected_when_no_data_are_given(tmp_path, capsys, pretrained_model):
    rows = l2m_demo(tmp_path, pretrained=pretrained_model, tasks=STREAM, updates_per_task=2,
                    eval_episodes=1, episodes_per_task=1)  # fmt: skip
    out = capsys.readouterr().out
    assert f"collected 1 scripted episodes of each of {', '.join(STREAM)}" in out
    assert "l2m runs without identity keys" in out
    assert rows[0].pretraining_tasks == []  # none of the five is in the tiny model's table
    assert (tmp_path / "data" / "memrl" / "metaworld" / STREAM[0]).is_dir()


def test_the_part_is_skipped_without_the_pretrained_model(tmp_path, capsys):
    assert l2m_demo(tmp_path, pretrained=tmp_path / "none.safetensors") is None
    assert "skipped the L2M part: no pretrained model at" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_the_command_checks_the_slice_before_running_anything(tmp_path, capsys):
    from memrl.cli import main

    out = tmp_path / "demo"
    assert main(["run", "demo", "--l2m-tasks", "hammer-v3", "--out", str(out)]) == 2
    assert "--l2m-tasks needs at least two tasks, got 'hammer-v3'" in capsys.readouterr().err
    assert main(["run", "demo", "--l2m-tasks", "hammer-v3,walker-stand", "--out", str(out)]) == 2
    assert "unknown Meta-World task 'walker-stand'" in capsys.readouterr().err
    assert not out.exists()
