"""Observation encoders: any memrl observation space to one feature vector per step.

A ``Dict`` observation is encoded key by key and concatenated: images (uint8 ``HxWx3`` with
``H, W >= 36``) by a small CNN, symbolic grids and other integer arrays by an embedding of each
entry, ``Discrete`` and ``MultiDiscrete`` values by embeddings, float vectors by a linear layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

EMBED_DIM = 16
GRID_EMBED_DIM = 8
"""Width of a grid cell's embedding per channel (:class:`GridEncoder`)."""
MAX_EMBEDDED_VALUES = 4096


def _is_image(space: gymnasium.Space) -> bool:
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] in (1, 3, 4)
        and min(space.shape[:2]) >= 36
    )


def _is_symbolic(space: gymnasium.Space) -> bool:
    """An integer Box with few values per entry: each entry is a category (e.g. a cell code)."""
    return (
        isinstance(space, spaces.Box)
        and np.issubdtype(space.dtype, np.integer)
        and bool(np.all(space.low >= 0))
        and int(np.max(space.high)) < MAX_EMBEDDED_VALUES
    )


def categorical_highs(space: gymnasium.Space) -> np.ndarray | None:
    """The largest value of every entry of a categorical space, flattened; None otherwise.

    Categorical: ``Discrete``, ``MultiDiscrete``, and integer ``Box`` es that are not images
    (symbolic grids): what :class:`CategoricalEncoder` embeds entry by entry.
    """
    if isinstance(space, spaces.Discrete):
        return np.array([int(space.n) - 1])
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.nvec, dtype=np.int64).reshape(-1) - 1
    if _is_symbolic(space) and not _is_image(space):
        assert isinstance(space, spaces.Box)
        return np.broadcast_to(space.high, space.shape).astype(np.int64).reshape(-1)
    return None


class ImageEncoder(nn.Module):
    """A three-layer CNN (Nature DQN shape) for uint8 images, scaled to [0, 1]."""

    def __init__(self, space: spaces.Box, out_dim: int = 256) -> None:
        super().__init__()
        h, w, c = space.shape
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.net(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, H, W, C]`` uint8 -> ``[B, out_dim]``."""
        return self.head(self.net(x.permute(0, 3, 1, 2).float() / 255.0))


class CategoricalEncoder(nn.Module):
    """Embeds every entry of an integer array (or a Discrete/MultiDiscrete value) and flattens."""

    offsets: torch.Tensor

    def __init__(self, highs: np.ndarray, out_dim: int | None = None) -> None:
        super().__init__()
        highs = np.asarray(highs, dtype=np.int64).reshape(-1)
        # One table for all entries: entry j's value v is row offsets[j] + v.
        offsets = np.concatenate([[0], np.cumsum(highs[:-1] + 1)])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long))
        self.embedding = nn.Embedding(int(np.sum(highs + 1)), EMBED_DIM)
        flat = len(highs) * EMBED_DIM
        self.out_dim = out_dim or flat
        self.head = nn.Sequential(nn.Linear(flat, self.out_dim), nn.ReLU()) if out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, ...]`` integers -> ``[B, out_dim]``."""
        codes = x.reshape(x.shape[0], -1).long() + self.offsets
        flat = self.embedding(codes).flatten(1)
        return self.head(flat) if self.head is not None else flat


class VectorEncoder(nn.Module):
    """A linear layer and tanh for float vectors."""

    def __init__(self, space: spaces.Box, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(int(np.prod(space.shape)), out_dim), nn.Tanh())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, ...]`` -> ``[B, out_dim]``."""
        return self.net(x.reshape(x.shape[0], -1).float())


class GridEncoder(nn.Module):
    """A symbolic grid ``[H, W, C]`` (flat or not): per-channel symbol embeddings, two 3x3 convs.

    The embeddings are shared by every cell, so what a wall or a dancer is is learnt once, and the
    convolutions see where things are relative to each other: an egocentric view's direction to
    a target is a local pattern, which per-cell embeddings (:class:`CategoricalEncoder`) have to
    learn anew at every cell.
    """

    def __init__(self, highs: np.ndarray, shape: tuple[int, int, int], out_dim: int = 256) -> None:
        super().__init__()
        h, w, c = shape
        highs = np.asarray(highs, dtype=np.int64).reshape(h, w, c)
        self.shape = (h, w, c)
        self.channels = nn.ModuleList(
            nn.Embedding(int(highs[..., k].max()) + 1, GRID_EMBED_DIM) for k in range(c)
        )
        self.conv = nn.Sequential(
            nn.Conv2d(c * GRID_EMBED_DIM, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(32 * h * w, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, H * W * C]`` or ``[B, H, W, C]`` integers -> ``[B, out_dim]``."""
        grid = x.reshape(x.shape[0], *self.shape).long()
        embedded = torch.cat([e(grid[..., k]) for k, e in enumerate(self.channels)], dim=-1)
        return self.head(self.conv(embedded.permute(0, 3, 1, 2)).flatten(1))


def encoder_for(space: gymnasium.Space, shape: Sequence[int] | None = None) -> nn.Module:
    """The encoder of one (non-Dict) observation space.

    Args:
        space: The space.
        shape: The ``[H, W, C]`` layout of a flat symbolic grid (an env's
            ``metadata["observation_shapes"]``): read with :class:`GridEncoder`.
    """
    if _is_image(space):
        assert isinstance(space, spaces.Box)
        return ImageEncoder(space)
    highs = categorical_highs(space)
    if highs is not None and shape is not None and len(shape) == 3:
        if int(np.prod(shape)) != highs.size:
            raise ValueError(f"observation shape {tuple(shape)} does not fit {space}")
        h, w, c = (int(n) for n in shape)
        return GridEncoder(highs, (h, w, c))
    if highs is not None:
        if isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
            return CategoricalEncoder(highs)
        return CategoricalEncoder(highs, out_dim=min(256, highs.size * EMBED_DIM))  # a grid
    if isinstance(space, spaces.Box):
        return VectorEncoder(space)
    raise ValueError(
        f"no encoder for observation space {space}; supported: Box (image, integer, float), "
        "Discrete, MultiDiscrete, and Dicts of them"
    )


class ObservationEncoder(nn.Module):
    """Encodes a (Dict) observation into ``[B, out_dim]`` features.

    Args:
        space: The single-env observation space.
        out_dim: Width of the features.
        shapes: The ``[H, W, C]`` layout of flat symbolic grids, by Dict key (an env's
            ``metadata["observation_shapes"]``): those parts are read with :class:`GridEncoder`.
    """

    def __init__(
        self,
        space: gymnasium.Space,
        out_dim: int = 128,
        shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        subspaces = dict(space.spaces) if isinstance(space, spaces.Dict) else {"": space}
        self.keys = sorted(subspaces)
        shapes = shapes or {}
        self.parts = nn.ModuleDict(
            {k or "obs": encoder_for(subspaces[k], shapes.get(k)) for k in self.keys}
        )
        width = sum(part.out_dim for part in self.parts.values())  # type: ignore[misc]
        self.head = nn.Sequential(nn.Linear(width, out_dim), nn.ReLU())
        self.out_dim = out_dim
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.orthogonal_(module.weight, math.sqrt(2))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, observation: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Observation tensors with a leading batch dimension -> ``[B, out_dim]``."""
        if not isinstance(observation, dict):
            observation = {"": observation}
        features = [self.parts[k or "obs"](observation[k]) for k in self.keys]
        return self.head(torch.cat(features, dim=-1))
