"""The configuration of an SB3 baseline run (SB3-free, so ``memrl --help`` stays fast).

Field names are memory PPO's (:class:`~memrl.agents.ppo_config.PPOConfig`) wherever SB3's PPO or
sb3-contrib's RecurrentPPO has the same setting, so one ``memrl train`` option reaches either
trainer; the defaults are SB3's own where they differ from memory PPO's (e.g. 8 envs, 10 epochs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium

ALGORITHMS = ("ppo", "recurrent-ppo")
"""Allowed values of ``SB3Config.algorithm``."""


@dataclass
class SB3Config:
    """Configuration of an SB3 baseline run."""

    env_id: str = "memrl/BalletGrid-2-delay16-v0"
    """Gymnasium id of the training env."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env (e.g. {"delay": 1024} for DelayedMatch)."""
    algorithm: str = "ppo"
    """ppo (SB3) or recurrent-ppo (sb3-contrib's LSTM PPO)."""
    total_steps: int = 200_000
    """Env steps to train for (summed over envs; SB3 trains whole rollouts, so a run ends at the
    first multiple of num_envs * num_steps at or past this)."""
    seed: int = 0
    """Seed of the envs and the network."""
    num_envs: int = 8
    """Parallel envs (DummyVecEnv)."""
    num_steps: int = 128
    """Steps per env per rollout (SB3's n_steps)."""
    frame_stack: int = 0
    """Stack this many last observations (ppo only; 0 or 1: none)."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over the run (SB3's LinearSchedule)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    num_minibatches: int = 0
    """Minibatches per epoch: SB3's batch_size is num_envs * num_steps / num_minibatches. 0: SB3's
    default batch_size (64 transitions for ppo, 128 for recurrent-ppo)."""
    update_epochs: int = 10
    """Epochs over each rollout (SB3's n_epochs)."""
    clip_coef: float = 0.2
    """PPO clipping of the probability ratio (SB3's clip_range)."""
    clip_value: bool = False
    """Clip the value prediction to within clip_coef of the rollout's value (SB3's clip_range_vf;
    SB3 takes the loss of the clipped prediction, not CleanRL's larger of both losses)."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    vf_coef: float = 0.5
    """Value-loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping by global norm."""
    checkpoint_every: int = 50
    """Save a checkpoint every this many updates (rollouts of num_envs * num_steps env steps),
    and the final model at the end."""
    log_every: int = 1
    """Log training metrics every this many updates (SB3's log_interval)."""
    tensorboard: bool = True
    """Also write TensorBoard events (under tb/)."""
    threads: int = 0
    """torch threads (0: leave torch's default)."""

    @property
    def batch_steps(self) -> int:
        """Env steps per rollout."""
        return self.num_envs * self.num_steps

    def validate(self, name: Callable[[str], str] = lambda field: field) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed.

        Args:
            name: How a message names a field: by default the field itself; ``memrl train`` passes
                its options (``num_envs`` -> ``--num-envs``).
        """
        if self.algorithm not in ALGORITHMS:  # its option, --agent, takes other values (sb3-ppo)
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        positive = ("total_steps", "num_envs", "num_steps", "update_epochs", "checkpoint_every",
                    "log_every")  # fmt: skip
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{name(key)} must be >= 1, got {getattr(self, key)}")
        for key in ("frame_stack", "num_minibatches", "threads"):
            if getattr(self, key) < 0:
                raise ValueError(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        if self.frame_stack > 1 and self.algorithm != "ppo":
            raise ValueError(
                f"{name('frame_stack')} stacks observations for algorithm 'ppo' only (--agent "
                f"sb3-ppo); got {name('frame_stack')} {self.frame_stack} with "
                f"{self.algorithm!r}, which has an LSTM"
            )
        if self.num_minibatches and (
            self.batch_steps % self.num_minibatches or self.batch_steps // self.num_minibatches < 2
        ):
            raise ValueError(
                f"{name('num_minibatches')} ({self.num_minibatches}) must divide "
                f"{name('num_envs')} * {name('num_steps')} ({self.batch_steps}) into minibatches "
                "of at least 2 steps"
            )
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{name(key)} must be in [0, 1], got {getattr(self, key)}")
        for key in ("learning_rate", "clip_coef"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{name(key)} must be > 0, got {getattr(self, key)}")
        if self.env_id not in gymnasium.registry:
            raise ValueError(f"unknown env id {self.env_id!r}; run `memrl list`")
