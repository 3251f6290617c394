"""Episodes and datasets of episodes as numpy arrays: what is collected and what is loaded.

An :class:`Episode` follows Minari's layout (``minari.EpisodeData``): ``T`` steps hold ``T + 1``
observations (the reset observation first, the last one after the last action), ``T`` actions,
rewards, terminations and truncations, and infos with ``T + 1`` entries (the reset's first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Episode:
    """One episode as numpy arrays.

    Attributes:
        observations: ``[T + 1, ...]``: the reset observation, then one after every step.
        actions: ``[T, ...]``: the action taken at each step (as the environment applied it).
        rewards: ``[T]``.
        terminations: ``[T]`` bool.
        truncations: ``[T]`` bool.
        infos: Per-step infos, each ``[T + 1, ...]`` (the reset's first); may be empty.
        seed: The ``reset(seed=...)`` that started the episode, if known.
        metadata: Per-episode metadata (memrl's collection writes ``policy``, ``noise_std``
            for scripted episodes, and ``success``).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        """The number of steps ``T``."""
        return len(self.rewards)


@dataclass(frozen=True)
class OfflineDataset:
    """A Minari dataset read into memory.

    Attributes:
        path: The dataset's ``data`` directory (holding ``metadata.json``).
        dataset_id: Minari's id of the dataset (``"memrl/metaworld/hammer-v3/scripted-v0"``).
        metadata: The dataset's metadata as Minari stores it (``metadata["memrl"]`` holds memrl's
            own for datasets memrl wrote: task, split, settings, per-quality success).
        episodes: The episodes, in the dataset's order.
    """

    path: Path
    dataset_id: str
    metadata: Mapping[str, Any]
    episodes: list[Episode]

    def __len__(self) -> int:
        """The number of episodes."""
        return len(self.episodes)
