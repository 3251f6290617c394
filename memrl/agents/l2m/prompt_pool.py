"""L2P's prompt pool (Wang et al. 2022) on the frozen model: a baseline for L2M.

Each of ``pool_size`` entries is a key and a prefix prompt: for every block, ``prompt_length``
key vectors and ``prompt_length`` value vectors that are prepended to that block's attention keys
and values (prefix tuning: used as keys and values directly, not projected). Per sample the
``top_k`` entries whose keys best match the query (cosine; the same query, pull loss and
usage-count penalty as L2M's pool, :mod:`memrl.agents.l2m.key_pool`) are selected and their
prompts concatenated, giving ``top_k * prompt_length`` prefix tokens per block. Prompts are
initialised uniform(-1, 1), L2P's default. Defaults follow L2M's L2P configuration: 100 entries,
length 5, top-5, count penalty on; with the default model (2 blocks, width 64) that is
``100 * 2 * 2 * 5 * 64 = 128,000`` prompt parameters (and 25 prefix tokens per block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from memrl.agents.l2m.key_pool import KeyPool
from memrl.agents.pretrained.inputs import Modulation


@dataclass
class PromptSelection:
    """What the prompt pool chose for a batch.

    Attributes:
        entries: ``[B, top_k]`` the selected entries.
        pull_loss: Scalar ``-coefficient * sum_k cos(query, key_k)``, batch mean.
        cosine: ``[B, pool_size]`` cosine similarity of each query with every key.
        modulation: The prefix prompts of the selected entries, one ``(keys, values)`` pair per
            block, each ``[B, top_k * prompt_length, embed_dim]``.
    """

    entries: torch.Tensor
    pull_loss: torch.Tensor
    cosine: torch.Tensor
    modulation: Modulation


class PromptPool(KeyPool):
    """L2P's pool of (key, prefix prompt) entries (see the module docstring).

    Args:
        num_layers: Blocks of the model (one prefix per block).
        embed_dim: The model's width (the keys' and the prompts' width).
        pool_size: Entries.
        prompt_length: Prefix tokens per entry and block.
        top_k: Entries selected per sample.
        count_penalty: Steer new tasks to unused entries.
        pull_coefficient: Weight of the pull loss (L2M: 0.5).
    """

    def __init__(
        self,
        num_layers: int,
        embed_dim: int,
        pool_size: int = 100,
        prompt_length: int = 5,
        top_k: int = 5,
        count_penalty: bool = True,
        pull_coefficient: float = 0.5,
    ) -> None:
        if not 1 <= top_k <= pool_size:
            raise ValueError(f"top_k must be 1..{pool_size} (pool_size), got {top_k}")
        if num_layers < 1 or prompt_length < 1:
            raise ValueError(
                f"num_layers and prompt_length must be >= 1, got {num_layers} and {prompt_length}"
            )
        super().__init__(pool_size, embed_dim, count_penalty, pull_coefficient)
        self.top_k = top_k
        self.prompts = nn.Parameter(
            torch.empty(pool_size, num_layers, 2, prompt_length, embed_dim).uniform_(-1.0, 1.0)
        )  # [entries, layers, (keys, values), length, D]

    def forward(self, query: torch.Tensor) -> PromptSelection:
        """Select ``top_k`` entries per sample and assemble their prefixes.

        Args:
            query: ``[B, embed_dim]`` from :meth:`MultiDomainDecisionTransformer.pool_query`.

        Returns:
            The selection and its prefix modulation.
        """
        selected, pull_loss, cosine = self.match(query, top_k=self.top_k)
        chosen = self.prompts[selected]  # [B, k, layers, 2, length, D]
        batch, top_k, layers, _, length, width = chosen.shape
        # -> [layers, 2, B, k * length, D]
        stacked = chosen.permute(2, 3, 0, 1, 4, 5).reshape(layers, 2, batch, top_k * length, width)
        prefix = [(stacked[layer, 0], stacked[layer, 1]) for layer in range(layers)]
        return PromptSelection(selected, pull_loss, cosine, Modulation(prefix=prefix))
