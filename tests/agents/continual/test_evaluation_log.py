"""The evaluation log the trainers write (``evaluations.json``): order, files, old logs."""

from __future__ import annotations

import pytest

from memrl.agents.continual.evaluation_log import LOG_FILE, EvaluationLog


def _saved_log(tmp_path) -> EvaluationLog:
    """A log of tasks a, b evaluated at steps 150 ... 600, written to a run directory and read."""
    log = EvaluationLog(
        task_names=("a", "b"), steps_per_task=300, schedule=(0, 1), method="finetune",
        stream="test", seed=0, eval_episodes=10, deterministic=False,
    )  # fmt: skip
    for step, row in zip((150, 300, 450, 600), [[0.2, 0.0], [0.8, 0.0], [0.4, 0.5], [0.2, 1.0]],
                         strict=True):  # fmt: skip
        log.append(step, row, [0.0, 0.0])
    log.save(tmp_path / LOG_FILE)
    return EvaluationLog.load(tmp_path)


def test_the_initial_evaluation_comes_first_and_old_logs_load(tmp_path):
    log = _saved_log(tmp_path)
    with pytest.raises(ValueError, match="initial evaluation must come before"):
        log.set_initial([0.0, 0.0], [0.0, 0.0])
    data = log.to_dict()
    for key in ("held_out", "initial_success", "initial_returns"):
        del data[key]  # a log written before they existed
    old = EvaluationLog.from_dict(data)
    assert old.held_out == () and old.initial_success is None and old == log
    with pytest.raises(ValueError, match=r"held_out \['a'\] must be the last of task_names"):
        EvaluationLog.from_dict({**data, "held_out": ["a"]})
