"""The run log: a CSV whose header grows with new keys, truncation on resume, reading back."""

from __future__ import annotations

import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memrl.agents.run_log import RunLog, read_metric


def _tensorboard(run_dir, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``tag``'s scalars as TensorBoard shows them (purges applied)."""
    accumulator = EventAccumulator(str(run_dir / "tb"))
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def _logged(run_dir, steps) -> None:
    """One session's log, ended before the next second so that a resumed session's event file
    sorts after it: TensorBoard reads a run's files in name order, and names are whole seconds,
    then a per-process counter compared as text (``...9`` after ``...10``), as two sessions
    in one test would otherwise be; a real resume is a new process, seconds later."""
    log = RunLog(run_dir)
    for step in steps:
        log.write(step, {"x": float(step)})
    log.close()
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def test_new_keys_extend_the_header_and_rows_read_back(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    log.write(100, {"losses/value_loss": 0.5})
    log.write(200, {"losses/value_loss": 0.4, "charts/success_rate": 0.25})
    log.write(300, {"losses/value_loss": 0.3, "charts/success_rate": 0.75})
    log.close()
    assert read_metric(tmp_path, "losses/value_loss") == ([100, 200, 300], [0.5, 0.4, 0.3])
    assert read_metric(tmp_path, "charts/success_rate") == ([200, 300], [0.25, 0.75])
    assert read_metric(tmp_path, "absent") == ([], [])


def test_truncate_after_drops_rows_a_resumed_run_repeats(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3, 4):
        log.write(step, {"x": float(step)})
    resumed = RunLog(tmp_path, tensorboard=False)
    resumed.truncate_after(2)
    resumed.write(3, {"x": 30.0})
    assert read_metric(tmp_path, "x") == ([1, 2, 3], [1.0, 2.0, 30.0])


def test_reading_a_directory_without_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.csv"):
        read_metric(tmp_path, "x")


def test_a_resumed_log_hides_the_tensorboard_events_after_its_checkpoint(tmp_path):
    _logged(tmp_path, (1, 2, 3, 4))
    resumed = RunLog(tmp_path)
    resumed.truncate_after(2)
    resumed.write(3, {"x": 30.0})
    resumed.close()
    assert len(list((tmp_path / "tb").iterdir())) == 2  # one event file per session
    assert _tensorboard(tmp_path, "x") == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_a_resume_that_drops_rows_hides_their_events_though_it_logs_nothing(tmp_path):
    _logged(tmp_path, (1, 2, 3, 4))
    resumed = RunLog(tmp_path)
    resumed.truncate_after(2)
    resumed.close()
    assert _tensorboard(tmp_path, "x") == [(1, 1.0), (2, 2.0)]
    assert read_metric(tmp_path, "x") == ([1, 2], [1.0, 2.0])


def test_the_event_file_is_opened_by_the_first_scalar(tmp_path):
    log = RunLog(tmp_path)
    log.truncate_after(0)
    log.close()
    assert not (tmp_path / "tb").exists()
    _logged(tmp_path, (1, 2))
    events = sorted((tmp_path / "tb").iterdir())
    resumed = RunLog(tmp_path)  # a resume at the last step: nothing to drop, nothing to log
    resumed.truncate_after(2)
    resumed.close()
    assert sorted((tmp_path / "tb").iterdir()) == events


def test_flush_hands_the_buffered_events_to_disk(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    flushed = []
    flush = SummaryWriter.flush
    monkeypatch.setattr(SummaryWriter, "flush", lambda w: (flushed.append(w.log_dir), flush(w)))
    log = RunLog(tmp_path)
    log.flush()  # no event file yet: nothing to flush, none opened
    assert flushed == [] and not (tmp_path / "tb").exists()
    log.write(1, {"x": 1.0})
    log.flush()
    assert flushed == [str(tmp_path / "tb")]
    log.close()
