"""Plots of aggregates over seeds: interval estimates and performance profiles.

As :mod:`memrl.eval.plots`: a fresh matplotlib ``Figure`` on the Agg canvas (no pyplot, no
change to the process-wide backend), saved as a PNG (its directory created); matplotlib is
imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memrl.eval.aggregate import Estimate


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=figure.dpi)
    return path


def plot_interval_estimates(
    estimates: Mapping[str, Mapping[str, Estimate]], path: str | Path, *, title: str
) -> Path:
    """One panel per aggregate (IQM, mean): each group's point and 95% interval, a row each.

    Args:
        estimates: Group label -> aggregate name -> estimate.
        path: The PNG to write.
        title: The figure's title.

    Returns:
        ``path``.
    """
    labels = list(estimates)
    names = list(next(iter(estimates.values())))
    figure = _figure(3.2 * len(names) + 1.5, 0.45 * len(labels) + 1.2)
    axes = figure.subplots(1, len(names), sharey=True, squeeze=False)[0]
    rows = np.arange(len(labels))[::-1]
    for ax, name in zip(axes, names, strict=True):
        for row, label in zip(rows, labels, strict=True):
            value = estimates[label][name]
            ax.plot([value.lower, value.upper], [row, row], linewidth=6, alpha=0.5)
            ax.plot([value.point], [row], marker="|", markersize=12, color="black")
        ax.set_title(name)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("success")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(rows, labels)
    figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def plot_performance_profiles(
    thresholds: np.ndarray,
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str,
) -> Path:
    """Each group's fraction of scores above each threshold, with its 95% band.

    Args:
        thresholds: ``[thresholds]`` score thresholds (x-axis).
        profiles: Group label -> ``(profile, lower, upper)``, each ``[thresholds]``.
        path: The PNG to write.
        title: The axes' title.

    Returns:
        ``path``.
    """
    figure = _figure(6.5, 4.0)
    ax = figure.add_subplot()
    for label, (profile, lower, upper) in profiles.items():
        (line,) = ax.plot(thresholds, profile, label=label)
        ax.fill_between(thresholds, lower, upper, color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xlabel("success threshold τ")
    ax.set_ylabel("fraction of runs x conditions > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize="small")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(figure, path)
