"""Replay buffers: FIFO order, reservoir uniformity, incremental checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memrl.agents.checkpoints import DamagedFileError
from memrl.agents.continual.buffers import ReplayBuffer, ReservoirBuffer, check_parts


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


def test_sampling_draws_every_stored_row():
    buffer = ReplayBuffer(5, 1, 1)
    _fill(buffer, 0, 2)
    assert set(buffer.sample(64).rewards.tolist()) == {0.0, 1.0}  # row 0 too
    single = ReplayBuffer(5, 1, 1)
    _fill(single, 7, 1)
    assert single.sample(3).rewards.tolist() == [7.0, 7.0, 7.0]


def test_reservoir_keeps_each_transition_with_probability_capacity_over_seen():
    # Algorithm R with capacity 2 over 4 transitions: each is kept with probability 2 / 4.
    # Transitions 2 and 3 show the replacement rule: t enters with probability 2 / (t + 1).
    capacity, stream, trials = 2, 4, 2000
    kept = np.zeros(stream)
    for seed in range(trials):
        buffer = ReservoirBuffer(capacity, 1, 1, seed=seed)
        _fill(buffer, 0, stream)
        kept[buffer.rewards.astype(int)] += 1
    np.testing.assert_allclose(kept / trials, 0.5, rtol=0, atol=0.04)  # 3.6 standard errors


def _manifest(buffer: ReplayBuffer) -> list[tuple[str, int]]:
    return [(name, rows) for name, rows in buffer.state_dict()["manifest"]]


@pytest.mark.parametrize("capacity", [1, 10])
def test_parts_are_compacted_once_they_hold_more_than_twice_the_rows(tmp_path, capacity):
    buffer = ReplayBuffer(capacity, 1, 1)

    def save_after(count: int) -> list[tuple[str, int]]:
        _fill(buffer, buffer.seen, count)
        buffer.save_parts(tmp_path)
        return _manifest(buffer)

    assert save_after(capacity) == [("part-000000.npz", capacity)]
    # Twice the buffer's rows is not yet more than twice: the new rows go in a part of their own.
    assert save_after(capacity) == [("part-000000.npz", capacity), ("part-000001.npz", capacity)]
    assert save_after(1) == [("part-000002.npz", capacity)]  # one more: one full snapshot
    buffer.prune_parts(tmp_path)
    restored = ReplayBuffer(capacity, 1, 1)
    restored.load_state_dict(buffer.state_dict(), tmp_path)
    np.testing.assert_array_equal(restored.rewards, buffer.rewards)


def test_after_clear_a_save_writes_only_the_rows_added_since(tmp_path):
    buffer = ReplayBuffer(10, 1, 1)
    _fill(buffer, 0, 10)
    buffer.save_parts(tmp_path)
    buffer.clear()
    _fill(buffer, 100, 6)
    buffer.save_parts(tmp_path)
    assert _manifest(buffer) == [("part-000001.npz", 6)]
    restored = ReplayBuffer(10, 1, 1)
    restored.load_state_dict(buffer.state_dict(), tmp_path)
    assert len(restored) == 6 and restored.rewards[:6].tolist() == list(range(100, 106))


def test_a_restored_buffer_saves_only_its_new_rows_in_a_new_part(tmp_path):
    buffer = ReplayBuffer(40, 1, 1, seed=1)
    _fill(buffer, 0, 25)
    buffer.save_parts(tmp_path)
    restored = ReplayBuffer(40, 1, 1)
    restored.load_state_dict(buffer.state_dict(), tmp_path)
    _fill(restored, 25, 1)
    restored.save_parts(tmp_path)  # must not overwrite part-000000, which it still refers to
    assert _manifest(restored) == [("part-000000.npz", 25), ("part-000001.npz", 1)]
    again = ReplayBuffer(40, 1, 1)
    again.load_state_dict(restored.state_dict(), tmp_path)
    assert len(again) == 26
    np.testing.assert_array_equal(again.rewards, restored.rewards)


@pytest.mark.parametrize(
    ("cls", "capacity", "message"),
    [
        (ReservoirBuffer, 5, "buffer is reservoir of capacity 5, this one is fifo of capacity 5"),
        (ReplayBuffer, 6, "buffer is fifo of capacity 6, this one is fifo of capacity 5"),
    ],
)
def test_a_checkpoint_of_another_buffer_is_refused_naming_both(tmp_path, cls, capacity, message):
    other = cls(capacity, 1, 1)
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(5, 1, 1).load_state_dict(other.state_dict(), tmp_path)


def test_transitions_are_stored_and_sampled_as_float32():
    # float32 throughout: the module docstring's sizes (416 bytes per CW10 transition) assume it.
    buffer = ReplayBuffer(4, 3, 2)
    buffer.add(np.ones(3), np.ones(2), 0.1, np.ones(3), True)  # float64 and bool in
    batch = buffer.sample(2)
    assert [field.dtype for field in batch] == [torch.float32] * 5
    assert batch.terminated.tolist() == [1.0, 1.0]


def _saved(tmp_path) -> dict:
    buffer = ReplayBuffer(10, 1, 1)
    _fill(buffer, 0, 4)
    buffer.save_parts(tmp_path)
    return buffer.state_dict()


def test_check_parts_passes_intact_parts(tmp_path):
    check_parts(_saved(tmp_path), tmp_path)


def test_check_parts_names_a_part_of_another_row_count(tmp_path):
    state = _saved(tmp_path)
    (name, rows), *_ = state["manifest"]
    state["manifest"] = [(name, rows + 1)]
    path = str(tmp_path / name)
    with pytest.raises(DamagedFileError) as error:
        check_parts(state, tmp_path)
    assert f"holds {rows} rows, its checkpoint says {rows + 1}" in str(error.value)
    assert path in str(error.value)


def test_check_parts_names_a_part_that_lacks_an_array(tmp_path):
    state = _saved(tmp_path)
    (name, _), *_ = state["manifest"]
    with np.load(tmp_path / name) as part:
        arrays = {key: part[key] for key in part.files if key != "rewards"}
    np.savez(tmp_path / name, **arrays)
    with pytest.raises(DamagedFileError, match="rewards"):
        check_parts(state, tmp_path)
