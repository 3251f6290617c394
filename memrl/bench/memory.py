"""``memrl bench memory``: one HCAM read against exact attention over the same memory.

Method: for each memory length ``N`` (steps), a memory of ``N / chunk_size`` full chunks of random
contents (keys = chunk means) and one query per batch entry. Timed, under ``torch.inference_mode``:

- **HCAM**: one call of :class:`~memrl.memory.hcam.HierarchicalMemoryAttention` (the read of one
  step of one layer): score every chunk key, keep ``top_k``, multi-head attention inside those
  chunks, weighted sum, output projection. A chunk-validity mask is passed, as the core does.
- **exact**: ``torch.nn.functional.scaled_dot_product_attention`` of the same queries over all
  ``N`` keys and values (``heads`` heads), with keys and values already projected, as a
  Transformer-XL cache holds them. This favours exact attention: it does no projection at all.

Each is timed in its own loop, in 5 rounds that alternate between the two (so slow drift in the
machine's load hits both): ``warmup`` untimed calls, then ``repeats`` timed calls in all; the figure
is the median wall time in milliseconds. In its own loop each read runs with its own working set
in cache, as it does inside an agent: HCAM's chunk keys (2 MB at 16,384 steps, batch 8, width
128; 8 MB for 4 layers) stay in a 32 MB L3 between steps, exact attention's keys and values
(34 MB per layer) never do. ``interleave=True`` instead alternates single calls, so every HCAM
read starts with a cache that exact attention has just flushed: a cold-cache, worst-case figure.

``threads`` fixes ``torch.set_num_threads`` during the run (restored after): one thread is the most
stable figure on a shared 2-core machine, where a second OpenMP thread that gets descheduled
stalls every kernel.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention

from memrl.memory.hcam import HierarchicalMemoryAttention


@dataclass
class ReadTiming:
    """Forward time of one read over a memory of ``memory_steps`` steps.

    Attributes:
        memory_steps: Steps held in memory (``chunks * chunk_size``).
        chunks: Chunks in memory.
        hcam_ms: Median time of one HCAM read, milliseconds.
        exact_ms: Median time of exact attention over all steps (fused kernel), milliseconds.
        speedup: ``exact_ms / hcam_ms``.
    """

    memory_steps: int
    chunks: int
    hcam_ms: float
    exact_ms: float
    speedup: float

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict (for JSON)."""
        return asdict(self)


ROUNDS = 5


def _medians(
    first: Callable[[], object],
    second: Callable[[], object],
    repeats: int,
    warmup: int,
    interleave: bool,
) -> tuple[float, float]:
    """Median milliseconds of ``first`` and ``second`` (see the module docstring for the order)."""
    times: tuple[list[float], list[float]] = ([], [])

    def timed(fn: Callable[[], object], out: list[float]) -> None:
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)

    if interleave:
        for _ in range(warmup):
            first()
            second()
        for _ in range(repeats):
            timed(first, times[0])
            timed(second, times[1])
    else:
        per_round = max(1, repeats // ROUNDS)
        for _ in range(ROUNDS):
            for fn, out in ((first, times[0]), (second, times[1])):
                for _ in range(max(1, warmup // ROUNDS)):
                    fn()
                for _ in range(per_round):
                    timed(fn, out)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def _time_one_length(
    attention: HierarchicalMemoryAttention,
    steps: int,
    batch: int,
    chunk_size: int,
    generator: torch.Generator,
    repeats: int,
    warmup: int,
    interleave: bool,
) -> dict[str, Any]:
    """One row of :func:`bench_hcam_read`: both reads over a random memory of ``steps`` steps."""
    width, heads = attention.width, attention.within.heads
    chunks = steps // chunk_size
    contents = torch.randn(batch, chunks, chunk_size, width, generator=generator)
    keys = contents.mean(dim=2)  # [B, M, W]
    readable = torch.ones(batch, chunks, dtype=torch.bool)
    query = torch.randn(batch, width, generator=generator)
    q = torch.randn(batch, heads, 1, width // heads, generator=generator)
    k = torch.randn(batch, heads, steps, width // heads, generator=generator)
    v = torch.randn(batch, heads, steps, width // heads, generator=generator)
    hcam_ms, exact_ms = _medians(
        lambda: attention(query, keys, contents, readable),
        lambda: scaled_dot_product_attention(q, k, v),
        repeats,
        warmup,
        interleave,
    )
    return ReadTiming(steps, chunks, hcam_ms, exact_ms, exact_ms / hcam_ms).to_dict()


def bench_hcam_read(
    memory_lengths: Sequence[int] = (256, 1024, 4096, 16384),
    batch: int = 8,
    width: int = 128,
    heads: int = 4,
    chunk_size: int = 32,
    top_k: int = 4,
    repeats: int = 50,
    warmup: int = 10,
    threads: int | None = 1,
    interleave: bool = False,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time one HCAM read and one exact attention over memories of each length.

    Args:
        memory_lengths: Memory sizes in steps; each a multiple of ``chunk_size`` holding at
            least ``top_k`` chunks.
        batch: Queries (batch entries) per call.
        width: Model width.
        heads: Attention heads (inside chunks for HCAM; over all steps for exact attention).
        chunk_size: Steps per chunk.
        top_k: Chunks HCAM reads per query.
        repeats: Timed calls of each; the median is reported.
        warmup: Untimed calls of each first.
        threads: ``torch.set_num_threads`` for the run (restored after); None leaves it as is.
        interleave: Alternate single calls (cold cache for HCAM) instead of timing each in its
            own loop.
        seed: Seed of the random memory and weights.

    Returns:
        One :meth:`ReadTiming.to_dict` row per memory length.
    """
    for steps in memory_lengths:
        if steps % chunk_size or steps // chunk_size < top_k:
            raise ValueError(
                f"memory lengths must be multiples of chunk_size={chunk_size} with at least "
                f"top_k={top_k} chunks, got {steps}"
            )
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        attention = HierarchicalMemoryAttention(width, heads, top_k).eval()
        with torch.inference_mode():
            return [
                _time_one_length(
                    attention, steps, batch, chunk_size, generator, repeats, warmup, interleave
                )
                for steps in memory_lengths
            ]
    finally:
        torch.set_num_threads(previous_threads)


def format_read_table(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The rows of :func:`bench_hcam_read` as a ratio table, with HCAM's growth in a last line.

    Args:
        rows: Rows as returned by :func:`bench_hcam_read` (or read back from JSON).
        markdown: A Markdown table instead of aligned plain text.
    """
    header = ("memory steps", "chunks", "HCAM read ms", "exact ms", "exact / HCAM")
    body = [
        (
            f"{r['memory_steps']:,}",
            f"{r['chunks']:,}",
            f"{r['hcam_ms']:.3f}",
            f"{r['exact_ms']:.3f}",
            f"{r['speedup']:.1f}x",
        )
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
        lines = [
            "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
            for row in (header, *body)
        ]
    if len(rows) >= 2:
        base = next((r for r in rows if r["memory_steps"] == 1024), rows[0])
        last = rows[-1]
        hcam_growth = last["hcam_ms"] / base["hcam_ms"]
        exact_growth = last["exact_ms"] / base["exact_ms"]
        lines.append(
            f"From {base['memory_steps']:,} to {last['memory_steps']:,} steps the HCAM read "
            f"grows {hcam_growth:.2f}x, exact attention {exact_growth:.1f}x."
        )
    return "\n".join(lines)
