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
"""

from memrl.agents.pretrained.binning import ActionBinning
from memrl.agents.pretrained.checkpoint import load_model, save_model
from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.inference import RollingContext, predict_action
from memrl.agents.pretrained.inputs import Modulation, TrajectoryContext
from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer

__all__ = [
    "ACTION_DIM",
    "STATE_DIM",
    "ActionBinning",
    "MDDTConfig",
    "Modulation",
    "MultiDomainDecisionTransformer",
    "RollingContext",
    "TrajectoryContext",
    "load_model",
    "predict_action",
    "save_model",
]
