"""Plots are written as PNGs of the requested size; the report links them; bad input raises."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from memrl.eval.metrics import ConfidenceInterval, EvaluationHistory
from memrl.eval.plots import (
    RecallCurve,
    average_success_curve,
    plot_average_success,
    plot_recall_vs_delay,
    plot_retention_heatmap,
    plot_success_curves,
    plot_training_curves,
    trailing_mean,
)
from memrl.eval.report import write_report
from memrl.eval.retention import RetentionMatrix

DPI = 40


def history(scale: float = 1.0) -> EvaluationHistory:
    steps = np.arange(10, 61, 10)
    success = np.linspace(0, 1, 18).reshape(6, 3) * scale
    return EvaluationHistory(steps, success, ("a", "b", "a"), 20)


def retention() -> RetentionMatrix:
    return RetentionMatrix(
        np.array([[0.1, 0.0, 0.2], [0.9, 0.1, 0.3], [0.5, 0.8, 0.25]]),
        ("a", "b", "held"),
        ("initial", "a", "b"),
        held_out=("held",),
        stage_tasks=((), ("a",), ("b",)),
    )


def assert_png(path, size_inches):
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(size_inches[0] * DPI), round(size_inches[1] * DPI))
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(2)) > 1


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, in order, to check what they draw."""
    from memrl.eval import plots

    saved = []
    save = plots._save

    def keep(figure, path):
        saved.append(figure)
        return save(figure, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def test_success_curves_draw_boundaries_training_windows_and_the_mean(tmp_path, figures):
    plot_success_curves([history(), history(0.5)], tmp_path / "c.png", dpi=DPI, title="t")
    axes = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["0: a", "1: b", "2: a"]  # a repeated name: numbered
    first = axes[0]
    boundaries = sorted(
        {line.get_xdata()[0] for line in first.lines if line.get_linestyle() == ":"}
    )
    assert boundaries == [20, 40]  # dotted lines at every switch
    spans = sorted(patch.get_x() for patch in first.patches)
    assert spans == [0]  # "a" (column 0) trains in window 0 only; column 2 is its own panel
    mean = [line for line in first.lines if line.get_linestyle() == "-"][0]
    expected = (history().success[:, 0] + history(0.5).success[:, 0]) / 2
    np.testing.assert_allclose(mean.get_ydata(), expected)
    assert figures[0]._suptitle.get_text() == "t"


def test_success_curves_start_from_the_initial_evaluation(tmp_path, figures):
    initial = [[0.1, 0.2, 0.3], [0.3, 0.0, 0.1]]
    plot_success_curves([history(), history(0.5)], tmp_path / "c.png", dpi=DPI, initial=initial)
    mean = [line for line in figures[0].axes[1].lines if line.get_linestyle() == "-"][0]
    assert mean.get_xdata()[0] == 0 and mean.get_ydata()[0] == pytest.approx(0.1)
    np.testing.assert_allclose(mean.get_xdata()[1:], history().steps)
    with pytest.raises(ValueError, match="initial must be \\[runs, tasks\\] = \\[2, 3\\]"):
        plot_success_curves([history(), history(0.5)], tmp_path / "d.png", initial=[0.1, 0.2, 0.3])


def test_average_success_is_the_mean_over_tasks_then_over_runs():
    steps, mean, low, high = average_success_curve([history(), history(0.5)])
    per_run = np.stack([history().success.mean(axis=1), history(0.5).success.mean(axis=1)])
    np.testing.assert_array_equal(steps, history().steps)
    np.testing.assert_allclose(mean, per_run.mean(axis=0))
    np.testing.assert_allclose(low, per_run[1])  # history(0.5) is below history() everywhere
    np.testing.assert_allclose(high, per_run[0])
    steps, mean, _, _ = average_success_curve([history()], initial=[[0.0, 0.3, 0.6]])
    assert steps[0] == 0 and mean[0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="initial must be \\[runs, tasks\\] = \\[1, 3\\]"):
        average_success_curve([history()], initial=[0.1, 0.2, 0.3])


def test_average_success_draws_a_line_per_method_and_the_switches(tmp_path, figures):
    out = plot_average_success(
        {"slow": [history(0.5)], "fast": [history(), history(0.8)]}, tmp_path / "avg.png",
        dpi=DPI, title="t",
    )  # fmt: skip
    assert_png(out, (7.0, 3.2))
    ax = figures[0].axes[0]
    lines = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert [line.get_label() for line in lines] == ["slow", "fast"]
    np.testing.assert_allclose(lines[0].get_ydata(), history(0.5).success.mean(axis=1))
    assert sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":") == [
        20,
        40,
    ]
    assert len(ax.collections) == 1  # a min-max band for the method with two runs only
    other = EvaluationHistory(history().steps, history().success, ("a", "b", "c"), 20)
    with pytest.raises(ValueError, match="b's runs differ from a's in tasks"):
        plot_average_success({"a": [history()], "b": [other]}, tmp_path / "bad.png")


