"""``memrl bench streams`` functions on tiny budgets: structure and report, not speed."""

from __future__ import annotations

import json

import pytest

from memrl.bench.streams import (
    VARIANTS,
    format_report,
    metaworld_overhead,
    retention_eval_throughput,
)


def test_overhead_measures_every_variant_against_raw():
    result = metaworld_overhead(tasks=("window-close-v3",), steps=30, rounds=1)
    json.dumps(result)  # plain data
    row = result["tasks"]["window-close-v3"]
    assert set(row) == set(VARIANTS) and row["raw"]["overhead"] == 0.0
    assert all(r["steps_per_s"] > 0 for r in row.values())
    text = format_report({"overhead": result})
    assert "pooled" in text and "continual vs raw" in text


def test_retention_eval_runs_every_task_of_a_stream():
    result = retention_eval_throughput(stream="Recall", episodes_per_task=2)
    json.dumps(result)
    assert result["episodes"] == 8 and len(result["success"]) == 4
    assert result["episodes_per_s"] > 0
    assert "episodes/s" in format_report({"retention_eval": result})


def test_bad_arguments():
    with pytest.raises(ValueError, match="tasks must be CW10 tasks"):
        metaworld_overhead(tasks=("reach-v3",))
    with pytest.raises(ValueError, match=r"policy must be one of \['random', 'linear'\]"):
        retention_eval_throughput(policy="expert")
    with pytest.raises(ValueError, match="linear policy needs a Box action space"):
        retention_eval_throughput(stream="Recall", policy="linear")
