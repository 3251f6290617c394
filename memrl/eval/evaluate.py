"""``memrl eval RUN_DIR``: how well a trained agent remembers, written as a report.

What is measured depends on the env the agent trained on:

- Ballet / BalletGrid: success on every paper level (2, 4, 8 dancers x delay 16, 48) of the same
  observation type, the trained level among them;
- DelayedMatch: recall vs delay, success at delays 16 ... 4096 with the trained number of symbols;
- RoomBallet: accuracy per question type (first seen, last seen, most visited, least visited) on
  the trained configuration (rooms, visits, movement);
- anything else: success on the training env.

Episodes run in a batched env with the agent's ``predict`` (SB3's signature), memory carried
across steps and cleared at every episode start. ``report.json``, ``report.md`` and PNG plots go
into the run directory, or into another directory given as ``out_dir``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memrl.envs.vector import make_vector_env

DELAYS = (16, 64, 256, 1024, 4096)
BALLET_LEVELS = tuple((n, d) for d in (16, 48) for n in (2, 4, 8))


@dataclass
class EvalCase:
    """One evaluation condition: a label, an env and its keyword arguments."""

    label: str
    env_id: str
    env_kwargs: dict[str, Any]


def evaluation_cases(env_id: str, env_kwargs: dict[str, Any]) -> tuple[str, list[EvalCase]]:
    """What to evaluate for an agent trained on ``env_id``: (kind, cases)."""
    if env_id.startswith("memrl/Ballet"):
        family = env_id.split("-")[0]  # memrl/Ballet or memrl/BalletGrid
        return "levels", [
            EvalCase(f"{n} dancers, delay {d}", f"{family}-{n}-delay{d}-v0", {})
            for n, d in BALLET_LEVELS
        ]
    if env_id.startswith("memrl/DelayedMatch"):
        import gymnasium

        trained = {**gymnasium.spec(env_id).kwargs, **env_kwargs}  # the variant's settings too
        return "recall_vs_delay", [
            EvalCase(f"delay {d}", "memrl/DelayedMatch-v0", {**trained, "delay": d}) for d in DELAYS
        ]
    if env_id.startswith("memrl/RoomBallet"):  # each type on the trained rooms, visits, movement
        from memrl.envs.room_ballet import QUESTION_TYPES

        return "question_types", [
            EvalCase(question, env_id, {**env_kwargs, "question": question})
            for question in QUESTION_TYPES
        ]
    return "success", [EvalCase(env_id, env_id, env_kwargs)]


def run_episodes(
    agent: Any,
    env_id: str,
    env_kwargs: dict[str, Any],
    episodes: int,
    seed: int = 0,
    num_envs: int = 32,
    deterministic: bool = False,
) -> dict[str, float]:
    """Play ``episodes`` episodes with ``agent.predict``; success rate and mean return.

    Each of the ``n`` envs plays a fixed quota of episodes (``(episodes + i) // n`` for env ``i``,
    as stable-baselines3's ``evaluate_policy``), and episodes past an env's quota are ignored.
    Keeping the first ``episodes`` episodes to *finish* instead would over-count short episodes
    (an early wrong choice ends sooner than a timeout). ``seed`` seeds the episodes and torch's
    sampling of the actions, so a seeded evaluation repeats exactly.
    """
    with torch.random.fork_rng():  # sampled actions repeat under a seed; the caller's RNG is kept
        torch.manual_seed(seed)
        return _play(agent, env_id, env_kwargs, episodes, seed, num_envs, deterministic)


def _play(
    agent: Any,
    env_id: str,
    env_kwargs: dict[str, Any],
    episodes: int,
    seed: int,
    num_envs: int,
    deterministic: bool,
) -> dict[str, float]:
    """:func:`run_episodes`' loop."""
    envs = make_vector_env(env_id, min(num_envs, episodes), env_kwargs)
    n = envs.num_envs
    quota = np.array([(episodes + i) // n for i in range(n)])
    counted = np.zeros(n, dtype=int)
    obs, info = envs.reset(seed=seed)
    observe = getattr(agent, "observe", None)  # agents that read the env's info (sat-ama)
    if observe is not None:
        observe(info)
    state = None
    starts = np.ones(n, dtype=bool)
    ignored = np.zeros(n, dtype=bool)  # the autoreset step after an episode's end
    returns = np.zeros(n)
    wins: list[bool] = []
    totals: list[float] = []
    while (counted < quota).any():
        actions, state = agent.predict(
            obs, state=state, episode_start=starts, deterministic=deterministic
        )
        obs, reward, terminated, truncated, info = envs.step(actions)
        if observe is not None:
            observe(info)
        ended = (terminated | truncated) & ~ignored
        returns += np.where(ignored, 0.0, reward)
        for i in np.flatnonzero(ended):
            if counted[i] < quota[i]:
                wins.append(bool(info["is_success"][i]))
                totals.append(float(returns[i]))
                counted[i] += 1
            returns[i] = 0.0
        starts = ignored.copy()  # the step after the ignored one shows a new episode
        ignored = ended
    envs.close()
    return {
        "success_rate": float(np.mean(wins)),
        "mean_return": float(np.mean(totals)),
        "episodes": float(len(wins)),
    }


def evaluate_run(
    agent: Any,
    info: dict[str, Any],
    run_dir: str | Path,
    episodes: int = 200,
    seed: int = 10_000,
    deterministic: bool = False,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a trained agent and write ``report.json``, ``report.md`` and plots.

    Args:
        agent: Anything with SB3's ``predict`` (``memrl.agents.loading.load_agent`` loads it).
        info: ``{"agent": name, "env_id": ..., "env_kwargs": ...}`` of the training run.
        run_dir: The run's directory (written by ``memrl train``); the report names it.
        episodes: Episodes per condition.
        seed: Seed of the evaluation episodes (distinct from training seeds by default).
        deterministic: Act greedily instead of sampling.
        out_dir: An existing directory for the report's files (default: ``run_dir``); nothing
            is written anywhere else.

    Returns:
        The report as a dict.
    """
    run_dir = Path(run_dir)
    out_dir = run_dir if out_dir is None else Path(out_dir)
    kind, cases = evaluation_cases(info["env_id"], info["env_kwargs"])
    results = [
        {"label": case.label, "env_id": case.env_id, "env_kwargs": case.env_kwargs,
         **run_episodes(agent, case.env_id, case.env_kwargs, episodes, seed,
                        deterministic=deterministic)}
        for case in cases
    ]  # fmt: skip
    report = {"run_dir": str(run_dir), **info, "kind": kind, "episodes": episodes, "seed": seed,
              "deterministic": deterministic, "results": results}  # fmt: skip
    plots = _plot(kind, results, info["agent"], out_dir)
    report["plots"] = [str(p.name) for p in plots]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(_markdown(report))
    return report


def _plot(kind: str, results: list[dict[str, Any]], agent: str, out_dir: Path) -> list[Path]:
    if kind != "recall_vs_delay":
        return []
    from memrl.eval.plots import plot_recall_vs_delay

    delays = [r["env_kwargs"]["delay"] for r in results]
    success = [r["success_rate"] for r in results]
    chance = 1 / results[0]["env_kwargs"]["num_symbols"]
    path = out_dir / "recall_vs_delay.png"
    return [plot_recall_vs_delay({agent: (delays, success)}, path, chance=chance)]


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation of `{report['run_dir']}`",
        "",
        f"Agent `{report['agent']}` trained on `{report['env_id']}`"
        + (f" with `{json.dumps(report['env_kwargs'])}`" if report.get("env_kwargs") else "")
        + f"; {report['episodes']} episodes per condition, seed {report['seed']}, "
        + ("greedy actions." if report.get("deterministic") else "sampled actions."),
        "",
        "| condition | env | success | mean return |",
        "|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(f"| {r['label']} | `{r['env_id']}` | {r['success_rate']:.3f} | "
                     f"{r['mean_return']:.3f} |")  # fmt: skip
    if "allocator_choices" in report:
        picks = ", ".join(f"{q}: {s}" for q, s in report["allocator_choices"].items())
        lines += ["", f"Strategy the allocator picks per question type: {picks}."]
    lines += ["", *[f"![{p}]({p})" for p in report["plots"]]]
    return "\n".join(lines) + "\n"
