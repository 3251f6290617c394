"""The memory benchmark runs and reports what it claims (tiny sizes: shape, not speed)."""

from __future__ import annotations

import json

import pytest

from memrl.bench.memory import bench_hcam_read, format_read_table


@pytest.mark.parametrize("interleave", [False, True])
def test_bench_hcam_read_rows_and_table(interleave):
    rows = bench_hcam_read(
        memory_lengths=(64, 256),
        batch=2,
        width=16,
        heads=2,
        chunk_size=16,
        top_k=2,
        repeats=5,
        warmup=1,
        interleave=interleave,
    )
    assert json.loads(json.dumps(rows)) == rows  # plain JSON
    assert [r["memory_steps"] for r in rows] == [64, 256]
    assert [r["chunks"] for r in rows] == [4, 16]
    for r in rows:
        assert r["hcam_ms"] > 0 and r["exact_ms"] > 0
        assert r["speedup"] == pytest.approx(r["exact_ms"] / r["hcam_ms"])
    table = format_read_table(rows, markdown=True)
    assert table.splitlines()[0].startswith("| memory steps |")
    assert "grows" in table.splitlines()[-1]


def test_bench_hcam_read_rejects_memories_that_are_not_whole_chunks():
    with pytest.raises(ValueError, match="chunk_size"):
        bench_hcam_read(memory_lengths=(100,), chunk_size=32)
