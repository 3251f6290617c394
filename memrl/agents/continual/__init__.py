"""Continual SAC with the classic continual-learning methods (Continual World's recipe).

Entry points (what ``memrl train --stream ... --method ...`` calls, and the log ``memrl eval``
reads):

- :class:`ContinualConfig` (:mod:`~memrl.agents.continual.config`, torch-free): every option.
- :func:`train_continual` (:mod:`~memrl.agents.continual.trainer`): train a run directory,
  ``resume=True`` to continue one.
- :class:`EvaluationLog` (:mod:`~memrl.agents.continual.evaluation_log`): ``evaluations.json``,
  every evaluation the trainer made, as plain data.

Modules, in the order data flows: ``config`` -> ``networks`` (multi-head actor and critic) ->
``buffers`` (FIFO, reservoir) -> ``sac`` (the agent and its update) -> ``methods`` (finetune, l2,
ewc, packnet, replay, multitask) -> ``trainer`` (the loop) -> ``evaluation_log``.

What is made of a run afterwards lives in :mod:`memrl.eval`, which depends on this package (never
the other way round): Continual World's P, F, FT with CIs, plots and the report
(:mod:`memrl.eval.continual`, ``memrl eval``), and the single-task reference curves for forward
transfer (:mod:`memrl.eval.reference_curves`).

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
    "EvaluationLog": "evaluation_log",
}
"""Names imported on first use, so that importing the config (for ``--help``) needs no torch."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "ContinualConfig", *sorted(_LAZY)]
