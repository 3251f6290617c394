from __future__ import annotations

from pathlib import Path

from memrl.agents import sb3_baselines
from memrl.bench.training import bench_training, format_training_table


def test_training_throughput_rows_and_ratio_table(monkeypatch):
    files: list[list[str]] = []
    train_sb3 = sb3_baselines.train_sb3

    def train_and_list(config, run_dir, **kwargs):
        run = train_sb3(config, run_dir, **kwargs)
        files.append(sorted(str(p.relative_to(run_dir)) for p in Path(run_dir).rglob("*")))
        return run

    monkeypatch.setattr(sb3_baselines, "train_sb3", train_and_list)
    rows = bench_training(
        env_id="memrl/DelayedMatch-Easy-v0",
        agents=[("none", {}), ("sb3-recurrent-ppo", {})],
        steps=2048,
    )
    assert [r["agent"] for r in rows] == ["none", "sb3-recurrent-ppo"]
    assert all(r["steps_per_s"] > 0 for r in rows)
    # like memory PPO's: no TensorBoard, no checkpoint but the final one
    assert files == [["checkpoints", "checkpoints/final.zip", "config.json", "metrics.csv"]]
    table = format_training_table(rows)
    assert "x RecurrentPPO" in table and "1.0x" in table
