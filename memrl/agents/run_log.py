"""A run's metrics log: namespaced scalars to a flat CSV and to TensorBoard.

Keys follow CleanRL's namespaces (``charts/episodic_return``, ``losses/value_loss``,
``eval/success_rate``, ``retention/<task>``). The CSV has one row per ``write`` call with a
``global_step`` column; a key seen for the first time later extends the header (the file is
rewritten once), so every row of the file has every column.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


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
        self._columns: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                self._columns = next(csv.reader(f), [])
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tb"))

    def write(self, global_step: int, metrics: dict[str, float]) -> None:
        """Log ``metrics`` at ``global_step``."""
        row = {"global_step": global_step, **metrics}
        new = [k for k in row if k not in self._columns]
        if new:
            self._extend_header(new)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns).writerow(row)
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(key, value, global_step)

    def truncate_after(self, global_step: int) -> None:
        """Drop rows logged after ``global_step`` (a resumed run repeats them)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(float(r["global_step"])) <= global_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()

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
