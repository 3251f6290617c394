"""``memrl play``: play an env in the terminal."""

from __future__ import annotations

import argparse
from typing import Any

from memrl.cli.arguments import env_id, integer, positive_int


def add_parser(subparsers: Any) -> None:
    """Add ``memrl play`` to the command's subparsers."""
    p = subparsers.add_parser(
        "play",
        help="play an env in the terminal",
        description="Play an env in the terminal: its ansi render is printed before each step and "
        "you type an action by index or name. Enter repeats the last action; 'q' or 'quit' stops.",
    )
    p.add_argument("env_id", type=env_id, metavar="ID", help="e.g. memrl/Ballet-2-delay16-v0")
    p.add_argument("--seed", type=integer, default=None, help="seed of the first episode")
    p.add_argument("--episodes", type=positive_int, default=1, help="episodes to play")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Play the episodes."""
    from memrl.envs.play import play

    play(args.env_id, seed=args.seed, episodes=args.episodes)
    return 0
