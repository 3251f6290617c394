"""The ``memrl`` command.

Subcommands: ``list`` (the suite), ``bench`` (speed: ``envs``, ``streams``, ``continual``,
``memory``, ``sweep``), ``train``, ``eval``, ``sweep`` (a grid of runs on Ray Tune), ``report``
(one table and plots across runs and seeds), ``data`` (offline datasets: ``collect``,
``experts``, ``info``), ``pretrain`` (the MDDT, offline), ``play`` (an env in the terminal),
``render`` (an episode as a GIF or PNG) and ``run demo`` (the showcase). Each is a module of
:mod:`memrl.cli.commands`, named as the command and listed in :data:`COMMANDS`; a new command is
a new module there plus its name here. Heavy modules are imported inside each subcommand so that
``memrl --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from memrl import __version__
from memrl.agents.run_lock import RunInUseError
from memrl.cli.arguments import CommandParser

COMMANDS = (
    "list", "train", "eval", "sweep", "report", "data", "pretrain", "bench", "play", "render",
    "run",
)  # fmt: skip
"""The subcommands, in ``memrl --help``'s order: modules of ``memrl.cli.commands``."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``memrl`` command."""
    parser = CommandParser(
        prog="memrl",
        description="memrl: episodic-memory and continual RL environments, agents and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"memrl.cli.commands.{name}").add_parser(subparsers)
    return parser


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Print a warning as a ``warning: message`` line, without Python's file and line."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memrl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # named by the (sub)command that was given them, with its own usage
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.argv = argv
    with warnings.catch_warnings():  # restores Python's own display on the way out
        warnings.showwarning = _show_warning
        try:
            code = int(args.func(args))
            sys.stdout.flush()  # a closed pipe shows here rather than at exit
            return code
        except (ValueError, FileNotFoundError, FileExistsError, RunInUseError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`memrl list | head -1`): stop quietly, with the status a shell
            # gives a command killed by SIGPIPE, as coreutils' commands do. Python would flush
            # stdout again at exit, so it goes to /dev/null first.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 128 + signal.SIGPIPE
