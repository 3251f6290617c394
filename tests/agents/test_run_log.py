"""The run log: a CSV whose header grows with new keys, truncation on resume, reading back."""

from __future__ import annotations

import pytest

from memrl.agents.run_log import RunLog, read_metric


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
