"""memrl's multi-domain Decision Transformer (MDDT): a CPU-sized take on L2M's pretrained model.

A return-conditioned Decision Transformer (Chen et al. 2021) over a short context of timesteps,
trained offline on many tasks of two domains (Meta-World and dm_control) in one shared, zero-padded
state and action layout (:mod:`memrl.agents.pretrained.layout`), as in L2M (Schmied et al. 2023).
It is the frozen model that the L2M modulator pool (:mod:`memrl.agents.l2m`) modulates.

Tokens. Every timestep contributes three tokens, return-to-go, state, action, as in the original
Decision Transformer, each plus a learned embedding of the episode's timestep; states are first
normalised by their domain's mean and standard deviation (buffers ``state_mean`` and
``state_std``, ``[num_domains, state_dim]``, set from the pretraining data by
:meth:`MultiDomainDecisionTransformer.set_state_statistics` and saved with the weights); the
stacked tokens pass a LayerNorm and then ``num_layers`` pre-LayerNorm GPT blocks with a causal mask
(:mod:`memrl.agents.pretrained.blocks`). The action token's embedding is the sum of one learned
embedding per (action dimension, bin) over the task's real dimensions. The action of step ``t`` is
predicted from the output of step ``t``'s *state* token by a per-dimension 64-way head.

What differs from L2M, and why. L2M's MDDT (6 layers x 768, 12 heads, about 40M parameters) uses
nine tokens per timestep: state, return, one token per (padded) action dimension (six) and reward,
and predicts action dimension ``j`` autoregressively from the token before it. memrl's budget is
a 2-core CPU that must fine-tune 10 CW10 tasks x 8 methods x 3 seeds and evaluate online after
every task. Nine tokens per step cost three times the tokens (and nine times the attention) of
three, and autoregressive decoding needs one forward pass per action dimension, so memrl keeps
the original DT's three tokens per step and a factorised per-dimension head (one forward pass per
action). L2M does not normalise states; memrl must: Meta-World's per-dimension standard
deviations are 0.01-0.2, so raw states barely move their tokens next to the timestep embedding
(pretrained on 44 tasks without normalisation the model reached 0.135 mean Meta-World success on
data that succeed 77-97%, and the pool queries of different tasks had cosine 0.9-1.0).
L2M's per-dimension min-max binning (64 bins over [-1, 1]) and cross-entropy are kept;
actions decode to bin centres (L2M: lower bin edges). A tanh/MSE regression head is an option
(``action_head="regression"``). Inputs always embed actions through their bins.

Size. The default (``MDDTConfig()``) is 2 blocks of width 64 with 4 heads, no dropout: 216,448
parameters (blocks 99k, timestep embedding 64k, action bin embeddings and bin head 25k each).
It is the largest of the sizes measured (``memrl.agents.l2m.speed``, CPU time of one thread, batch
128, context 5) whose update meets the ~40 ms target: full fine-tuning about 30 ms, the L2M pool
on the frozen model about 35 ms; one action (batch 1) takes about 0.4 ms (0.7 ms through the
pool). Measured alongside (update, full / L2M, ms): 3 x 64: 44-50 / 50-55; 2 x 96: 51 / 59;
1 x 128: 43 / 39; 4 x 128 (about 1M parameters): 142 / 139. Dropout 0.1 adds about 8 ms to the
2 x 64 update.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from memrl.agents.pretrained.binning import ActionBinning
from memrl.agents.pretrained.blocks import DecisionBlock
from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.heads import DiscreteActionHead, RegressionActionHead
from memrl.agents.pretrained.inputs import Modulation, TrajectoryContext
from memrl.agents.pretrained.tasks import DOMAINS

TOKENS_PER_STEP = 3
"""Return-to-go, state, action."""
STATE_TOKEN = 1
"""Position of the state token within a timestep's tokens."""


