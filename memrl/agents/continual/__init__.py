"""Continual SAC with the classic continual-learning methods (Continual World's recipe).

Entry points (what ``memrl train --stream ... --method ...`` and ``memrl eval`` call):

- :class:`ContinualConfig` (:mod:`~memrl.agents.continual.config`, torch-free): every option.
- :func:`train_continual` (:mod:`~memrl.agents.continual.trainer`): train a run directory,
  ``resume=True`` to continue one.
- :func:`evaluate_continual` / :func:`evaluate_continual_runs`
  (:mod:`~memrl.agents.continual.evaluation`): Continual World's P, F, FT with CIs, plots, report.
- :func:`train_reference_curves` (:mod:`~memrl.agents.continual.reference`): single-task SAC
  reference curves for forward transfer.

Modules, in the order data flows: ``config`` -> ``networks`` (multi-head actor and critic) ->
``buffers`` (FIFO, reservoir) -> ``sac`` (the agent and its update) -> ``methods`` (finetune, l2,
ewc, packnet, replay, multitask) -> ``trainer`` (the loop) -> ``evaluation`` / ``reference``.

Why memrl's own SAC rather than stable-baselines3's ``SAC``: Continual World's recipe needs output
heads chosen per transition by the task id, one entropy coefficient per task, replay and optimiser
resets at task switches, a penalty added to the actor and critic losses, per-parameter gradient
masks between backward and step (PackNet), weights swapped in and out around evaluation, and a
reservoir buffer that survives task switches. SB3's ``SAC.train`` owns the loss, the backward pass
and the optimiser step in one method with none of these hooks, its policy has one head and one
entropy coefficient, and its replay buffer has no reservoir mode or incremental checkpoint; every
one of these would be an override of SB3 internals. The update here is about 60 lines, read top to
bottom in :meth:`ContinualSAC.update`; from SB3 it takes the Polyak update and the ``predict``
signature (so SB3's ``evaluate_policy`` and memrl's evaluation work on this agent).
"""

from __future__ import annotations

import importlib
from typing import Any

from memrl.agents.continual.config import METHODS, ContinualConfig

_LAZY = {
    "ContinualSAC": "sac",
    "ContinualTrainer": "trainer",
    "load_continual_agent": "trainer",
    "train_continual": "trainer",
    "EvaluationLog": "evaluation",
    "evaluate_continual": "evaluation",
    "evaluate_continual_runs": "evaluation",
    "load_evaluation_history": "evaluation",
    "per_task_tables": "evaluation",
    "results_table": "evaluation",
    "default_reference_path": "reference",
    "load_reference_curves": "reference",
    "save_reference_curves": "reference",
    "train_reference_curves": "reference",
}
"""Names imported on first use, so that importing the config (for ``--help``) needs no torch."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "ContinualConfig", *sorted(_LAZY)]
