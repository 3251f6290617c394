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


def test_memory_ppo_is_timed_on_recurrent_ppos_schedule(monkeypatch):
    """Like for like: the same rollout size, epochs and minibatch size as RecurrentPPO's."""
    from memrl.agents import ppo
    from memrl.agents.sb3_baselines import SB3Config, hyperparameters

    configs = []
    trainer = ppo.PPOTrainer

    def recording(config, *args, **kwargs):
        configs.append(config)
        return trainer(config, *args, **kwargs)

    monkeypatch.setattr(ppo, "PPOTrainer", recording)
    bench_training(env_id="memrl/DelayedMatch-Easy-v0", agents=[("none", {})], steps=1024)
    (config,) = configs
    sb3 = hyperparameters(SB3Config(algorithm="recurrent-ppo"))
    assert config.num_envs * config.num_steps == 8 * sb3["n_steps"]
    assert config.update_epochs == sb3["n_epochs"] == 10
    rollout = config.num_envs * config.num_steps
    assert rollout // config.num_minibatches == sb3.get("batch_size", 128) == 128
