"""The project's promises about itself: README commands, CI script, the suite table."""

from __future__ import annotations

import json
import re
from pathlib import Path

from memrl.envs.table import suite_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_commands() -> list[str]:
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", README, re.S)
    assert first_block, "README.md must open with a command block"
    return [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line]


def test_readme_opens_with_install_and_run_and_test_commands():
    run, test = _readme_commands()[:2]
    assert run.startswith("pip install") and "memrl run demo" in run
    assert test.startswith("pip install") and test.endswith("pytest")


def test_ci_runs_exactly_the_readme_test_command():
    test = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci], f"{test!r} not in .ci/run"


def test_readme_suite_table_matches_the_registry_and_bench_file():
    rows = json.loads((ROOT / "docs" / "bench_envs.json").read_text())["results"]
    table = suite_table(markdown=True, bench_rows=rows)
    assert table in README, "README's suite table is stale: regenerate it with `memrl list`"