def test_retention_heatmap_marks_held_out_tasks_and_trained_cells(tmp_path, figures):
    plot_retention_heatmap(retention(), tmp_path / "r.png", dpi=DPI)
    ax = figures[0].axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["a", "b", "held*"]
    outlined = sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in ax.patches)
    assert outlined == [(0, 1), (1, 2)]  # (task, stage) of the trained cells
    np.testing.assert_allclose(ax.images[0].get_array(), retention().matrix)
    assert "0.80" in [text.get_text() for text in ax.texts]


def test_success_curves_of_one_and_several_runs(tmp_path):
    out = plot_success_curves(history(), tmp_path / "one.png", dpi=DPI, title="three windows")
    assert out == tmp_path / "one.png"
    assert_png(out, (3 * 3.0, 1 * 2.2))  # default: 3 panels in one row
    several = plot_success_curves(
        [history(), history(0.5)], tmp_path / "sub" / "two.png", figsize=(6, 2), dpi=DPI
    )
    assert_png(several, (6, 2))


def test_retention_heatmap(tmp_path):
    out = plot_retention_heatmap(retention(), tmp_path / "retention.png", figsize=(4, 3), dpi=DPI)
    assert_png(out, (4, 3))
    plain = plot_retention_heatmap(
        RetentionMatrix(np.eye(2) * 0.5, ("a", "b"), ("0", "1")),
        tmp_path / "plain.png",
        annotate=False,
        dpi=DPI,
    )
    assert_png(plain, (2.5 + 0.7 * 2, 1.5 + 0.45 * 2))


def test_recall_vs_delay_with_and_without_bands(tmp_path):
    delays = [1, 10, 100, 1000]
    curves = {
        "hcam": RecallCurve(
            np.array(delays, float),
            np.array([1.0, 0.9, 0.8, 0.6]),
            lower=np.array([0.9, 0.8, 0.7, 0.5]),
            upper=np.array([1.0, 1.0, 0.9, 0.7]),
        ),
        "lstm": (delays, [1.0, 0.7, 0.3, 0.25]),
    }
    out = plot_recall_vs_delay(curves, tmp_path / "recall.png", chance=0.25, dpi=DPI)
    assert_png(out, (5.0, 3.5))


