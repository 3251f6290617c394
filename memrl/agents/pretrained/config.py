"""The configuration of the multi-domain Decision Transformer (MDDT).

The defaults are memrl's CPU-sized model: 2 blocks of width 64 with 4 heads, no dropout, about
216k parameters (see :mod:`memrl.agents.pretrained.model` for why that size); L2M's own MDDT is
6 layers of width 768 with 12 heads (about 40M parameters).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM

ACTION_HEADS: tuple[str, ...] = ("discrete", "regression")
"""How actions are predicted: per-dimension 64-way bins with cross-entropy (L2M's choice), or a
tanh mean with mean-squared error."""


@dataclass(frozen=True)
class MDDTConfig:
    """Architecture of a multi-domain Decision Transformer."""

    state_dim: int = STATE_DIM
    """Width of the shared (zero-padded) state layout."""
    action_dim: int = ACTION_DIM
    """Width of the shared (zero-padded) action layout."""
    num_bins: int = 64
    """Bins per action dimension, min-max over [-1, 1] (L2M: 64)."""
    context_steps: int = 5
    """Timesteps in the context (L2M: 5); each contributes three tokens."""
    embed_dim: int = 64
    """Token width."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads per block (must divide ``embed_dim``)."""
    ff_multiplier: int = 4
    """Feed-forward hidden width as a multiple of ``embed_dim``."""
    max_timestep: int = 1000
    """Size of the learned timestep embedding (dm_control episodes last 1000 steps, Meta-World's
    200); timesteps must lie in ``0..max_timestep-1``."""
    dropout: float = 0.0
    """Dropout on attention weights, residual branches and embeddings (the original DT used 0.1;
    on this CPU it adds about a quarter to an update's time)."""
    action_head: str = "discrete"
    """``"discrete"`` (bins + cross-entropy) or ``"regression"`` (tanh + MSE)."""

    def __post_init__(self) -> None:
        positive = (
            "state_dim",
            "action_dim",
            "context_steps",
            "embed_dim",
            "num_layers",
            "num_heads",
            "ff_multiplier",
            "max_timestep",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.num_bins, int) or self.num_bins < 2:
            raise ValueError(f"num_bins must be an integer >= 2, got {self.num_bins!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads must divide embed_dim={self.embed_dim}, got num_heads={self.num_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.action_head not in ACTION_HEADS:
            raise ValueError(f"action_head must be one of {ACTION_HEADS}, got {self.action_head!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.embed_dim // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MDDTConfig:
        """Rebuild a config from :meth:`to_dict`'s output.

        Raises:
            ValueError: An unknown field (the message names the allowed ones) or a bad value.
        """
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(f"unknown MDDTConfig fields {unknown}; allowed: {allowed}")
        return cls(**values)
