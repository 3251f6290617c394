"""The agents that keep the pretrained model frozen and modulate it: lora, l2p, l2m, l2m-oracle.

- lora: one LoRA adapter (rank 8, alpha 16 on query, value and the first feed-forward layer of
  every block) shared by every task: index 0 for every sample, in training and when playing any
  task, so later tasks overwrite what earlier ones taught it.
- l2p: L2P's prompt pool (:class:`~memrl.agents.l2m.prompt_pool.PromptPool`): per sample the top-k
  prompts whose keys best match the query are prepended to every block's keys and values.
- l2m: L2M's modulator pool (:class:`~memrl.agents.l2m.modulator_pool.ModulatorPool`): per sample
  the entry whose key best matches the query applies its LoRA adapters. Before the stream the
  identity keys are trained on the pretraining data (:meth:`ModulatorPoolAgent.prepare`), so that
  pretraining tasks match them and run the frozen model unchanged.
- l2m-oracle: the same pool, the task's stream index choosing the entry; tasks it never trained
  (pretraining and held-out tasks) run the frozen model.

Pools start every task with :meth:`KeyPool.start_task` (the usage-count penalty then steers the
task to entries earlier tasks did not use) and are switched to evaluation mode (plain cosine
match, no usage counting) while tasks are played.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from memrl.agents.l2m.lora import attach_lora
from memrl.agents.l2m.methods.base import OfflineMethod
from memrl.agents.l2m.modulator_pool import ModulatorPool
from memrl.agents.l2m.offline_config import OfflineConfig
from memrl.agents.l2m.prompt_pool import PromptPool
from memrl.agents.pretrained.dataset import ContextSampler
from memrl.agents.pretrained.evaluation import Modulate
from memrl.agents.pretrained.inputs import Modulation
from memrl.agents.pretrained.model import EmbeddedContext, MultiDomainDecisionTransformer


def _first_adapter(query: torch.Tensor) -> Modulation:
    """Adapter 0 for every sample of a batch of queries ``[B, D]``."""
    return Modulation(adapter_index=torch.zeros(query.shape[0], dtype=torch.long))


class SharedLoRA(OfflineMethod):
    """lora: one LoRA adapter on the frozen model, trained on every task in turn."""

    name = "lora"
    freezes_base = True

    def __init__(self, model: MultiDomainDecisionTransformer, config: OfflineConfig) -> None:
        super().__init__(model, config)
        attach_lora(model, num_adapters=1, rank=config.lora_rank, alpha=config.lora_alpha)

    def training_modulation(
        self, embedded: EmbeddedContext, task_id: int | None
    ) -> tuple[Modulation | None, torch.Tensor | None]:
        """Adapter 0 for every sample; no extra loss."""
        return _first_adapter(embedded.tokens), None

    def evaluation_modulation(self, task_id: int | None) -> Modulate | None:
        """Adapter 0, whatever the task."""
        return _first_adapter


class PromptPoolAgent(OfflineMethod):
    """l2p: L2P's prompt pool on the frozen model."""

    name = "l2p"
    freezes_base = True
    decays_weights = False

    def __init__(self, model: MultiDomainDecisionTransformer, config: OfflineConfig) -> None:
        super().__init__(model, config)
        self.pool = PromptPool(
            num_layers=model.config.num_layers,
            embed_dim=model.config.embed_dim,
            pool_size=config.prompt_pool_size,
            prompt_length=config.prompt_length,
            top_k=config.prompt_top_k,
            count_penalty=config.count_penalty,
            pull_coefficient=config.pull_coefficient,
        )
        self._entries: torch.Tensor | None = None

    def extra_modules(self) -> dict[str, nn.Module]:
        """The prompt pool."""
        return {"pool": self.pool}

    def key_parameters(self) -> list[nn.Parameter]:
        """The prompts' keys."""
        return [self.pool.keys]

    def on_task_start(self, task_id: int | None) -> None:
        """Freeze the usage so far into the count penalty."""
        self.pool.start_task()

    def training_modulation(
        self, embedded: EmbeddedContext, task_id: int | None
    ) -> tuple[Modulation | None, torch.Tensor | None]:
        """The selected prompts, and the pull loss."""
        selection = self.pool(self.model.pool_query(embedded))
        self._entries = selection.entries[:, 0]
        return selection.modulation, selection.pull_loss

    def selected_entries(self) -> torch.Tensor | None:
        """Each sample's best-matching prompt in the last training batch."""
        return self._entries

    def evaluation_modulation(self, task_id: int | None) -> Modulate | None:
        """The prompts the query selects."""
        pool = self.pool
        return lambda query: pool(query).modulation


