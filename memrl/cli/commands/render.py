"""``memrl render``: an episode with random actions as a GIF or a PNG sheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memrl.cli.arguments import env_id, integer, positive_int


def add_parser(subparsers: Any) -> None:
    """Add ``memrl render`` to the command's subparsers."""
    p = subparsers.add_parser(
        "render",
        help="save an episode (random actions) as a GIF or a PNG sheet",
        description="Run one episode with random actions and save its rgb_array frames: an "
        "animated GIF for .gif, a sheet of 24 evenly spaced frames for .png.",
    )
    p.add_argument("env_id", type=env_id, metavar="ID", help="e.g. memrl/Ballet-4-delay16-v0")
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .gif or .png")
    p.add_argument("--seed", type=integer, default=0, help="seed of the episode")
    p.add_argument("--fps", type=positive_int, default=8, help="GIF frames per second")
    p.add_argument(
        "--max-frames", type=positive_int, default=None, help="stop after this many frames"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record the episode and save it."""
    from memrl.envs.media import SUFFIXES, record_episode, save_frames

    if Path(args.out).suffix.lower() not in SUFFIXES:
        print(f"error: --out must end in one of {SUFFIXES}, got {args.out!r}", file=sys.stderr)
        return 2
    frames = record_episode(args.env_id, seed=args.seed, max_frames=args.max_frames)
    path = save_frames(frames, args.out, fps=args.fps)
    print(f"wrote {path} ({len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} px)")
    return 0
