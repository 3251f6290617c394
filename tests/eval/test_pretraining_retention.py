"""The retention of pretraining skill of one run, and of a method's runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memrl.eval.pretraining_retention import pretraining_details, pretraining_retention
from memrl.eval.retention import RetentionMatrix


def _matrix(initial, end) -> RetentionMatrix:
    """Stream task a, pretraining tasks p and q: frozen model, then after training a."""
    return RetentionMatrix(np.array([[0.0, *initial], [0.9, *end]]), ("a", "p", "q"),
                           ("initial", "0: a"), ("p", "q"), ((), ("a",)))  # fmt: skip


def test_the_retention_is_a_ratio_of_means_and_per_task_ratios():
    overall, per_task = pretraining_retention(_matrix([0.8, 0.0], [0.4, 0.2]), ["p", "q"])
    assert overall == pytest.approx(0.6 / 0.8)  # not the mean of the ratios
    assert per_task["p"] == pytest.approx(0.5) and math.isnan(per_task["q"])
    overall, _ = pretraining_retention(_matrix([0.0, 0.0], [0.4, 0.2]), ["p", "q"])
    assert math.isnan(overall)  # nothing to retain


def test_the_first_stage_must_be_the_frozen_model():
    trained_first = RetentionMatrix(np.array([[0.5, 0.5]]), ("a", "p"), ("0: a",), ("p",),
                                    (("a",),))  # fmt: skip
    with pytest.raises(ValueError, match="the first stage must be the frozen model"):
        pretraining_retention(trained_first, ["p"])


def test_a_methods_runs_average_where_defined():
    details, note = pretraining_details(
        [_matrix([0.8, 0.4], [0.4, 0.2]), _matrix([0.5, 0.5], [0.5, 0.5]),
         _matrix([0.0, 0.0], [0.1, 0.1])], ["p", "q"],
    )  # fmt: skip
    assert details["per_run"][:2] == pytest.approx([0.5, 1.0]) and details["per_run"][2] is None
    assert details["row"].mean == pytest.approx(0.75)
    assert details["initial"] == pytest.approx([1.3 / 3, 0.3])
    assert details["retention"] == pytest.approx([0.75, 0.75])
    assert note is not None and "over 2 of 3 runs" in note
