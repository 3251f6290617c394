"""The pretrained multi-domain Decision Transformer (MDDT) that L2M modulates.

| module | what |
|---|---|
| :mod:`~memrl.agents.pretrained.layout` | the shared state/action layout and its widths |
| :mod:`~memrl.agents.pretrained.config` | :class:`MDDTConfig`, the architecture |
| :mod:`~memrl.agents.pretrained.binning` | per-dimension min-max action bins |
| :mod:`~memrl.agents.pretrained.inputs` | :class:`TrajectoryContext`, :class:`Modulation` |
| :mod:`~memrl.agents.pretrained.blocks` | the GPT block with adapter and prefix hooks |
| :mod:`~memrl.agents.pretrained.heads` | binned and regression action heads |
| :mod:`~memrl.agents.pretrained.model` | :class:`MultiDomainDecisionTransformer` |
| :mod:`~memrl.agents.pretrained.checkpoint` | safetensors save/load |
| :mod:`~memrl.agents.pretrained.inference` | rolling context and next action |
| :mod:`~memrl.agents.pretrained.tasks` | a model's task table, per-domain reward scales |
| :mod:`~memrl.agents.pretrained.dataset` | many Minari datasets in one context sampler |
| :mod:`~memrl.agents.pretrained.pretrain_config` | :class:`PretrainConfig` (``memrl pretrain``) |
| :mod:`~memrl.agents.pretrained.training` | the offline pretraining loop |
| :mod:`~memrl.agents.pretrained.evaluation` | per-task online evaluation in the real envs |

Names that need torch are imported on first use, so that importing the configs (for ``memrl
--help``) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM
from memrl.agents.pretrained.pretrain_config import PretrainConfig

_LAZY = {
    "ActionBinning": "binning",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
    "RollingContext": "inference",
    "predict_action": "inference",
    "Modulation": "inputs",
    "TrajectoryContext": "inputs",
    "MultiDomainDecisionTransformer": "model",
    "PretrainTask": "tasks",
    "ContextSampler": "dataset",
    "PretrainingData": "dataset",
    "load_pretraining_data": "dataset",
    "PretrainTrainer": "training",
    "TaskEvaluation": "evaluation",
    "evaluate_model": "evaluation",
}
"""Names imported on first use, by module."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ACTION_DIM", "STATE_DIM", "MDDTConfig", "PretrainConfig", *sorted(_LAZY)]