class ModulatorPoolAgent(OfflineMethod):
    """l2m: L2M's modulator pool of (key, LoRA modulator) entries on the frozen model."""

    name = "l2m"
    freezes_base = True
    decays_weights = False
    oracle = False

    def __init__(self, model: MultiDomainDecisionTransformer, config: OfflineConfig) -> None:
        super().__init__(model, config)
        attach_lora(model, config.pool_size, rank=config.lora_rank, alpha=config.lora_alpha)
        self.pool = ModulatorPool(
            key_dim=model.config.embed_dim,
            num_entries=config.pool_size,
            num_identity_keys=0 if self.oracle else config.num_identity_keys,
            count_penalty=config.count_penalty,
            pull_coefficient=config.pull_coefficient,
            oracle=self.oracle,
        )
        self._entries: torch.Tensor | None = None

    @property
    def uses_pretraining_data(self) -> bool:
        """Whether there are identity keys to train."""
        return self.pool.num_identity_keys > 0

    def extra_modules(self) -> dict[str, nn.Module]:
        """The modulator pool (its keys; the adapters are attached to the model)."""
        return {"pool": self.pool}

    def key_parameters(self) -> list[nn.Parameter]:
        """The entries' and identity keys."""
        return [self.pool.keys]

    def prepare(self, sampler: ContextSampler, progress: bool) -> dict[str, float]:
        """Train the identity keys on the pretraining data (L2M's pretraining keys).

        ``identity_key_updates`` AdamW updates of the pull loss on the identity keys alone, with
        the usage penalty refreshed after every update so that the data spread over the keys.
        """
        config, pool = self.config, self.pool
        pool.train()
        optimizer = torch.optim.AdamW([pool.keys], lr=config.key_learning_rate, weight_decay=0.0)
        pull_loss = torch.zeros(())
        for _ in tqdm(range(config.identity_key_updates), desc="identity keys", unit="update",
                      disable=not progress, dynamic_ncols=True):  # fmt: skip
            context = sampler.sample(config.batch_size).to_context()
            with torch.no_grad():
                query = self.model.pool_query(self.model.embed(context))
            pull_loss = pool(query, keys="identity").pull_loss
            optimizer.zero_grad(set_to_none=True)
            pull_loss.backward()
            optimizer.step()
            pool.refresh_penalty()
        return {"losses/identity_pull_loss": float(pull_loss.detach())}

    def on_task_start(self, task_id: int | None) -> None:
        """Freeze the usage so far into the count penalty."""
        self.pool.start_task()

    def training_modulation(
        self, embedded: EmbeddedContext, task_id: int | None
    ) -> tuple[Modulation | None, torch.Tensor | None]:
        """The selected entries' adapters, and the pull loss."""
        selection = self.pool(self.model.pool_query(embedded), task_id=task_id)
        self._entries = selection.entry
        return selection.modulation, selection.pull_loss

    def selected_entries(self) -> torch.Tensor | None:
        """Each sample's entry in the last training batch."""
        return self._entries

    def evaluation_modulation(self, task_id: int | None) -> Modulate | None:
        """The entry the query matches (identity keys included)."""
        pool = self.pool
        return lambda query: pool(query).modulation


class OracleModulatorPool(ModulatorPoolAgent):
    """l2m-oracle: L2M's pool with the entry chosen by the task's index in the stream."""

    name = "l2m-oracle"
    oracle = True

    def evaluation_modulation(self, task_id: int | None) -> Modulate | None:
        """Entry ``task_id``; the frozen model for a task the stream does not train."""
        if task_id is None:
            return None
        pool = self.pool
        return lambda query: pool(query, task_id=task_id).modulation
