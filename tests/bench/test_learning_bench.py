"""memrl bench learning: training stops at the success level, for memory PPO and for SB3."""

from __future__ import annotations

import dataclasses
import json

import pytest

from memrl.bench.learning import TimeToLearn, format_learning_table, time_to_success
from memrl.cli import main

ENV = "memrl/DelayedMatch-Easy-v0"  # random play wins about a quarter of its episodes


def test_memory_ppo_stops_at_the_first_update_with_100_episodes_at_the_level():
    reached = time_to_success(("none", {}), seed=0, env_id=ENV, threshold=0.05, max_steps=65_536)
    assert reached.reached and reached.success >= 0.05
    # 2,048 env steps per update: it stops at the first update that has 100 finished episodes,
    # not at the budget.
    assert reached.steps <= 4 * 2048
    never = time_to_success(("none", {}), seed=0, env_id=ENV, threshold=1.0, max_steps=6_144)
    assert not never.reached and never.steps == 6_144 and never.success < 1.0


def test_sb3_stops_after_the_rollout_that_reaches_the_level():
    run = time_to_success(
        ("sb3-recurrent-ppo", {}), seed=0, env_id=ENV, threshold=0.05, max_steps=65_536
    )
    assert run.reached and run.success >= 0.05
    assert run.steps <= 8 * 1024  # a few rollouts of 8 envs x 128 steps, not the budget


def test_table_marks_runs_that_did_not_reach_the_level():
    rows = [
        {"agent": "hcam", "core_kwargs": {"width": 64}, "seed": s, "reached": True,
         "seconds": 20.0 + s, "steps": 40_960, "success": 0.93} for s in range(3)
    ] + [{"agent": "lstm", "core_kwargs": {}, "seed": 0, "reached": False, "seconds": 300.4,
          "steps": 300_032, "success": 0.31}]  # fmt: skip
    table = format_learning_table(rows)
    assert "20, 21, 22 (median 21)" in table
    assert "300* (median 300)" in table and "300k" in table
    assert "* not reached within the budget" in table


def test_cli_writes_the_runs_and_refuses_bad_options(tmp_path, capsys):
    out = tmp_path / "learning.json"
    code = main(["bench", "learning", "--agents", "none", "--seeds", "0", "--threshold", "0.05",
                 "--max-steps", "8192", "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("memrl bench learning")
    (run,) = report["runs"]
    assert run["agent"] == "none" and run["reached"] is True
    assert set(run) == {f.name for f in dataclasses.fields(TimeToLearn)}
    with pytest.raises(SystemExit, match="unknown memory-PPO setting.s. epochs; allowed: "):
        main(["bench", "learning", "--ppo", '{"epochs": 3}'])
    with pytest.raises(SystemExit, match="--threshold 1.5: a success level is at most 1"):
        main(["bench", "learning", "--threshold", "1.5"])
