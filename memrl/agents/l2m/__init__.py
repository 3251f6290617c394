"""L2M (Schmied et al. 2023) and its baselines on the frozen multi-domain Decision Transformer.

| module | what |
|---|---|
| :mod:`~memrl.agents.l2m.lora` | :class:`LoRABank`: per-sample routed LoRA adapters |
| :mod:`~memrl.agents.l2m.key_pool` | keys, cosine top-k, pull loss, usage-count penalty |
| :mod:`~memrl.agents.l2m.modulator_pool` | :class:`ModulatorPool`: L2M (and L2M-oracle) |
| :mod:`~memrl.agents.l2m.prompt_pool` | :class:`PromptPool`: L2P's prefix prompt pool |
| :mod:`~memrl.agents.l2m.speed` | update and action timings |
| :mod:`~memrl.agents.l2m.offline_config` | :class:`OfflineConfig` (``memrl train --offline``) |
| :mod:`~memrl.agents.l2m.methods` | the agents (l2m, l2m-oracle, l2p, ft, lora, l2, ...) |
| :mod:`~memrl.agents.l2m.offline_trainer` | offline continual fine-tuning, task after task |

Full fine-tuning trains the model itself; a single shared LoRA is :func:`attach_lora` with one
adapter and index 0 for every sample; the pool routes each sample to its entry's adapters.

Names that need torch are imported on first use, so that importing the config (for ``memrl
--help``) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from memrl.agents.l2m.offline_config import AGENTS, OfflineConfig

_LAZY = {
    "LoRABank": "lora",
    "attach_lora": "lora",
    "ModulatorPool": "modulator_pool",
    "PoolSelection": "modulator_pool",
    "PromptPool": "prompt_pool",
    "PromptSelection": "prompt_pool",
    "OfflineTrainer": "offline_trainer",
    "make_method": "methods",
}
"""Names imported on first use, by module."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AGENTS", "OfflineConfig", *sorted(_LAZY)]
