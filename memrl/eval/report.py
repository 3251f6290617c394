"""A run's report: ``report.md`` (a metrics table with CIs, and the plots) and ``report.json``.

Generic on purpose: the input is a table of metrics (row -> metric -> value) and a mapping of plot
names to PNG paths, so any study (Continual World metrics per method, retention per agent) can
write one. A value is a :class:`~memrl.eval.metrics.ConfidenceInterval`, a dict with ``mean``
(and optionally ``lower``, ``upper``, ``confidence``), a plain number, or None for "not
available".
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memrl.eval.metrics import ConfidenceInterval

MetricValue = ConfidenceInterval | Mapping[str, float] | float | None


def _normalise(value: MetricValue) -> dict[str, float | None] | None:
    """A value as ``{"mean", "lower", "upper", "confidence"}`` (bounds None if absent)."""
    if value is None:
        return None
    if isinstance(value, ConfidenceInterval):
        return {k: _finite(v) for k, v in value.to_dict().items()}
    if isinstance(value, Mapping):
        if "mean" not in value:
            raise ValueError(f"a metric dict needs a 'mean' key, got keys {sorted(value)}")
        return {k: _finite(value.get(k)) for k in ("mean", "lower", "upper", "confidence")}
    if isinstance(value, numbers.Real):  # int, float and numpy's scalars
        return {"mean": _finite(value), "lower": None, "upper": None, "confidence": None}
    raise ValueError(f"unsupported metric value {value!r}: use a ConfidenceInterval, dict or float")


def _finite(value: Any) -> float | None:
    """``value`` as a float, None for missing or NaN (JSON has no NaN).

    Raises:
        ValueError: An infinite value (no metric is infinite).
    """
    if value is None:
        return None
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"metric values must be finite (or NaN for missing), got {number}")
    return None if math.isnan(number) else number


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON data, recursively.

    Numpy scalars and arrays become Python values; NaN and infinite floats become None (JSON has
    neither).
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _cell(value: dict[str, float | None] | None, precision: int) -> str:
    if value is None or value["mean"] is None:
        return "-"
    text = f"{value['mean']:.{precision}f}"
    if value["lower"] is not None and value["upper"] is not None:
        text += f" [{value['lower']:.{precision}f}, {value['upper']:.{precision}f}]"
    return text


def writable_directory(path: str | Path) -> Path:
    """``path`` as a directory that takes files: created if missing, then checked with a file.

    A report is written after its evaluation, which can take minutes; calling this first turns a
    path that cannot hold it into an error at once. Only a short-lived file is written (and
    removed), so it works for root too, for whom a read-only mode bit does not stop a write.

    Raises:
        ValueError: ``path``, or a directory above it, is a file; or a file cannot be created
            in it. The message names the path and the reason.
    """
    directory = Path(path)
    blocker = next((p for p in (directory, *directory.parents) if p.is_file()), None)
    if blocker is not None:
        where = "is a file" if blocker == directory else f"is under {blocker}, which is a file"
        raise ValueError(f"cannot write a report into {directory}: it {where}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".memrl-write-check-") as probe:
            probe.write(b"memrl")
            probe.flush()
    except OSError as error:
        raise ValueError(
            f"cannot write a report into {directory}: {error.strerror or error}"
        ) from None
    return directory


def write_report(
    run_dir: str | Path,
    metrics: Mapping[str, Mapping[str, MetricValue]],
    plots: Mapping[str, str | Path] | None = None,
    *,
    title: str = "memrl report",
    details: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    sections: Mapping[str, str] | None = None,
    precision: int = 2,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``run_dir``.

    Args:
        run_dir: The run directory (created if missing).
        metrics: Row (e.g. method) -> metric name -> value; the table has a column per metric
            name, in first-seen order, and shows ``mean [lower, upper]``.
        plots: Plot name -> PNG path; shown in ``report.md`` by a path relative to ``run_dir``.
        title: The report's heading.
        details: Anything JSON-serialisable to add to ``report.json`` (e.g. ``to_dict()`` of
            the metrics, the command, seeds, machine).
        notes: Sentences for the reader of ``report.md``, printed under the table (e.g. why a
            metric is missing).
        sections: Heading -> Markdown body of further sections (e.g. per-task tables), printed
            after the notes and before the plots.
        precision: Decimals in the Markdown table.

    Returns:
        The paths of ``report.md`` and ``report.json``.
    """
    if not metrics:
        raise ValueError("metrics must hold at least one row")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    table = {
        row: {name: _normalise(v) for name, v in values.items()} for row, values in metrics.items()
    }
    columns = list(dict.fromkeys(name for values in table.values() for name in values))
    confidences = {
        v["confidence"]
        for values in table.values()
        for v in values.values()
        if v is not None and v["confidence"] is not None
    }
    plot_paths = {name: Path(p) for name, p in (plots or {}).items()}
    missing = sorted(name for name, p in plot_paths.items() if not p.is_file())
    if missing:
        raise ValueError(f"plots {missing} do not exist: write them before the report")
    relative = {
        name: Path(os.path.relpath(p, run_dir)).as_posix() for name, p in plot_paths.items()
    }

    lines = [f"# {title}", ""]
    if confidences:
        levels = ", ".join(f"{c:.0%}" for c in sorted(confidences))
        lines += [
            f"Values are `mean [lower, upper]` with {levels} bootstrap intervals over seeds.",
            "",
        ]
    lines += ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row, values in table.items():
        cells = [_cell(values.get(name), precision) for name in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    for heading, body in (sections or {}).items():
        lines += ["", f"## {heading}", "", body.rstrip("\n")]
    for name, path in relative.items():
        lines += ["", f"## {name}", "", f"![{name}]({path})"]
    document = {
        "title": title,
        "metrics": table,
        "notes": list(notes),
        "plots": relative,
        "details": _json_safe(dict(details or {})),
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"  # before writing either file
    markdown_path = run_dir / "report.md"
    markdown_path.write_text("\n".join(lines) + "\n")
    json_path = run_dir / "report.json"
    json_path.write_text(text)
    return markdown_path, json_path