def test_trailing_mean_averages_the_window_before_each_point():
    np.testing.assert_allclose(trailing_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(trailing_mean([3, 0, 3], 3), [3, 1.5, 2])
    np.testing.assert_allclose(trailing_mean([0.2, 0.7], 1), [0.2, 0.7])


def test_training_curves_several_seeds_per_agent(tmp_path):
    steps = np.arange(1, 11) * 1000
    curves = {
        "hcam": [(steps, np.linspace(0.25, 1.0, 10)), (steps, np.linspace(0.25, 0.9, 10))],
        "lstm": [(steps, np.full(10, 0.25))],
    }
    out = plot_training_curves(curves, tmp_path / "train.png", chance=0.25, smooth=3, dpi=DPI)
    assert_png(out, (5.0, 3.5))
    with pytest.raises(ValueError, match="equal length"):
        plot_training_curves({"a": [([1, 2], [0.5])]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="at least one run"):
        plot_training_curves({"a": []}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="smooth must be >= 1"):
        plot_training_curves(curves, tmp_path / "bad.png", smooth=0)


def test_bad_plot_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        plot_success_curves(history(), tmp_path / "curves.pdf")
    shifted = EvaluationHistory(np.arange(5, 56, 10), history().success, ("a", "b", "a"), 20)
    with pytest.raises(ValueError, match="same steps"):
        plot_success_curves([history(), shifted], tmp_path / "x.png")
    with pytest.raises(ValueError, match="figsize"):
        plot_retention_heatmap(retention(), tmp_path / "x.png", figsize=(0, 3))
    with pytest.raises(ValueError, match="positive"):
        RecallCurve(np.array([0.0, 10.0]), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="strictly increasing"):
        RecallCurve(np.array([10.0, 1.0]), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="one value per delay"):
        RecallCurve(np.array([1.0, 10.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="contain the curve"):
        RecallCurve(np.array([1.0]), np.array([0.5]), np.array([0.6]), np.array([0.9]))
    with pytest.raises(ValueError, match="both"):
        RecallCurve(np.array([1.0]), np.array([0.5]), lower=np.array([0.4]))
    with pytest.raises(ValueError, match="at least one agent"):
        plot_recall_vs_delay({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="chance"):
        plot_recall_vs_delay({"a": ([1, 2], [0.5, 0.4])}, tmp_path / "x.png", chance=2)
    assert not list(tmp_path.glob("*.png"))


def test_report_writes_markdown_and_json_with_cis_and_plots(tmp_path):
    plot = plot_retention_heatmap(retention(), tmp_path / "plots" / "retention.png", dpi=DPI)
    metrics = {
        "finetune": {
            "performance": ConfidenceInterval(0.05, 0.03, 0.08, 0.9),
            "forgetting": {"mean": 0.73, "lower": 0.7, "upper": 0.76, "confidence": 0.9},
            "forward_transfer": None,
        },
        "packnet": {"performance": 0.8, "forgetting": float("nan")},
    }
    md_path, json_path = write_report(
        tmp_path,
        metrics,
        {"retention": plot},
        title="CW3",
        details={"seeds": [0, 1], "x": math.nan},
        sections={"Per task": "| a | b |\n|---|---|\n| 1 | 2 |\n"},
    )
    markdown = md_path.read_text()
    # Sections come after the table and before the plots.
    assert "\n## Per task\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## retention" in markdown
    assert markdown.index("| packnet |") < markdown.index("## Per task")
    assert "# CW3" in markdown and "90% bootstrap intervals" in markdown
    assert "| | performance | forgetting | forward_transfer |" in markdown
    assert "| finetune | 0.05 [0.03, 0.08] | 0.73 [0.70, 0.76] | - |" in markdown
    assert "| packnet | 0.80 | - | - |" in markdown
    assert "![retention](plots/retention.png)" in markdown
    document = json.loads(json_path.read_text())
    assert document["metrics"]["finetune"]["performance"]["upper"] == 0.08
    assert document["metrics"]["packnet"]["forgetting"]["mean"] is None
    assert document["plots"] == {"retention": "plots/retention.png"}
    assert document["details"] == {"seeds": [0, 1], "x": None}


def test_bad_report_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match="at least one row"):
        write_report(tmp_path, {})
    with pytest.raises(ValueError, match=r"plots \['curves'\] do not exist"):
        write_report(tmp_path, {"m": {"p": 0.5}}, {"curves": tmp_path / "missing.png"})
    with pytest.raises(ValueError, match="'mean'"):
        write_report(tmp_path, {"m": {"p": {"lower": 0.1}}})
    with pytest.raises(ValueError, match="metric values must be finite"):
        write_report(tmp_path / "inf", {"m": {"p": float("inf")}})
    assert not (tmp_path / "inf" / "report.md").exists()  # no half-written report


def test_report_takes_numpy_values(tmp_path):
    details = {"a": np.float32(0.5), "b": np.arange(2), "c": np.float64("inf")}
    _, json_path = write_report(tmp_path, {"m": {"p": np.float64(0.25)}}, details=details)
    document = json.loads(json_path.read_text())
    assert document["metrics"]["m"]["p"]["mean"] == 0.25
    assert document["details"] == {"a": 0.5, "b": [0, 1], "c": None}