@dataclass
class EmbeddedContext:
    """A context after the input embedding, before any block.

    Attributes:
        tokens: ``[B, 3K, D]`` stacked (return, state, action) tokens after the embedding
            LayerNorm (before dropout).
        step_mask: ``[B, K]`` bool real steps, or None if all are real.
    """

    tokens: torch.Tensor
    step_mask: torch.Tensor | None

    @property
    def state_tokens(self) -> torch.Tensor:
        """``[B, K, D]`` the state tokens."""
        return self.tokens[:, STATE_TOKEN::TOKENS_PER_STEP]


class MultiDomainDecisionTransformer(nn.Module):
    """The multi-domain Decision Transformer (see the module docstring).

    Args:
        config: Its architecture.
    """

    action_offsets: torch.Tensor  # [action_dim] first embedding row of each dimension's bins
    causal_mask: torch.Tensor  # [3K, 3K] True where a token may attend
    state_mean: torch.Tensor  # [num_domains, state_dim] each domain's state mean
    state_std: torch.Tensor  # [num_domains, state_dim] each domain's state standard deviation

    def __init__(self, config: MDDTConfig) -> None:
        super().__init__()
        self.config = config
        width = config.embed_dim
        self.binning = ActionBinning(config.num_bins)
        self.state_embed = nn.Linear(config.state_dim, width)
        self.return_embed = nn.Linear(1, width)
        # One embedding per (action dimension, bin): row j * num_bins + b.
        self.action_embed = nn.Embedding(config.action_dim * config.num_bins, width)
        self.timestep_embed = nn.Embedding(config.max_timestep, width)
        self.embed_norm = nn.LayerNorm(width)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            DecisionBlock(width, config.num_heads, config.ff_multiplier, config.dropout)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(width)
        self.head: DiscreteActionHead | RegressionActionHead
        if config.action_head == "discrete":
            self.head = DiscreteActionHead(width, config.action_dim, self.binning)
        else:
            self.head = RegressionActionHead(width, config.action_dim)
        offsets = torch.arange(config.action_dim) * config.num_bins
        self.register_buffer("action_offsets", offsets, persistent=False)
        tokens = TOKENS_PER_STEP * config.context_steps
        causal = torch.ones(tokens, tokens, dtype=torch.bool).tril()
        self.register_buffer("causal_mask", causal, persistent=False)
        # Identity until set from data; persistent, so saved and loaded with the weights.
        self.register_buffer("state_mean", torch.zeros(len(DOMAINS), config.state_dim))
        self.register_buffer("state_std", torch.ones(len(DOMAINS), config.state_dim))
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, residual outputs scaled."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for block in self.decision_blocks:
            nn.init.normal_(block.attention_out.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.fc2.weight, mean=0.0, std=residual_std)

    @property
    def decision_blocks(self) -> list[DecisionBlock]:
        """The blocks, typed."""
        return [cast(DecisionBlock, block) for block in self.blocks]

    # -- parameters ------------------------------------------------------------------------------

    def base_parameters(self) -> Iterator[nn.Parameter]:
        """The pretrained model's own parameters (everything but attached adapters)."""
        for name, parameter in self.named_parameters():
            if ".adapters." not in name:
                yield parameter

    def freeze_base(self) -> None:
        """Stop gradients to :meth:`base_parameters`; attached adapters stay trainable."""
        for parameter in self.base_parameters():
            parameter.requires_grad_(False)

    # -- state statistics ------------------------------------------------------------------------

    @torch.no_grad()
    def set_state_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set every domain's state mean and standard deviation (the normalisation of states).

        Args:
            mean: ``[num_domains, state_dim]``, rows in the order of
                :data:`~memrl.agents.pretrained.tasks.DOMAINS`.
            std: ``[num_domains, state_dim]``, finite and > 0.

        Raises:
            ValueError: A shape that does not fit, a non-finite value or a std <= 0.
        """
        shape = tuple(self.state_mean.shape)
        for name, value in (("mean", mean), ("std", std)):
            if tuple(value.shape) != shape:
                raise ValueError(f"state {name} must have shape {shape}, got {tuple(value.shape)}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"state {name} must be finite")
        if not bool((std > 0).all()):
            raise ValueError(f"state std must be > 0, got a minimum of {float(std.min())}")
        self.state_mean.copy_(mean)
        self.state_std.copy_(std)

    # -- forward ---------------------------------------------------------------------------------

    def _check(self, context: TrajectoryContext) -> None:
        """Raise ValueError naming the first input whose shape or dtype does not fit."""
        config = self.config
        batch, steps = context.states.shape[:2]
        expected = {
            "states": (batch, steps, config.state_dim),
            "actions": (batch, steps, config.action_dim),
            "returns_to_go": (batch, steps),
            "timesteps": (batch, steps),
            "action_mask": (batch, config.action_dim),
            "domain": (batch,),
        }
        if context.step_mask is not None:
            expected["step_mask"] = (batch, steps)
        for name, shape in expected.items():
            found = tuple(getattr(context, name).shape)
            if found != shape:
                raise ValueError(f"{name} must have shape {shape}, got {found}")
        if not 1 <= steps <= config.context_steps:
            raise ValueError(f"contexts must have 1..{config.context_steps} steps, got {steps}")
        for name in ("action_mask", "step_mask"):
            mask = getattr(context, name)
            if mask is not None and mask.dtype != torch.bool:
                raise ValueError(f"{name} must be torch.bool, got {mask.dtype}")
        for name in ("timesteps", "domain"):
            dtype = getattr(context, name).dtype
            if dtype != torch.long:
                raise ValueError(f"{name} must be torch.int64, got {dtype}")
        low, high = int(context.domain.min()), int(context.domain.max())
        if low < 0 or high >= len(DOMAINS):
            raise ValueError(
                f"domain must hold indices 0..{len(DOMAINS) - 1} of {DOMAINS}, got values in "
                f"{low}..{high}"
            )
        low, high = int(context.timesteps.min()), int(context.timesteps.max())
        if low < 0 or high >= config.max_timestep:
            raise ValueError(
                f"timesteps must be in 0..{config.max_timestep - 1}, got values in {low}..{high}"
            )

    def embed(self, context: TrajectoryContext) -> EmbeddedContext:
        """Embed a context into stacked tokens (the input of the first block).

        States are normalised by their row's domain's statistics first (padding steps stay 0).

        Raises:
            ValueError: A shape, dtype or timestep that does not fit the config.
        """
        self._check(context)
        batch, steps = context.states.shape[:2]
        time = self.timestep_embed(context.timesteps)  # [B, K, D]
        mean = self.state_mean[context.domain].unsqueeze(1)  # [B, 1, state_dim]
        std = self.state_std[context.domain].unsqueeze(1)
        normalised = (context.states - mean) / std  # [B, K, state_dim]
        if context.step_mask is not None:  # padding steps stay zero, as before normalisation
            normalised = normalised * context.step_mask.unsqueeze(-1).to(normalised.dtype)
        states = self.state_embed(normalised) + time
        returns = self.return_embed(context.returns_to_go.unsqueeze(-1)) + time
        bins = self.binning.encode(context.actions) + self.action_offsets  # [B, K, A]
        per_dimension = self.action_embed(bins)  # [B, K, A, D]
        real = context.action_mask[:, None, :, None]  # [B, 1, A, 1]
        actions = torch.where(real, per_dimension, torch.zeros_like(per_dimension)).sum(2) + time
        tokens = torch.stack((returns, states, actions), dim=2)  # [B, K, 3, D]
        tokens = tokens.reshape(batch, TOKENS_PER_STEP * steps, self.config.embed_dim)
        return EmbeddedContext(self.embed_norm(tokens), context.step_mask)

    @staticmethod
    def pool_query(embedded: EmbeddedContext) -> torch.Tensor:
        """L2M's query: the mean of the embedded state tokens over the real steps, ``[B, D]``.

        Taken at the input embedding (before any block), so no adapter can change it; detached,
        so no loss trains the frozen embedding through it.
        """
        states = embedded.state_tokens.detach()  # [B, K, D]
        if embedded.step_mask is None:
            return states.mean(dim=1)
        weights = embedded.step_mask.unsqueeze(-1).to(states.dtype)  # [B, K, 1]
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def _attention_mask(self, embedded: EmbeddedContext, prefix_length: int) -> torch.Tensor | None:
        """``[B, 1, T, L + T]`` bool, or None when the plain causal mask suffices.

        Every token sees the prefix, itself and the real tokens before it; a padding token sees
        only the prefix and itself (so its attention stays finite and no real token reads it).
        """
        batch, tokens = embedded.tokens.shape[:2]
        if embedded.step_mask is None and prefix_length == 0:
            return None
        allowed = self.causal_mask[:tokens, :tokens].expand(batch, tokens, tokens)
        if embedded.step_mask is not None:
            real = embedded.step_mask.repeat_interleave(TOKENS_PER_STEP, dim=1)  # [B, T]
            own = torch.eye(tokens, dtype=torch.bool, device=allowed.device)
            allowed = allowed & (real[:, None, :] | own)
        if prefix_length:
            seen = torch.ones(batch, tokens, prefix_length, dtype=torch.bool, device=allowed.device)
            allowed = torch.cat((seen, allowed), dim=2)
        return allowed.unsqueeze(1)

    def run(self, embedded: EmbeddedContext, modulation: Modulation | None = None) -> torch.Tensor:
        """Run the blocks and the head on an embedded context.

        Args:
            embedded: From :meth:`embed`.
            modulation: Adapter indices and/or prefix prompts per sample, or None.

        Returns:
            The action prediction for every step: logits ``[B, K, action_dim, num_bins]``
            (discrete head) or means ``[B, K, action_dim]`` (regression head).

        Raises:
            ValueError: A modulation whose prefix does not give one pair per block.
        """
        adapter_index = modulation.adapter_index if modulation is not None else None
        prefixes = modulation.prefix if modulation is not None else None
        if prefixes is not None and len(prefixes) != len(self.blocks):
            raise ValueError(
                f"prefix must hold one (keys, values) pair per block ({len(self.blocks)}), "
                f"got {len(prefixes)}"
            )
        prefix_length = prefixes[0][0].shape[1] if prefixes is not None else 0
        mask = self._attention_mask(embedded, prefix_length)
        x = self.embed_dropout(embedded.tokens)
        for layer, block in enumerate(self.blocks):
            prefix = prefixes[layer] if prefixes is not None else None
            x = block(x, mask, adapter_index, prefix)
        states = self.final_norm(x)[:, STATE_TOKEN::TOKENS_PER_STEP]  # [B, K, D]
        return self.head(states)

    def forward(
        self, context: TrajectoryContext, modulation: Modulation | None = None
    ) -> torch.Tensor:
        """``run(embed(context), modulation)``: the action prediction for every step."""
        return self.run(self.embed(context), modulation)

    # -- loss and actions ------------------------------------------------------------------------

    def action_loss(self, prediction: torch.Tensor, context: TrajectoryContext) -> torch.Tensor:
        """The head's loss against the context's own actions, over real steps and dimensions.

        Args:
            prediction: :meth:`forward`'s output for ``context``.
            context: The context (its ``actions`` are the targets).

        Returns:
            Scalar loss (cross-entropy or mean-squared error).
        """
        weights = context.action_mask[:, None, :].expand_as(context.actions)  # [B, K, A]
        if context.step_mask is not None:
            weights = weights & context.step_mask[:, :, None]
        return self.head.loss(prediction, context.actions, weights)

    def decode_last(
        self,
        prediction: torch.Tensor,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Actions ``[B, action_dim]`` (the whole layout) for the context's last step."""
        return self.head.decode(prediction[:, -1], deterministic, generator)
