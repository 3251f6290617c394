"""Self-supervised reconstruction of each step's observation from the memory core's output.

The HCAM paper's agent decodes its memory's outputs for self-supervised losses as well as for the
RL loss (Lampinen et al. 2021, Figure 1d), which gives the encoder and the memory a training
signal on every step rather than one reward per episode. memrl's version
(``PPOConfig.reconstruction_coef``): from the core's output at each step, one linear head per
observation part predicts every categorical entry of that step's observation (symbolic grid
cells, the instruction, ``Discrete`` and ``MultiDiscrete`` values). The loss is the cross-entropy
averaged over the entries of a part, then over parts, so a one-entry instruction weighs as much
as a whole grid. Images and float vectors are not reconstructed.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import torch
from gymnasium import spaces
from torch import nn
from torch.nn.functional import cross_entropy

from memrl.agents.encoders import categorical_highs

MAX_OUTPUTS = 65_536
"""Largest head (entries x classes) a part may need; bigger parts are refused."""


class ObservationDecoder(nn.Module):
    """Linear heads from the core's output to the categorical parts of the observation.

    Args:
        space: The single-env observation space (a ``Dict`` or one space).
        width: Width of the core's output.

    Raises:
        ValueError: If no part of ``space`` is categorical, or a part needs more than
            ``MAX_OUTPUTS`` outputs.
    """

    def __init__(self, space: gymnasium.Space, width: int) -> None:
        super().__init__()
        subspaces = dict(space.spaces) if isinstance(space, spaces.Dict) else {"": space}
        self.shapes: dict[str, tuple[int, int]] = {}  # key -> (entries, classes)
        heads = {}
        for key in sorted(subspaces):
            highs = categorical_highs(subspaces[key])
            if highs is None:
                continue
            entries, classes = highs.size, int(highs.max()) + 1
            if entries * classes > MAX_OUTPUTS:
                raise ValueError(
                    f"reconstructing observation part {key or 'obs'!r} needs {entries} entries "
                    f"x {classes} classes, more than {MAX_OUTPUTS:,} outputs"
                )
            self.shapes[key] = (entries, classes)
            heads[key or "obs"] = nn.Linear(width, entries * classes)
        if not heads:
            raise ValueError(
                f"reconstruction needs a categorical observation part (symbolic grid, Discrete, "
                f"MultiDiscrete); {space} has none"
            )
        self.heads = nn.ModuleDict(heads)

    def loss(self, hidden: torch.Tensor, observation: Any) -> torch.Tensor:
        """Mean cross-entropy of the reconstructed observation.

        Args:
            hidden: ``[N, width]`` core outputs.
            observation: The observations of the same ``N`` steps (a tensor or a dict).

        Returns:
            A scalar: the cross-entropy averaged over each part's entries, then over parts.
        """
        if not isinstance(observation, dict):
            observation = {"": observation}
        n = hidden.shape[0]
        losses = []
        for key, (entries, classes) in self.shapes.items():
            logits = self.heads[key or "obs"](hidden).view(n * entries, classes)
            target = observation[key].reshape(n * entries).long()
            losses.append(cross_entropy(logits, target))
        return torch.stack(losses).mean()
