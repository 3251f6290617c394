"""Episodes as pictures: record ``rgb_array`` frames, save them as a GIF or a PNG sheet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

Policy = Callable[[Any, dict[str, Any]], Any]
"""A function from (observation, info) to an action."""

SUFFIXES = (".gif", ".png")


def record_episode(
    env_id: str,
    seed: int = 0,
    policy: Policy | None = None,
    max_frames: int | None = None,
    **kwargs: Any,
) -> list[np.ndarray]:
    """Run one episode with ``render_mode="rgb_array"`` and return its frames.

    Args:
        env_id: A registered id.
        seed: Seed of the episode and of the random policy.
        policy: Chooses actions from (observation, info); uniformly random if None.
        max_frames: Stop after this many frames (the whole episode if None).
        **kwargs: Passed to ``gymnasium.make``.

    Returns:
        The frames, the reset frame first, each ``[H, W, 3]`` uint8.
    """
    env = gymnasium.make(env_id, render_mode="rgb_array", **kwargs)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    frames: list[np.ndarray] = [np.asarray(env.render())]
    done = False
    while not done and (max_frames is None or len(frames) < max_frames):
        action = policy(obs, info) if policy else env.action_space.sample()
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(np.asarray(env.render()))
        done = terminated or truncated
    env.close()
    return frames


def save_frames(frames: list[np.ndarray], out: str | Path, fps: int = 8) -> Path:
    """Save frames as an animated GIF (``.gif``) or as a sheet of evenly spaced frames (``.png``).

    Args:
        frames: ``[H, W, 3]`` uint8 frames, all the same size.
        out: Output path; its suffix chooses the format.
        fps: Frames per second of the GIF.

    Returns:
        The path written.
    """
    from PIL import Image

    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"output must end in one of {SUFFIXES}, got {out.name!r}")
    if not frames:
        raise ValueError("no frames to save")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(
            out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        )
    else:
        Image.fromarray(contact_sheet(frames)).save(out)
    return out


def contact_sheet(frames: list[np.ndarray], columns: int = 8, count: int = 24) -> np.ndarray:
    """Tile ``count`` evenly spaced frames into one picture, ``columns`` per row."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int))
    chosen = [frames[i] for i in picks]
    h, w, _ = chosen[0].shape
    rows = -(-len(chosen) // columns)
    cols = min(columns, len(chosen))
    gap = 4
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for k, frame in enumerate(chosen):
        r, c = divmod(k, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frame
    return sheet
