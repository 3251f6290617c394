"""The suite as a table, generated from the registry (``memrl list`` and the README)."""

from __future__ import annotations

from typing import Any

from memrl.envs.suites import ALL


def format_rate(value: float | None) -> str:
    """Format steps/s compactly: 31,200 -> '31k', 1,250,000 -> '1.25M', None -> '-'."""
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def suite_table(
    markdown: bool = False,
    family: str | None = None,
    bench_rows: list[dict[str, Any]] | None = None,
) -> str:
    """Return the registered envs as a text or Markdown table.

    Args:
        markdown: Markdown (for the README) instead of aligned text.
        family: Only the envs of this family.
        bench_rows: Rows of a ``memrl bench envs --json`` file; adds steps/s columns.

    Returns:
        The table.
    """
    header = ["id", "observation", "action", "horizon", "memory demand"]
    rates = {r["id"]: r for r in bench_rows or []}
    if bench_rows:
        num_envs = bench_rows[0]["num_envs"]
        header += ["steps/s", f"steps/s batched x{num_envs}"]
    rows = []
    for entry in ALL.values():
        if family and entry.family != family:
            continue
        row = [entry.id, entry.observation, entry.action, str(entry.horizon), entry.memory_demand]
        if bench_rows:
            measured = rates.get(entry.id, {})
            row += [
                format_rate(measured.get("single_steps_per_s")),
                format_rate(measured.get("vector_steps_per_s")),
            ]
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    )
