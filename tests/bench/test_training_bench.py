from __future__ import annotations

from memrl.bench.training import bench_training, format_training_table


def test_training_throughput_rows_and_ratio_table():
    rows = bench_training(
        env_id="memrl/DelayedMatch-Easy-v0",
        agents=[("none", {}), ("sb3-recurrent-ppo", {})],
        steps=2048,
    )
    assert [r["agent"] for r in rows] == ["none", "sb3-recurrent-ppo"]
    assert all(r["steps_per_s"] > 0 for r in rows)
    table = format_training_table(rows)
    assert "x RecurrentPPO" in table and "1.0x" in table
