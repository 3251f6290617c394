"""``memrl report``: one table and plots for any mix of runs, aggregated over seeds.

Runs are found (:func:`~memrl.eval.run_results.find_run_dirs`), read from their ``config.json``
and results (:mod:`memrl.eval.run_results`), grouped into studies and groups of seeds, and
aggregated with rliable (:mod:`memrl.eval.aggregate`). Continual studies also get Continual
World's table (P, F, FT with its 90% bootstrap intervals over seeds) from
:func:`~memrl.eval.continual.evaluate_continual_runs`, written in full under
``OUT/continual/<study>/``.

Forward transfer needs single-task reference curves. Among the runs given, a single-task
fine-tuning run of a task of a continual study, with its budget and evaluation protocol, is such
a reference (``scripts/continual_study.py`` lays them out under ``reference/<task>/seed<k>``): it
is not a group of its own, and its finished runs are the study's curves. ``reference`` (a file)
replaces them; with neither, the default curves of ``evaluate_continual_runs`` are used.

Output (``out_dir``): ``report.md``, ``report.json`` and PNGs: each study's IQM and mean with
95% intervals, its performance profile, recall vs delay where runs were evaluated at several
delays, and for continual studies the methods' average success.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memrl.agents.continual.evaluation_log import EvaluationLog
from memrl.eval.aggregate import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    THRESHOLDS,
    Group,
    condition_estimates,
    group_details,
    group_runs,
    interval_estimates,
    performance_profiles,
)
from memrl.eval.aggregate_plots import plot_interval_estimates, plot_performance_profiles
from memrl.eval.continual import evaluate_continual_runs
from memrl.eval.plots import RecallCurve, plot_recall_vs_delay
from memrl.eval.reference_curves import reference_from_runs
from memrl.eval.report import write_report
from memrl.eval.run_results import RunResult, find_run_dirs, read_run


def report_runs(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    reference: str | Path | None = None,
    reps: int = BOOTSTRAP_REPS,
) -> dict[str, Any]:
    """Aggregate the runs at or under ``paths`` into one report in ``out_dir``.

    Args:
        paths: Run directories, sweep directories, or any directories holding runs.
        out_dir: Where ``report.md``, ``report.json`` and the plots go (created).
        reference: Single-task reference curves (JSON) for continual runs' forward transfer.
        reps: Bootstrap resamples.

    Returns:
        The report (``report.json``'s content).

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: No run has a score, or one setting has two runs of one seed.
    """
    out = Path(out_dir)
    run_dirs = find_run_dirs(paths)
    results, skipped = [], []
    for run_dir in run_dirs:
        try:
            results.append(read_run(run_dir))
        except (ValueError, FileNotFoundError) as error:
            skipped.append(str(error))
    references, results = _split_references(results)
    if not results:
        where = ", ".join(map(str, paths))
        raise ValueError(f"no run with a score under {where} ({len(run_dirs)} run directories"
                         + (f"; {'; '.join(skipped)}" if skipped else "") + ")")  # fmt: skip
    groups = group_runs(results)
    studies: dict[str, list[Group]] = {}
    for group in groups:
        studies.setdefault(group.study, []).append(group)
    rows: dict[str, dict[str, Any]] = {}
    plots: dict[str, Path] = {}
    sections: dict[str, str] = {"Groups": _groups_table(groups)}
    notes = [f"runs not reported: {reason}" for reason in skipped]
    details: dict[str, Any] = {"runs": len(results), "studies": {}, "skipped": skipped,
                               "bootstrap": {"reps": reps, "confidence": CONFIDENCE,
                                             "seed": BOOTSTRAP_SEED}}  # fmt: skip
    for index, (study, members) in enumerate(studies.items()):
        slug = f"{index + 1}-{_slug(study)}"
        scores = {group.label: group.scores for group in members}
        estimates = interval_estimates(scores, reps)
        for group in members:
            rows[f"{group.label} on {study}"] = {k: v.to_dict() for k, v in
                                                estimates[group.label].items()}  # fmt: skip
        profiles = performance_profiles(scores, THRESHOLDS, reps)
        plots[f"IQM and mean, 95% CIs: {study}"] = plot_interval_estimates(
            estimates, out / f"aggregates_{slug}.png", title=study
        )
        plots[f"performance profile: {study}"] = plot_performance_profiles(
            THRESHOLDS, profiles, out / f"profile_{slug}.png", title=study
        )
        entry: dict[str, Any] = {
            "kind": members[0].kind,
            "groups": [group_details(g, estimates[g.label]) for g in members],
            "profiles": {"thresholds": THRESHOLDS.tolist(), **{
                label: {"profile": p.tolist(), "lower": lo.tolist(), "upper": up.tolist()}
                for label, (p, lo, up) in profiles.items()}},
        }  # fmt: skip
        if members[0].kind == "memory":
            sections[f"Success per condition: {study}"] = _conditions_table(members)
            if members[0].runs[0].delays is not None:
                entry["recall"] = _recall(members, study, out / f"recall_{slug}.png", reps, plots)
        else:
            entry["continual_world"] = _continual_world(
                members, references, reference, out / "continual" / slug, sections, plots, notes
            )
        details["studies"][study] = entry
    title = f"memrl report: {len(results)} runs, {len(groups)} groups in {len(studies)} studies"
    notes.insert(0, "IQM: interquartile mean over every run and condition of a group (rliable); "
                 "intervals are 95% stratified bootstrap intervals over runs")  # fmt: skip
    _, json_path = write_report(
        out, rows, plots, title=title, details=details, notes=notes, sections=sections
    )
    report: dict[str, Any] = json.loads(json_path.read_text())
    return report


def _split_references(results: Sequence[RunResult]) -> tuple[list[RunResult], list[RunResult]]:
    """(single-task reference runs of the continual studies given, every other run)."""
    protocols: dict[tuple, set[str]] = {}
    for result in results:
        if result.kind == "continual" and len(result.conditions) > 1:
            protocols.setdefault(_protocol(result.run_dir), set()).update(result.conditions)
    references: list[RunResult] = []
    others: list[RunResult] = []
    for result in results:
        is_reference = (
            result.kind == "continual"
            and len(result.conditions) == 1
            and result.agent == "finetune"
            and result.conditions[0] in protocols.get(_protocol(result.run_dir), ())
        )
        (references if is_reference else others).append(result)  # fmt: skip
    return references, others


def _protocol(run_dir: Path) -> tuple:
    """What a reference run must share with the runs it is a reference for."""
    log = EvaluationLog.load(run_dir)
    return (log.learner, log.steps_per_task, log.steps[0] if log.steps else 0,
            log.eval_episodes, log.deterministic)  # fmt: skip


def _continual_world(
    members: Sequence[Group],
    references: Sequence[RunResult],
    reference: str | Path | None,
    out: Path,
    sections: dict[str, str],
    plots: dict[str, Path],
    notes: list[str],
) -> list[dict[str, Any]]:
    """Continual World's table of a continual study, one ``evaluate_continual_runs`` per batch.

    A batch holds at most one group per method (Continual World's table has a row per method);
    a study with one setting per method is one batch.
    """
    study = members[0].study
    curves, source = _reference_curves(members, references, reference)
    by_method: dict[str, list[Group]] = {}
    for group in members:
        by_method.setdefault(group.runs[0].agent, []).append(group)
    batches = [[groups[i] for groups in by_method.values() if i < len(groups)]
               for i in range(max(len(groups) for groups in by_method.values()))]  # fmt: skip
    tables = []
    for number, batch in enumerate(batches, start=1):
        target = out if len(batches) == 1 else out.with_name(f"{out.name}-{number}")
        heading = f"Continual World metrics: {study}"
        if len(batches) > 1:
            heading += f" ({', '.join(group.label for group in batch)})"
        run_dirs = [run.run_dir for group in batch for run in group.runs]
        try:
            report = evaluate_continual_runs(run_dirs, reference=curves, out_dir=target)
        except ValueError as error:
            notes.append(f"{heading}: not computed: {error}")
            continue
        body = [report["details"]["table"], "", *[f"- {n}" for n in report["notes"]],
                *([f"- reference curves from: {source}"] if source else []),
                f"- the full report: {target / 'report.md'}"]  # fmt: skip
        for title, table in report["details"]["per_task_tables"].items():
            if title.startswith(("Success at the end", "Forgetting / forward transfer")):
                body += ["", f"{title}:", "", table]
        sections[heading] = "\n".join(body)
        if (target / "average_success.png").exists():
            plots[f"average success: {study}"] = target / "average_success.png"
        tables.append({"table": report["details"]["table"], "metrics": report["metrics"],
                       "report": str(target / "report.md"),
                       "runs": [str(d) for d in run_dirs]})  # fmt: skip
    return tables


def _reference_curves(
    members: Sequence[Group], references: Sequence[RunResult], reference: str | Path | None
) -> tuple[str | Path | Mapping[str, np.ndarray] | None, str | None]:
    """The study's reference curves: the file given, else its reference runs among the runs."""
    if reference is not None:
        return reference, None
    protocol = _protocol(members[0].runs[0].run_dir)
    tasks = set(members[0].conditions)
    mine = [r.run_dir for r in references
            if r.conditions[0] in tasks and _protocol(r.run_dir) == protocol
            and EvaluationLog.load(r.run_dir).finished]  # fmt: skip
    if not mine:
        return None, None
    parent = os.path.commonpath([str(d) for d in mine])
    return reference_from_runs(mine), f"{len(mine)} single-task runs under {parent}"


def _recall(
    members: Sequence[Group], study: str, path: Path, reps: int, plots: dict[str, Path]
) -> dict[str, Any]:
    """Recall vs delay of a study's groups: per-delay IQM over seeds with 95% CIs."""
    curves = condition_estimates({group.label: group.scores for group in members}, reps)
    delays = members[0].runs[0].delays
    assert delays is not None
    plotted = {
        label: RecallCurve(
            np.array(delays, float), iqm, np.minimum(lower, iqm), np.maximum(upper, iqm)
        )  # fmt: skip
        for label, (iqm, lower, upper) in curves.items()
    }
    plots[f"recall vs delay (IQM over seeds, 95% CIs): {study}"] = plot_recall_vs_delay(
        plotted, path, chance=members[0].runs[0].chance, title=study
    )
    return {"delays": list(delays), **{label: {"iqm": c[0].tolist(), "lower": c[1].tolist(),
                                               "upper": c[2].tolist()}
                                       for label, c in curves.items()}}  # fmt: skip


def _groups_table(groups: Sequence[Group]) -> str:
    """A Markdown table of the groups: study, group, runs, seeds, what the scores are."""
    lines = ["| study | group | runs | seeds | scores |", "|---|---|---|---|---|"]
    for g in groups:
        lines.append(f"| {g.study} | {g.label} | {len(g.runs)} | "
                     f"{', '.join(map(str, g.seeds))} | {g.runs[0].source} |")  # fmt: skip
    return "\n".join(lines)


def _conditions_table(members: Sequence[Group]) -> str:
    """A Markdown table of a memory study: mean over seeds (min-max) per condition and group."""
    conditions = members[0].conditions
    lines = ["| group | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for group in members:
        scores = group.scores
        cells = [f"{m:.2f} ({lo:.2f}-{hi:.2f})" if len(group.runs) > 1 else f"{m:.2f}"
                 for m, lo, hi in zip(scores.mean(0), scores.min(0), scores.max(0),
                                      strict=True)]  # fmt: skip
        lines.append(f"| {group.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nMean over seeds (min-max)."


def _slug(text: str) -> str:
    """``text`` as part of a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.removeprefix("memrl/"))[:40].strip("-")
