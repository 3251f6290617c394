"""The retention matrix on hand-made matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memrl.eval.retention import (
    RetentionMatrix,
    format_table,
    held_out_retention,
    mean_retention,
    retention_from_rows,
    seen_retention,
)

TOL = 1e-12


def example() -> RetentionMatrix:
    # stream: reach, then push; pick and open are held out (open: the initial policy scores 0)
    matrix = [
        [0.10, 0.00, 0.20, 0.00],
        [0.90, 0.05, 0.25, 0.10],
        [0.60, 0.80, 0.15, 0.30],
    ]
    return RetentionMatrix(
        np.array(matrix),
        ("reach", "push", "pick", "open"),
        ("initial", "reach", "push"),
        held_out=("pick", "open"),
        stage_tasks=((), ("reach",), ("push",)),
    )


def test_seen_future_and_held_out_masks():
    retention = example()
    assert retention.held_out_mask().tolist() == [False, False, True, True]
    assert retention.seen_mask().tolist() == [
        [False, False, False, False],
        [True, False, False, False],
        [True, True, False, False],
    ]
    assert retention.future_mask().tolist() == [
        [True, True, False, False],
        [False, True, False, False],
        [False, False, False, False],
    ]


def test_held_out_retention_divides_the_end_by_the_initial_policy_and_nan_for_zero():
    ratios = held_out_retention(example())
    assert abs(ratios["pick"] - 0.15 / 0.20) < TOL
    assert math.isnan(ratios["open"])  # initial success 0: nothing to retain
    assert abs(mean_retention(ratios) - 0.15 / 0.20) < TOL  # NaN is skipped
    assert math.isnan(mean_retention({"open": float("nan")}))


def test_held_out_retention_against_a_frozen_policy():
    frozen = {"pick": 0.3, "open": 0.6}
    ratios = held_out_retention(example(), frozen)
    assert abs(ratios["pick"] - 0.15 / 0.3) < TOL and abs(ratios["open"] - 0.30 / 0.6) < TOL
    as_sequence = held_out_retention(example(), [0.3, 0.6])
    assert as_sequence == ratios
    with pytest.raises(ValueError, match="one per held-out task"):
        held_out_retention(example(), [0.3])
    with pytest.raises(ValueError, match=r"no success for held-out tasks \['open'\]"):
        held_out_retention(example(), {"pick": 0.3})
    with pytest.raises(ValueError, match="baseline must be"):
        held_out_retention(example(), "last")


def test_first_stage_baseline_needs_an_initial_stage():
    full = example()
    trained_first = RetentionMatrix(full.matrix[1:], full.task_names, full.stage_labels[1:],
                                    full.held_out, full.stage_tasks[1:])  # fmt: skip
    with pytest.raises(ValueError, match=r"stage 'reach' trained \['reach'\]: pass the initial"):
        held_out_retention(trained_first)
    assert held_out_retention(trained_first, [0.2, 0.1])["pick"] == pytest.approx(0.15 / 0.2)


def test_seen_retention_divides_the_end_by_the_success_after_the_last_training():
    ratios = seen_retention(example())
    assert set(ratios) == {"reach", "push"}
    assert abs(ratios["reach"] - 0.60 / 0.90) < TOL
    assert ratios["push"] == 1.0  # trained in the last stage
    repeated = RetentionMatrix(
        np.array([[0.8, 0.0], [0.2, 0.9], [0.7, 0.4], [0.35, 0.0]]),
        ("a", "b"),
        ("a", "b", "a", "b"),
        stage_tasks=(("a",), ("b",), ("a",), ("b",)),
    )
    ratios = seen_retention(repeated)
    assert abs(ratios["a"] - 0.35 / 0.7) < TOL  # since its last training (stage 2)
    assert math.isnan(ratios["b"])  # 0 / 0
    with pytest.raises(ValueError, match="needs stage_tasks"):
        seen_retention(RetentionMatrix(np.zeros((1, 1)), ("a",), ("initial",)))


def test_markdown_and_text_tables():
    markdown = format_table(example())
    assert markdown.splitlines() == [
        "| stage | reach | push | pick (held-out) | open (held-out) |",
        "|---|---|---|---|---|",
        "| initial | 0.10 | 0.00 | 0.20 | 0.00 |",
        "| reach | **0.90** | 0.05 | 0.25 | 0.10 |",
        "| push | 0.60 | **0.80** | 0.15 | 0.30 |",
    ]
    text = format_table(example(), markdown=False, precision=1).splitlines()
    assert text[0].split() == ["stage", "reach", "push", "pick", "(held-out)", "open", "(held-out)"]
    assert text[2].split() == ["reach", "0.9*", "0.1", "0.2", "0.1"]


def test_from_rows_keeps_the_first_rows_order():
    retention = retention_from_rows(
        [{"b": 0.1, "a": 0.2}, {"a": 0.5, "b": 0.4}],
        ["initial", "a"],
        stage_tasks=[[], ["a"]],
    )
    assert retention.task_names == ("b", "a")
    assert retention.matrix.tolist() == [[0.1, 0.2], [0.4, 0.5]]
    with pytest.raises(ValueError, match="same tasks"):
        retention_from_rows([{"a": 0.1}, {"b": 0.1}], ["initial", "b"])


def test_bad_matrices_raise_errors_that_name_the_problem():
    with pytest.raises(ValueError, match=r"expected \(len\(stage_labels\), len\(task_names\)\)"):
        RetentionMatrix(np.zeros((2, 2)), ("a", "b"), ("initial",))
    with pytest.raises(ValueError, match="unique"):
        RetentionMatrix(np.zeros((1, 2)), ("a", "a"), ("initial",))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RetentionMatrix(np.full((1, 2), 1.5), ("a", "b"), ("initial",))
    with pytest.raises(ValueError, match=r"held_out names \['c'\]"):
        RetentionMatrix(np.zeros((1, 2)), ("a", "b"), ("initial",), held_out=("c",))
    with pytest.raises(ValueError, match=r"held-out tasks \['b'\] are trained"):
        RetentionMatrix(
            np.zeros((2, 2)), ("a", "b"), ("0", "1"), held_out=("b",), stage_tasks=((), ("b",))
        )
    with pytest.raises(ValueError, match="one per stage"):
        RetentionMatrix(np.zeros((2, 2)), ("a", "b"), ("0", "1"), stage_tasks=((),))
    with pytest.raises(ValueError, match="unknown task"):
        example().column("fly")
