"""The argument parser of the ``memrl`` command, and the values its options take.

:class:`CommandParser` answers a mistake in three lines (the command's short usage, the error, and
where to read more) instead of argparse's full usage block. The value types raise
``argparse.ArgumentTypeError`` with a sentence for the user, so an error never shows the name of
the function that parsed the value.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, NoReturn

from memrl.envs import ALL


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are short: usage line, error, ``see: PROG --help``.

    Every parser of the command (subcommands are made with this class too) records itself as the
    ``command_parser`` default, so the innermost one that parsed a command line is known after
    parsing: :func:`memrl.cli.main` reports unrecognised arguments through it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(command_parser=self)

    def short_usage(self) -> str:
        """``usage: PROG`` with the required arguments only, then ``[options]``."""
        required = [a for a in self._actions if a.required or not a.option_strings]
        formatter = self._get_formatter()
        formatter.add_usage(None, required, [], prefix="usage: ")
        return f"{formatter.format_help().strip()} [options]"

    def error(self, message: str) -> NoReturn:
        """Print the short usage, ``PROG: error: message`` and a pointer to ``--help``; exit 2."""
        usage = self.short_usage()
        self.exit(2, f"{usage}\n{self.prog}: error: {message}\nsee: {self.prog} --help\n")


def _parsed(text: str, kind: type[int] | type[float], expected: str) -> Any:
    """``kind(text)``, or an ``ArgumentTypeError`` saying what was ``expected``."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
    return value


def integer(text: str) -> int:
    """An option's value that must be an integer."""
    return int(_parsed(text, int, "an integer"))


def number(text: str) -> float:
    """An option's value that must be a finite number."""
    return float(_parsed(text, float, "a number"))


def positive_int(text: str) -> int:
    """An option's value that must be an integer >= 1."""
    value = int(_parsed(text, int, "an integer >= 1"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An option's value that must be an integer >= 0."""
    value = int(_parsed(text, int, "an integer >= 0"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """An option's value that must be a number > 0."""
    value = float(_parsed(text, float, "a number > 0"))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """An option's value that must be a JSON object (``'{"chunk_size": 32}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def existing_file(text: str) -> str:
    """An option's value that must name an existing file."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def env_id(text: str) -> str:
    """A registered memrl env id, with or without its ``memrl/`` namespace."""
    if text in ALL:
        return text
    if f"memrl/{text}" in ALL:  # allow the id without its namespace
        return f"memrl/{text}"
    close = [i for i in ALL if text.lower() in i.lower()]
    hint = f" Did you mean one of: {', '.join(close[:6])}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown env id {text!r}.{hint} Run `memrl list` for every registered id."
    )
