"""Replay buffers: FIFO order, reservoir uniformity, incremental checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from memrl.agents.continual.buffers import ReplayBuffer, ReservoirBuffer


def _fill(buffer: ReplayBuffer, first: int, count: int) -> None:
    """Transitions whose reward (and observations) carry their index."""
    for i in range(first, first + count):
        obs = np.full(buffer.observations.shape[1], i, np.float32)
        buffer.add(obs, np.zeros(buffer.actions.shape[1], np.float32), float(i), obs + 1, False)


def test_fifo_overwrites_the_oldest_and_clears():
    buffer = ReplayBuffer(5, 3, 2)
    _fill(buffer, 0, 7)
    assert len(buffer) == 5 and sorted(buffer.rewards.tolist()) == [2, 3, 4, 5, 6]
    batch = buffer.sample(64)
    assert batch.observations.shape == (64, 3) and batch.rewards.min() >= 2
    buffer.clear()
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    """Every transition of the stream is kept with probability capacity / seen (chi-square)."""
    capacity, stream, trials, bins = 50, 1000, 300, 10
    counts = np.zeros(bins)
    for trial in range(trials):
        buffer = ReservoirBuffer(capacity, 1, 1, seed=trial)
        _fill(buffer, 0, stream)
        assert len(buffer) == capacity and buffer.seen == stream
        kept = buffer.rewards.astype(int)
        assert len(set(kept.tolist())) == capacity  # distinct transitions
        counts += np.bincount(kept * bins // stream, minlength=bins)
    expected = trials * capacity / bins  # the same share of every tenth of the stream
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 27.88, (counts, chi_square)  # 99.9% quantile, 9 degrees of freedom
    # A FIFO buffer of the same size would hold only the last tenth.
    fifo = ReplayBuffer(capacity, 1, 1)
    _fill(fifo, 0, stream)
    assert fifo.rewards.min() >= stream - capacity


def test_reservoir_is_never_cleared_by_filling():
    buffer = ReservoirBuffer(100, 1, 1)
    _fill(buffer, 0, 60)
    assert sorted(buffer.rewards[:60].tolist()) == list(range(60))  # below capacity: keeps all


@pytest.mark.parametrize("cls", [ReplayBuffer, ReservoirBuffer])
def test_incremental_checkpoints_restore_the_buffer_exactly(tmp_path, cls):
    buffer = cls(40, 3, 2, seed=1)
    _fill(buffer, 0, 25)
    buffer.save_parts(tmp_path)
    state = buffer.state_dict()
    _fill(buffer, 25, 10)
    buffer.save_parts(tmp_path)  # only the 10 new rows
    assert [rows for _, rows in buffer._manifest] == [25, 10]
    state = buffer.state_dict()
    buffer.prune_parts(tmp_path)

    restored = cls(40, 3, 2, seed=99)
    restored.load_state_dict(state, tmp_path)
    for name in ("observations", "actions", "rewards", "next_observations", "terminated"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(buffer, name))
    assert (restored.size, restored.position, restored.seen) == (35, buffer.position, 35)
    np.testing.assert_array_equal(restored.sample(8).rewards, buffer.sample(8).rewards)


def test_parts_are_compacted_and_stale_parts_deleted(tmp_path):
    buffer = ReplayBuffer(10, 1, 1)
    for round_ in range(5):  # 50 rows written into 10 slots
        _fill(buffer, 10 * round_, 10)
        buffer.save_parts(tmp_path)
        buffer.prune_parts(tmp_path)
    assert sum(rows for _, rows in buffer._manifest) <= 2 * len(buffer)
    assert len(list(tmp_path.glob("part-*"))) == len(buffer._manifest)
    restored = ReplayBuffer(10, 1, 1)
    restored.load_state_dict(buffer.state_dict(), tmp_path)
    np.testing.assert_array_equal(restored.rewards, buffer.rewards)
    buffer.clear()
    buffer.save_parts(tmp_path)
    buffer.prune_parts(tmp_path)
    assert list(tmp_path.glob("part-*")) == []  # a cleared buffer needs no part
