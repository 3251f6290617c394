"""What the multi-domain Decision Transformer reads: a context of timesteps and a modulation.

A :class:`TrajectoryContext` holds ``K`` consecutive timesteps of a batch of trajectories in the
shared layout (:mod:`memrl.agents.pretrained.layout`). Contexts shorter than ``K`` (the start of
an episode) are padded at the *front* and marked in ``step_mask``.

A :class:`Modulation` says how the frozen model is changed per sample: which LoRA adapter of each
bank to apply (``adapter_index``, -1 = none) and/or prefix key/value prompts for every block
(L2P's prefix tuning). The L2M pools produce one from a query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrajectoryContext:
    """``K`` timesteps of ``B`` trajectories.

    Attributes:
        states: ``[B, K, state_dim]`` float states, zero-padded into the layout.
        actions: ``[B, K, action_dim]`` float actions in [-1, 1], zero-padded into the layout.
            The action of the last step is unknown at inference; any value may stand there (the
            causal mask keeps it from every prediction).
        returns_to_go: ``[B, K]`` float returns still to collect from each step on.
        timesteps: ``[B, K]`` int64 step of the episode, ``0..max_timestep-1``.
        action_mask: ``[B, action_dim]`` bool, True on the task's real action dimensions.
        domain: ``[B]`` int64, each row's domain: its index in
            :data:`~memrl.agents.pretrained.tasks.DOMAINS` (which state statistics normalise it).
        step_mask: ``[B, K]`` bool, False on padding steps (before the episode began), or None
            when every step is real.
    """

    states: torch.Tensor
    actions: torch.Tensor
    returns_to_go: torch.Tensor
    timesteps: torch.Tensor
    action_mask: torch.Tensor
    domain: torch.Tensor
    step_mask: torch.Tensor | None = None


@dataclass
class Modulation:
    """A per-sample change of the frozen model.

    Attributes:
        adapter_index: ``[B]`` int64, the adapter of every LoRA bank each sample uses
            (-1: none, the frozen model's own output), or None for no LoRA.
        prefix: One ``(keys, values)`` pair per block, each ``[B, prefix_len, embed_dim]``,
            prepended to that block's attention keys and values (prefix tuning), or None.
    """

    adapter_index: torch.Tensor | None = None
    prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None
