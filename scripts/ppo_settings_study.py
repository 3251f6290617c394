"""Memory PPO's settings: which ones let every core learn fast, in wall-clock time.

Each setting (memory-PPO options) is timed with `memrl bench learning`: the
demo's HCAM (2 layers of width 64) and memrl's LSTM train from scratch on
memrl/DelayedMatch-Easy-v0 until their success over the last 100 training episodes reaches 0.9
(budget 300,000 env steps), one torch thread, seed by seed. Each (setting, seed) is one
invocation whose JSON goes to ARCHIVE/<setting>-seed<seed>.json (committed under
assets/results/ppo_settings/); a finished one is not run again, so the study resumes after a
kill, and `--table` rebuilds docs/RESULTS.md's table from the archive without training.

    python scripts/ppo_settings_study.py --dry-run    # the plan, and its cost
    python scripts/ppo_settings_study.py              # run what is missing
    python scripts/ppo_settings_study.py --table      # the table, from the archive
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memrl.bench.learning import summarize_runs

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "assets" / "results" / "ppo_settings"
SETTINGS: dict[str, dict[str, Any]] = {
    "e4_m4": {"update_epochs": 4, "num_minibatches": 4},
    "e6_m8": {"update_epochs": 6, "num_minibatches": 8},
    "e8_m8": {"update_epochs": 8, "num_minibatches": 8},
    "e10_m8": {"update_epochs": 10, "num_minibatches": 8},
    "rppo_like": {"num_envs": 8, "update_epochs": 10, "num_minibatches": 8, "ent_coef": 0.0},
}
"""Setting name -> memory-PPO options (the rest at the defaults: 16 envs x 128-step windows, lr
3e-4, entropy 0.01). e4_m4 was the default schedule until 2026-12-07 (its archived runs were
made without --ppo; their JSON spells the options out), e8_m8 is since; rppo_like is
RecurrentPPO's schedule (8 envs x 128 steps, 10 epochs, minibatches of one env's 128 steps, no
entropy bonus)."""
AGENTS = ("hcam", "lstm")
REFERENCE = "recurrent_ppo"
"""sb3-contrib's RecurrentPPO at SB3's defaults, timed the same way: the field's standard LSTM
agent, against which memrl's are measured (ARCHIVE/recurrent_ppo-seed<seed>.json)."""
CHOSEN = "e8_m8"
"""The setting the docs recommend (and compare with RecurrentPPO)."""
SEEDS = (0, 1, 2)
MAX_STEPS = 300_000


def archive_path(archive: Path, setting: str, seed: int) -> Path:
    """Where one (setting, seed)'s bench JSON is kept."""
    return archive / f"{setting}-seed{seed}.json"


def bench_command(setting: str, seed: int, archive: Path) -> list[str]:
    """The `memrl bench learning` arguments of one (setting, seed)."""
    agents = ["sb3-recurrent-ppo"] if setting == REFERENCE else list(AGENTS)
    command = ["bench", "learning", "--agents", *agents, "--seeds", str(seed), "--max-steps",
               str(MAX_STEPS), "--json", str(archive_path(archive, setting, seed))]  # fmt: skip
    if SETTINGS.get(setting):
        command += ["--ppo", json.dumps(SETTINGS[setting])]
    return command


def load_runs(archive: Path, settings: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every archived run of ``settings``, by setting (a missing seed is left out)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for setting in settings:
        for seed in SEEDS:
            path = archive_path(archive, setting, seed)
            if path.exists():
                runs.setdefault(setting, []).extend(json.loads(path.read_text())["runs"])
    return runs


def _cell(runs: list[dict[str, Any]], agent: str) -> tuple[str, str]:
    """Seconds per seed (* not reached) with their median, and env steps per seed, of one agent."""
    mine = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["seed"])
    return summarize_runs(mine) if mine else ("-", "-")


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """The Markdown table of docs/RESULTS.md: one row per setting."""
    lines = [
        "| setting | memory-PPO options | HCAM seconds to 0.9 | HCAM env steps "
        "| LSTM seconds to 0.9 | LSTM env steps |",
        "|---|---|---|---|---|---|",
    ]
    for setting, rows in runs.items():
        if setting == REFERENCE:
            continue
        hcam, hcam_steps = _cell(rows, "hcam")
        lstm, lstm_steps = _cell(rows, "lstm")
        options = f"`{json.dumps(SETTINGS[setting])}`"
        lines.append(f"| {setting} | {options} | {hcam} | {hcam_steps} | {lstm} | {lstm_steps} |")
    seeds = sorted({r["seed"] for rows in runs.values() for r in rows})
    lines += ["", f"Seeds {seeds}; * not reached within {MAX_STEPS:,} env steps (the time the "
              "budget took)."]  # fmt: skip
    if REFERENCE in runs:
        seconds, steps = _cell(runs[REFERENCE], "sb3-recurrent-ppo")
        lines += ["", f"SB3's RecurrentPPO at its defaults, seconds to 0.9: {seconds}; env steps: "
                  f"{steps}."]  # fmt: skip
        if CHOSEN in runs:
            theirs = statistics.median(r["seconds"] for r in runs[REFERENCE])

            def median(agent: str) -> float:
                return statistics.median(r["seconds"] for r in runs[CHOSEN] if r["agent"] == agent)

            lines[-1] += (f" Under {CHOSEN}, HCAM is {theirs / median('hcam'):.0f}x faster "
                          f"(medians), memrl's LSTM {theirs / median('lstm'):.0f}x.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the missing (setting, seed) benches, or print the table of the archive."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE, help="where the JSONs go")
    parser.add_argument(
        "--settings", nargs="+", choices=[*SETTINGS, REFERENCE], default=[*SETTINGS, REFERENCE],
        help=f"settings to run or tabulate ({REFERENCE}: SB3's RecurrentPPO, for reference)",
    )  # fmt: skip
    parser.add_argument("--table", action="store_true", help="print the archive's table")
    parser.add_argument("--dry-run", action="store_true", help="print what is left and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(table(load_runs(args.archive, args.settings)), end="")
        return 0
    todo = [(s, seed) for seed in SEEDS for s in args.settings
            if not archive_path(args.archive, s, seed).exists()]  # fmt: skip
    print(
        f"{len(todo)} of {len(SEEDS) * len(args.settings)} (setting, seed) runs left; a "
        f"memory-PPO setting takes 1-3 minutes a seed here (HCAM 20-50 s; the LSTM up to "
        f"{MAX_STEPS:,} steps, 70-100 s), {REFERENCE} about 10 (45 if it never gets there)"
    )
    for setting, seed in todo:
        print("  memrl " + " ".join(bench_command(setting, seed, args.archive)))
    if args.dry_run:
        return 0
    from memrl.cli import main as memrl

    args.archive.mkdir(parents=True, exist_ok=True)
    for setting, seed in todo:
        if memrl(bench_command(setting, seed, args.archive)) != 0:
            raise SystemExit(f"bench of {setting} seed {seed} failed")
    print(table(load_runs(args.archive, args.settings)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
