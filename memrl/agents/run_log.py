"""A run's metrics log: namespaced scalars to a flat CSV and to TensorBoard.

Keys follow CleanRL's namespaces (``charts/episodic_return``, ``losses/value_loss``,
``eval/success_rate``, ``retention/<task>``). The CSV has one row per ``write`` call with a
``global_step`` column; a key seen for the first time later extends the header (the file is
rewritten once), so every row of the file has every column.

A resumed run logs again the steps after its checkpoint: :meth:`RunLog.truncate_after` drops them
from the CSV and hides them in TensorBoard (the new event file starts with a purge at the next
step, TensorBoard's ``purge_step``: readers drop the earlier files' events from that step on). The
event file is opened on the first scalar, so a resume with nothing left to train writes none,
unless it must hide events logged after its checkpoint.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

THIN_ROWS = 100
"""Rows of training metrics that :func:`thin_metrics` keeps by default."""


class RunLog:
    """Appends scalar metrics to ``metrics.csv`` and TensorBoard event files in a run directory.

    Args:
        run_dir: The run directory (created if missing).
        tensorboard: Also write TensorBoard events under ``run_dir/tb``.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.csv"
        self.tensorboard_dir = self.run_dir / "tb"
        self.tensorboard = tensorboard
        self._columns: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                self._columns = next(csv.reader(f), [])
        self._writer: Any = None  # opened on the first scalar
        self._purge_step: int | None = None

    def _tensorboard_writer(self) -> Any:
        """The TensorBoard writer, opened (with the pending purge) on first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.tensorboard_dir), purge_step=self._purge_step)
            self._purge_step = None  # done: a later event file must not hide this one's events
        return self._writer

    def write(self, global_step: int, metrics: dict[str, float]) -> None:
        """Log ``metrics`` at ``global_step``."""
        row = {"global_step": global_step, **metrics}
        new = [k for k in row if k not in self._columns]
        if new:
            self._extend_header(new)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns).writerow(row)
        if self.tensorboard:
            writer = self._tensorboard_writer()
            for key, value in metrics.items():
                writer.add_scalar(key, value, global_step)

    def truncate_after(self, global_step: int) -> None:
        """Drop what was logged after ``global_step`` (a resumed run logs it again).

        CSV rows after ``global_step`` are deleted; TensorBoard events after it are hidden by a
        purge at ``global_step + 1`` at the start of this log's event file. If the CSV had such
        rows and the run has event files, that file is written now, even if nothing else is.
        """
        self._purge_step = global_step + 1
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(float(r["global_step"])) <= global_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(kept)
        if self.tensorboard and len(kept) < len(rows) and self._has_events():
            self._tensorboard_writer()

    def _has_events(self) -> bool:
        return any(self.tensorboard_dir.glob("events.out.tfevents.*"))

    def flush(self) -> None:
        """Write the TensorBoard events still buffered to disk (trainers do at a checkpoint)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer (if one was opened)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _extend_header(self, new: list[str]) -> None:
        rows: list[dict[str, str]] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        self._columns = [*self._columns, *new]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(rows)


def read_metric(run_dir: str | Path, key: str) -> tuple[list[int], list[float]]:
    """``(global_step, value)`` of every row of a run's ``metrics.csv`` where ``key`` is logged.

    Raises:
        FileNotFoundError: The run has no ``metrics.csv``.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.csv (not a memrl training run?)")
    steps: list[int] = []
    values: list[float] = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get(key, "") != "":
                steps.append(int(float(row["global_step"])))
                values.append(float(row[key]))
    return steps, values


def thin_metrics(
    source: str | Path,
    target: str | Path,
    rows: int = THIN_ROWS,
    drop: tuple[str, ...] = ("eval/", "retention/"),
) -> None:
    """Copy a run's training metrics to ``target`` thinned: what a study archive commits.

    Only the rows with a training value are kept (evaluation rows go: their files hold them),
    at most ``rows`` of them, evenly spaced, the first and the last always.

    Args:
        source: A run's metrics.csv.
        target: Where the thinned copy goes.
        rows: Rows kept (>= 2).
        drop: Column prefixes left out (the evaluations' columns).
    """
    with Path(source).open(newline="") as file:
        reader = csv.DictReader(file)
        columns = [name for name in reader.fieldnames or [] if not name.startswith(drop)]
        training = [{name: row[name] for name in columns} for row in reader
                    if any(row[name] for name in columns if name != "global_step")]  # fmt: skip
    chosen = np.unique(np.linspace(0, len(training) - 1, min(rows, len(training))).round())
    kept = [training[int(index)] for index in chosen]
    with Path(target).open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(kept)
