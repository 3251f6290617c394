"""What may change when a training run is resumed: the settings that do not change learning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESUMABLE_CHANGES = ("total_steps", "checkpoint_every", "log_every", "tensorboard", "threads")
"""Config fields that may differ when resuming a memory-PPO or SB3 run: the budget, and settings
that do not change what is learnt."""


def changed_fields(
    saved: Mapping[str, Any], current: Mapping[str, Any], may_change: Sequence[str]
) -> list[str]:
    """The fields of ``current`` outside ``may_change`` whose value differs from ``saved``'s.

    Args:
        saved: The run's config as saved (a field missing there counts as changed).
        current: The config asked for now.
        may_change: Fields allowed to differ.

    Returns:
        The changed field names, sorted.
    """
    return sorted(
        k for k in current if k not in may_change and (k not in saved or saved[k] != current[k])
    )


def check_resumable_config(
    run_dir: str | Path,
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    may_change: Sequence[str] = RESUMABLE_CHANGES,
) -> None:
    """Refuse to resume ``run_dir``, saved with config ``saved``, with config ``current``.

    Raises:
        ValueError: ``current`` differs from ``saved`` outside ``may_change``; names the fields.
    """
    changed = changed_fields(saved, current, may_change)
    if changed:
        raise ValueError(
            f"cannot resume {run_dir}: its config differs in {changed} "
            f"(only {list(may_change)} may change on resume)"
        )
