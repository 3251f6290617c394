"""``memrl list``: the environment suite as a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from memrl.cli.arguments import existing_file
from memrl.envs import ALL


def add_parser(subparsers: Any) -> None:
    """Add ``memrl list`` to the command's subparsers."""
    p = subparsers.add_parser("list", help="print the environment suite as a table")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--family", choices=sorted({e.family for e in ALL.values()}), help="only this family"
    )
    p.add_argument(
        "--bench",
        metavar="FILE",
        type=existing_file,
        help="add steps/s columns from a `memrl bench envs --json` file",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the suite table."""
    from memrl.envs.table import suite_table

    rates = _bench_rows(args.bench) if args.bench else None
    print(suite_table(markdown=args.markdown, family=args.family, bench_rows=rates))
    return 0


def _bench_rows(path: str) -> list[dict]:
    """The ``results`` rows of a ``memrl bench envs --json`` file.

    Raises:
        ValueError: The file is not JSON, or not an object whose ``results`` is a list of rows
            with ``id`` and ``num_envs``.
    """
    expected = (
        'expected the JSON that `memrl bench envs --json FILE` writes: {"results": [{"id": ..., '
        '"num_envs": ..., "single_steps_per_s": ..., "vector_steps_per_s": ...}, ...]}'
    )
    try:
        report = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"--bench {path} is not JSON ({error}); {expected}") from None
    rows = report.get("results") if isinstance(report, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f'--bench {path} has no "results" list; {expected}')
    for row in rows:
        if not isinstance(row, dict) or not {"id", "num_envs"} <= row.keys():
            raise ValueError(f"--bench {path} has a result row without id and num_envs: {row!r}; "
                             f"{expected}")  # fmt: skip
    return rows
