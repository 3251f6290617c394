"""Sinusoidal encodings of positions, times and places, added to memory entries when they are read.

HCAM adds a sinusoidal encoding of the position within a chunk to the chunk's contents before the
query attends into it (Lampinen et al. 2021); the Spatially-Aware Transformer adds an encoding of
the place (room index) and of the time to every memory entry (Cho et al. 2024). Both are the
Transformer's sinusoids: for a position ``p`` and feature pairs ``i``, ``sin(p * f_i)`` and
``cos(p * f_i)`` with ``f_i = max_timescale ** (-2 i / width)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_encoding(
    positions: torch.Tensor, width: int, max_timescale: float = 1e4
) -> torch.Tensor:
    """Sinusoidal encodings of integer or real positions.

    Args:
        positions: Positions of any shape ``[...]``.
        width: Encoding width ``W``; the first ``ceil(W / 2)`` features are sines, the rest
            cosines of the same frequencies (the last cosine is dropped when ``W`` is odd).
        max_timescale: The longest wavelength (over ``2 pi``).

    Returns:
        ``[..., W]`` float32 encodings.
    """
    half = (width + 1) // 2
    exponent = torch.arange(half, dtype=torch.float32, device=positions.device) * (2.0 / width)
    frequencies = torch.exp(-math.log(max_timescale) * exponent)  # [half]
    angles = positions.to(torch.float32)[..., None] * frequencies  # [..., half]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :width]


PLACE_INITS: tuple[str, ...] = ("sinusoid", "zeros")
"""How a place embedding starts (:class:`PlaceEmbedding`)."""


class PlaceEmbedding(nn.Module):
    """A table of one vector per place: fixed sinusoids of the place id, or learned.

    Args:
        num_places: Number of places (ids ``0 .. num_places - 1``).
        width: Vector width.
        learned: If True the table is a parameter; if False it is a fixed buffer.
        init: ``"sinusoid"`` (the sinusoid of the place id) or ``"zeros"`` (only when learned: a
            place-aware core then starts as its place-free counterpart and learns what places
            add).

    Raises:
        ValueError: ``num_places`` < 1, an unknown ``init``, or ``"zeros"`` without ``learned``.
    """

    def __init__(
        self, num_places: int, width: int, learned: bool = False, init: str = "sinusoid"
    ) -> None:
        super().__init__()
        if num_places < 1:
            raise ValueError(f"num_places must be >= 1, got {num_places}")
        if init not in PLACE_INITS:
            raise ValueError(f"place_init must be one of {list(PLACE_INITS)}, got {init!r}")
        if init == "zeros" and not learned:
            raise ValueError(
                "place_init='zeros' needs learned_places=True (fixed zeros are no places at all)"
            )
        self.num_places = num_places
        self.learned = learned
        table = sinusoid_encoding(torch.arange(num_places), width)  # [P, W]
        if init == "zeros":
            table = torch.zeros_like(table)
        if learned:
            self.weight = nn.Parameter(table)
        else:
            self.register_buffer("weight", table, persistent=False)

    @property
    def table(self) -> torch.Tensor:
        """The ``[num_places, width]`` table."""
        weight: torch.Tensor = self.weight
        return weight

    def forward(self, places: torch.Tensor) -> torch.Tensor:
        """Vectors of the place ids ``places`` ``[...]`` -> ``[..., width]``."""
        return self.table[places]


def check_places(
    places: torch.Tensor | None, shape: tuple[int, ...], num_places: int, core: str
) -> torch.Tensor:
    """``places`` as int64, after checking it is given, has ``shape`` and holds valid ids.

    Raises:
        ValueError: naming what was wrong and what is allowed.
    """
    if places is None:
        raise ValueError(f"{core} needs places (int64 place ids), got None")
    places = places.to(torch.int64)
    if places.shape != shape:
        raise ValueError(f"places must have shape {shape}, got {tuple(places.shape)}")
    if bool(((places < 0) | (places >= num_places)).any()):
        raise ValueError(f"place ids must be in 0..{num_places - 1}, got {places.tolist()}")
    return places
