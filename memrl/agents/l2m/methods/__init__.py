"""The offline fine-tuning agents on the pretrained model, one class each, and their registry.

| agent | class (module) | trains |
|---|---|---|
| ft | :class:`FineTuning` (``base``) | every weight, task after task |
| multitask | :class:`MultiTask` (``base``) | every weight, all tasks at once |
| l2 | :class:`L2` (``regularization``) | ft + L2 pull to earlier tasks' weights |
| ewc | :class:`EWC` (``regularization``) | ft + Fisher-weighted pull |
| lora | :class:`SharedLoRA` (``modulation``) | one LoRA adapter |
| l2p | :class:`PromptPoolAgent` (``modulation``) | L2P's prompt pool |
| l2m | :class:`ModulatorPoolAgent` (``modulation``) | L2M's modulator pool |
| l2m-oracle | :class:`OracleModulatorPool` (``modulation``) | the pool, entry by task id |
"""

from __future__ import annotations

from memrl.agents.l2m.methods.base import FineTuning, MultiTask, OfflineMethod
from memrl.agents.l2m.methods.modulation import (
    ModulatorPoolAgent,
    OracleModulatorPool,
    PromptPoolAgent,
    SharedLoRA,
)
from memrl.agents.l2m.methods.regularization import EWC, L2
from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer

METHODS: dict[str, type[OfflineMethod]] = {
    method.name: method
    for method in (
        ModulatorPoolAgent,
        OracleModulatorPool,
        PromptPoolAgent,
        FineTuning,
        SharedLoRA,
        L2,
        EWC,
        MultiTask,
    )  # fmt: skip
}
"""Agent name -> its class, in the order of :data:`~memrl.agents.l2m.offline_config.AGENTS`."""


def make_method(config: OfflineConfig, model: MultiDomainDecisionTransformer) -> OfflineMethod:
    """The agent ``config.agent`` on ``model`` (its modules attached, its weights frozen or not).

    Raises:
        ValueError: An unknown agent; the message names the known ones.
    """
    if config.agent not in METHODS:
        raise ValueError(f"agent must be one of {', '.join(METHODS)}, got {config.agent!r}")
    return METHODS[config.agent](model, config)


__all__ = [
    "EWC",
    "L2",
    "METHODS",
    "FineTuning",
    "ModulatorPoolAgent",
    "MultiTask",
    "OfflineMethod",
    "OracleModulatorPool",
    "PromptPoolAgent",
    "SharedLoRA",
    "make_method",
]
