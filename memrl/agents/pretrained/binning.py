"""Per-dimension action binning: L2M's min-max tokeniser.

Each action dimension is cut into ``num_bins`` equal bins over ``[low, high]`` (L2M: 64 bins over
[-1, 1]); a value's bin is ``floor((x - low) / width)``, clipped to ``0..num_bins-1`` (so values
outside the range fall into the end bins). Decoding returns the bin's *centre*; L2M's
``MinMaxTokenizer`` returns the bin's lower edge, which biases every decoded action by half a bin
towards ``low``. With centres an action that is encoded and decoded moves by at most half a bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ActionBinning:
    """Min-max binning of actions in ``[low, high]`` into ``num_bins`` bins per dimension.

    Args:
        num_bins: Bins per dimension (>= 2).
        low: Lower end of the range.
        high: Upper end of the range (> ``low``).
    """

    num_bins: int = 64
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {self.num_bins}")
        if not self.high > self.low:
            raise ValueError(f"high must exceed low, got low={self.low}, high={self.high}")

    @property
    def bin_width(self) -> float:
        """Width of one bin."""
        return (self.high - self.low) / self.num_bins

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """Bin indices of ``actions`` (any shape), as int64 in ``0..num_bins-1``."""
        scaled = torch.floor((actions - self.low) / self.bin_width)
        return scaled.clamp(0, self.num_bins - 1).long()

    def decode(self, bins: torch.Tensor) -> torch.Tensor:
        """The bin centres of integer ``bins`` (any shape), as float32."""
        return self.low + (bins.float() + 0.5) * self.bin_width
