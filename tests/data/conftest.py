"""A tiny scripted Meta-World collection shared by the data tests (collected once)."""

from __future__ import annotations

from pathlib import Path

import pytest

TASK = "handle-press-v3"
"""Its expert succeeds within about 40 steps, so short episodes still hold successes."""

SETTINGS = {
    "episodes_per_task": 3,
    "noise_levels": [0.0, 0.5],
    "random_fraction": 1 / 3,
    "seed": 0,
    "episode_length": 40,
}
"""One expert, one noisy and one random episode of 40 steps."""


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset directory of TASK collected with SETTINGS (treat as read-only)."""
    from memrl.data import collect_metaworld

    out_dir = tmp_path_factory.mktemp("collected")
    (path,) = collect_metaworld(TASK, out_dir, progress=False, **SETTINGS)
    return path
