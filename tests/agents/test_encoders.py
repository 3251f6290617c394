"""Observation encoders: the grid encoder that reads a flat symbolic grid in its 3-D layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from memrl.agents.encoders import (
    CategoricalEncoder,
    GridEncoder,
    ObservationEncoder,
    encoder_for,
)
from memrl.agents.ppo import PPOTrainer, policy_from_checkpoint, read_checkpoint
from memrl.agents.ppo_config import PPOConfig
from memrl.envs.ballet import GRID_SHAPE

GRID = spaces.Box(0, np.tile(np.array([4, 3], dtype=np.uint8), 9), (18,), np.uint8)  # 3x3x2


def test_a_flat_grid_with_a_layout_gets_the_grid_encoder_and_without_one_the_flat_one():
    assert isinstance(encoder_for(GRID, (3, 3, 2)), GridEncoder)
    assert isinstance(encoder_for(GRID), CategoricalEncoder)
    with pytest.raises(ValueError, match=r"observation shape \(4, 4, 2\) does not fit"):
        encoder_for(GRID, (4, 4, 2))


def test_the_grid_encoder_sees_relative_positions_the_same_anywhere():
    """Shared embeddings and convolutions: a pattern shifted by a cell gives shifted features."""
    torch.manual_seed(0)
    encoder = GridEncoder(np.tile(np.array([4, 3]), 25), (5, 5, 2), out_dim=4)
    grid = torch.zeros(1, 5, 5, 2, dtype=torch.long)
    grid[0, 2, 1] = torch.tensor([2, 1])
    shifted = torch.roll(grid, shifts=1, dims=2)  # the pattern one cell east: (2, 2)
    embed = lambda g: torch.cat(  # noqa: E731
        [e(g[..., k]) for k, e in enumerate(encoder.channels)], dim=-1
    ).permute(0, 3, 1, 2)
    first = encoder.conv[0](embed(grid))
    second = encoder.conv[0](embed(shifted))
    # Away from the padded border, the first convolution's map moves with the pattern.
    torch.testing.assert_close(first[..., 2, 1], second[..., 2, 2])
    assert not torch.allclose(first[..., 2, 1], first[..., 2, 2])
    assert encoder(grid.flatten(1)).shape == (1, 4)
    torch.testing.assert_close(encoder(grid.flatten(1)), encoder(grid))


def test_memory_ppo_reads_ballets_grid_with_the_conv_encoder_unless_told_flat(tmp_path):
    config = PPOConfig(env_id="memrl/BalletGrid-2-delay16-v0", core="none", num_envs=2,
                       num_steps=8, total_steps=16, num_minibatches=2,
                       tensorboard=False)  # fmt: skip
    conv = PPOTrainer(config, tmp_path / "conv", progress=False)
    assert isinstance(conv.policy.encoder.parts["grid"], GridEncoder)
    assert conv.policy.encoder.parts["grid"].shape == GRID_SHAPE
    flat = PPOTrainer(
        PPOConfig(**{**config.__dict__, "grid_encoder": "flat"}), tmp_path / "flat", progress=False
    )
    assert isinstance(flat.policy.encoder.parts["grid"], CategoricalEncoder)
    with pytest.raises(ValueError, match=r"grid_encoder must be one of \('conv', 'flat'\)"):
        PPOConfig(**{**config.__dict__, "grid_encoder": "cnn"}).validate()


def test_a_checkpoint_from_before_the_grid_encoder_loads_with_the_flat_one(tmp_path):
    config = PPOConfig(env_id="memrl/BalletGrid-2-delay16-v0", core="none", num_envs=2,
                       num_steps=8, total_steps=16, tensorboard=False, num_minibatches=2,
                       grid_encoder="flat")  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    trainer.train()
    _, payload = read_checkpoint(tmp_path)
    del payload["config"]["grid_encoder"]  # as written before the option existed
    policy, loaded = policy_from_checkpoint(payload)
    assert loaded.grid_encoder == "flat"
    assert isinstance(policy.encoder.parts["grid"], CategoricalEncoder)


def test_observation_encoder_passes_each_keys_layout():
    space = spaces.Dict({"grid": GRID, "instruction": spaces.Discrete(3)})
    encoder = ObservationEncoder(space, 8, {"grid": (3, 3, 2)})
    assert isinstance(encoder.parts["grid"], GridEncoder)
    assert isinstance(encoder.parts["instruction"], CategoricalEncoder)


@pytest.mark.slow
def test_memory_free_ppo_learns_to_walk_to_a_lone_dancer_with_the_conv_encoder(tmp_path):
    """Navigation first: with one dancer no memory is needed; the flat encoder's policy stays
    uniform (entropy 2.05-2.07 of 2.08) through 150k steps, the conv encoder's reaches the
    dancer every time (about 75 s on a free core)."""
    config = PPOConfig(env_id="memrl/BalletGrid-2-delay16-v0", env_kwargs={"num_dancers": 1},
                       core="none", total_steps=150_000, tensorboard=False)  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    trainer.train()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = [dict(zip(header, row.split(","), strict=True)) for row in rows[-10:]]
    success = np.mean([float(r["charts/success_rate"]) for r in last if r["charts/success_rate"]])
    length = np.mean(
        [float(r["charts/episodic_length"]) for r in last if r["charts/episodic_length"]]
    )
    assert success >= 0.95 and length < 90  # random walks: 0.8 and about 160 steps


def test_the_navigation_table_in_results_is_the_archived_runs():
    """docs/RESULTS.md's flat-vs-conv table, recomputed from assets/results/ballet_navigation."""
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    results = (root / "docs" / "RESULTS.md").read_text()
    for name, label in (
        ("flat", "flat (`--grid-encoder flat`)"),
        ("conv", "conv (now the default)"),
    ):
        with (root / "assets/results/ballet_navigation" / name / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))

        def spans(key: str, digits: int, rows: list = rows) -> str:
            means = []
            for start in range(0, 150_000, 25_000):
                values = [
                    float(r[key])
                    for r in rows
                    if start <= int(r["global_step"]) < start + 25_000 and r[key]
                ]
                means.append(f"{np.mean(values):.{digits}f}")
            return ", ".join(means)

        row = (
            f"| {label} | {spans('charts/success_rate', 2)} | "
            f"{spans('charts/episodic_length', 0)} | {spans('losses/entropy', 2)} |"
        )
        assert row in results


def test_the_recall_probe_table_in_results_is_the_archived_run():
    """docs/RESULTS.md's recall-probe table, recomputed from assets/results/ballet_probe."""
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    results = (root / "docs" / "RESULTS.md").read_text()
    run = root / "assets/results/ballet_probe/hcam-supervised"
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert '"answer_step": "choice"' in (run / "config.json").read_text().replace("\n", "")

    def mean(key: str, low: int) -> float:
        span = [r[key] for r in rows if low < int(r["global_step"]) <= low + 100_000]
        return float(np.mean([float(v) for v in span if v not in ("", "nan")]))

    for low in range(0, 400_000, 100_000):
        accuracy, loss = mean("losses/answer_accuracy", low), mean("losses/answer_loss", low)
        row = f"| {low // 1000}k-{(low + 100_000) // 1000}k | {accuracy:.2f} | {loss:.2f} |"
        assert row in results
