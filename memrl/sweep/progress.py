"""A Ray Tune callback that keeps the sweep's summary (``SWEEP_DIR/sweep.json``) current.

Imported only once a sweep starts Ray: it subclasses Tune's ``Callback``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune


class SummaryUpdates(tune.Callback):
    """Calls ``update(index, status)`` as Tune starts, retries, finishes or gives up a trial.

    Args:
        update: Receives the trial's index (its Tune config's ``index``) and ``running``,
            ``retrying``, ``finished`` or ``failed``.
    """

    def __init__(self, update: Callable[[int, str], None]) -> None:
        self.update = update

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial started."""
        self.update(trial.config["index"], "running")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial raised and will be tried again."""
        self.update(trial.config["index"], "retrying")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial ended without an error."""
        self.update(trial.config["index"], "finished")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial raised and has no retry left."""
        self.update(trial.config["index"], "failed")
