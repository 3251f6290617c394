"""Action heads of the multi-domain Decision Transformer: binned (L2M's) or regression.

Both read the output of a timestep's *state* token and predict every dimension of the shared
action layout at once; the loss is taken only over the task's real dimensions and real steps.

- :class:`DiscreteActionHead`: one 64-way classifier per action dimension (factorised over
  dimensions: ``[B, K, action_dim, num_bins]`` logits), cross-entropy against the binned target.
  Decoding takes the argmax bin (or samples one) and returns its centre.
- :class:`RegressionActionHead`: a tanh mean per dimension and mean-squared error, deterministic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from memrl.agents.pretrained.binning import ActionBinning


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``weights`` (bool, same shape) is True; exactly blind elsewhere."""
    selected = torch.where(weights, values, torch.zeros_like(values))
    return selected.sum() / weights.sum().clamp_min(1)


class DiscreteActionHead(nn.Module):
    """Per-dimension bin logits from state-token outputs.

    Args:
        embed_dim: Token width.
        action_dim: Width of the action layout.
        binning: The action bins.
    """

    def __init__(self, embed_dim: int, action_dim: int, binning: ActionBinning) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.binning = binning
        self.linear = nn.Linear(embed_dim, action_dim * binning.num_bins)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, K, D]`` -> logits ``[B, K, action_dim, num_bins]``."""
        return self.linear(h).unflatten(-1, (self.action_dim, self.binning.num_bins))

    def loss(
        self, prediction: torch.Tensor, target_actions: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of the target bins, averaged over the True entries of ``weights``.

        Args:
            prediction: ``[B, K, action_dim, num_bins]`` logits.
            target_actions: ``[B, K, action_dim]`` actions in [-1, 1].
            weights: ``[B, K, action_dim]`` bool: real steps x real action dimensions.
        """
        targets = self.binning.encode(target_actions)
        per_entry = functional.cross_entropy(
            prediction.flatten(0, -2), targets.flatten(), reduction="none"
        ).view_as(targets)
        return _masked_mean(per_entry, weights)

    def decode(
        self,
        prediction: torch.Tensor,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Actions ``[B, action_dim]`` from ``[B, action_dim, num_bins]`` logits.

        Each dimension takes the centre of its argmax bin, or of a bin sampled from the softmax.
        """
        if deterministic:
            bins = prediction.argmax(dim=-1)
        else:
            probabilities = torch.softmax(prediction, dim=-1).flatten(0, -2)
            bins = torch.multinomial(probabilities, 1, generator=generator)
            bins = bins.view(prediction.shape[:-1])
        return self.binning.decode(bins)


class RegressionActionHead(nn.Module):
    """A tanh action mean from state-token outputs, trained with mean-squared error.

    Args:
        embed_dim: Token width.
        action_dim: Width of the action layout.
    """

    def __init__(self, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, action_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, K, D]`` -> action means ``[B, K, action_dim]`` in (-1, 1)."""
        return torch.tanh(self.linear(h))

    def loss(
        self, prediction: torch.Tensor, target_actions: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Squared error to the targets (clipped to [-1, 1]), averaged where ``weights``."""
        squared = (prediction - target_actions.clamp(-1.0, 1.0)) ** 2
        return _masked_mean(squared, weights)

    def decode(
        self,
        prediction: torch.Tensor,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The mean ``[B, action_dim]``; a regression head has nothing to sample.

        Raises:
            ValueError: ``deterministic`` is False.
        """
        if not deterministic:
            raise ValueError(
                "a regression action head is deterministic; use deterministic=True "
                "(or action_head='discrete' to sample actions)"
            )
        return prediction
