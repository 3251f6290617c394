"""L2M (Schmied et al. 2023) and its baselines on the frozen multi-domain Decision Transformer.

| module | what |
|---|---|
| :mod:`~memrl.agents.l2m.lora` | :class:`LoRABank`: per-sample routed LoRA adapters |
| :mod:`~memrl.agents.l2m.key_pool` | keys, cosine top-k, pull loss, usage-count penalty |
| :mod:`~memrl.agents.l2m.modulator_pool` | :class:`ModulatorPool`: L2M (and L2M-oracle) |
| :mod:`~memrl.agents.l2m.prompt_pool` | :class:`PromptPool`: L2P's prefix prompt pool |
| :mod:`~memrl.agents.l2m.speed` | update and action timings |

Full fine-tuning trains the model itself; a single shared LoRA is :func:`attach_lora` with one
adapter and index 0 for every sample; the pool routes each sample to its entry's adapters.
"""

from memrl.agents.l2m.lora import LoRABank, attach_lora
from memrl.agents.l2m.modulator_pool import ModulatorPool, PoolSelection
from memrl.agents.l2m.prompt_pool import PromptPool, PromptSelection

__all__ = [
    "LoRABank",
    "ModulatorPool",
    "PoolSelection",
    "PromptPool",
    "PromptSelection",
    "attach_lora",
]
