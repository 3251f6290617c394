"""The configuration of a memory-PPO run (torch-free, so ``memrl --help`` stays fast)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium

OBJECTIVES = ("rl", "supervised")
"""Allowed values of ``PPOConfig.objective``."""

ANSWER_STEPS = ("last", "choice")
"""Allowed values of ``PPOConfig.answer_step``."""

GRID_ENCODERS = ("conv", "flat")
"""Allowed values of ``PPOConfig.grid_encoder``."""

MEMORY_GRADIENTS = ("window", "detached")
"""Allowed values of ``PPOConfig.memory_gradient``."""

ATTENTION_CORES = ("transformer", "hcam", "sat-fifo", "sat-pm", "sat-ama")
"""The cores whose memory entries ``memory_gradient`` can detach (their ``detach_window``)."""


@dataclass
class PPOConfig:
    """Configuration of a memory-PPO run (each field is a ``memrl train`` option)."""

    env_id: str = "memrl/BalletGrid-2-delay16-v0"
    """Gymnasium id of the training env (batched implementation used when it has one)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env (e.g. {"delay": 1024} for DelayedMatch)."""
    core: str = "lstm"
    """Memory core: none, lstm, gru, transformer, hcam, sat-fifo, sat-pm, or sat-ama (sat-pm whose
    eviction strategy SAT's Adaptive Memory Allocator picks per episode from its question type)."""
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the core (e.g. chunk_size, top_k, capacity, num_layers)."""
    memory_gradient: str = "window"
    """How far an update's gradients reach through an attention core's memory (transformer,
    hcam, sat-fifo, sat-pm, sat-ama): "window" (as in Transformer-XL: what the training window
    writes keeps its gradients, so a late readout trains what earlier steps wrote; the state the
    window starts from is detached) or "detached" (every memory entry is detached when written:
    a readout trains only its own step)."""
    objective: str = "rl"
    """What trains the policy: "rl" (PPO on the env's rewards) or "supervised" (SAT's protocol for
    question answering: cross-entropy between the action logits of every episode's last step and
    the right answer the env reports in info["answer"], as on RoomBallet; no value, entropy or
    clipping terms)."""
    answer_step: str = "last"
    """Which step of an episode the supervised objective labels with info["answer"]: "last" (the
    step whose action ends the episode: the answer of DelayedMatch and RoomBallet) or "choice"
    (the episode's first step whose action the env does not report as ignored: Ballet's first
    move after the instruction shows, where the target dancer must be recalled)."""
    answer_coef: float = 0.0
    """Weight of a probe loss beside the rl objective: a linear head on the core's output predicts
    info["answer"] at each episode's answer step (``answer_step``), and its accuracy is logged as
    losses/probe_accuracy. The probe reads the env's privileged answer: a diagnostic of what the
    memory holds (with RL keeping episodes short), not an RL result. 0: off."""
    grid_encoder: str = "conv"
    """How a symbolic grid whose layout the env gives (``metadata["observation_shapes"]``,
    BalletGrid's 11x11x2) is encoded: "conv" (symbol embeddings shared by all cells, two 3x3
    convolutions) or "flat" (an embedding per cell and entry, then a linear layer: what runs made
    before this option used)."""
    reconstruction_coef: float = 0.0
    """Weight of a self-supervised loss: the core's output at every step reconstructs that
    step's observation (its categorical parts: grid cells, the instruction), as the HCAM
    paper's agent decodes its memory for self-supervised losses. 0: off."""
    allocator_explore_fraction: float = 0.5
    """sat-ama: the share of ``total_steps`` over which the allocator's exploration rate falls
    linearly from 1.0 to 0.2 (SAT anneals over 200k of its training steps); it stays at 0.2
    after. The core learns under every strategy first, so the allocator's values compare
    strategies for a core that can use them."""
    total_steps: int = 200_000
    """Env steps to train for (summed over envs)."""
    seed: int = 0
    """Seed of the envs, the network and the sampling."""
    num_envs: int = 16
    """Parallel envs."""
    num_steps: int = 128
    """Steps per env per rollout: the length of a training window."""
    feature_dim: int = 128
    """Width of the encoded observation fed to the core."""
    learning_rate: float = 3e-4
    """Adam learning rate (annealed linearly to 0 when anneal_lr)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly over the run."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    num_minibatches: int = 8
    """Minibatches per epoch (groups of envs; must divide num_envs)."""
    update_epochs: int = 8
    """Epochs over each rollout. With ``num_minibatches`` 8, 64 optimiser steps per rollout: the
    schedule under which every core learns DelayedMatch-Easy fast in wall-clock time
    (``scripts/ppo_settings_study.py``, docs/RESULTS.md "Memory PPO's settings"); the earlier 4
    epochs of 4 minibatches starved the LSTM (no seed at 0.9 in 300k steps)."""
    clip_coef: float = 0.2
    """PPO clipping of the probability ratio."""
    clip_value: bool = True
    """Clip the value loss as in CleanRL's PPO."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    mask_ignored_actions: bool = True
    """Leave the steps whose action the env reports as ignored (info["action_ignored"]) out of
    the policy loss, the entropy bonus and the advantage statistics (the value loss keeps them)."""
    vf_coef: float = 0.5
    """Value-loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping by global norm."""
    checkpoint_every: int = 20
    """Save a checkpoint every this many updates (and at the end)."""
    log_every: int = 1
    """Log training metrics every this many updates."""
    tensorboard: bool = True
    """Also write TensorBoard events."""
    threads: int = 0
    """torch threads (0: leave torch's default)."""

    def validate(self, name: Callable[[str], str] = lambda field: field) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed.

        Args:
            name: How a message names a field: by default the field itself; ``memrl train`` passes
                its options (``num_envs`` -> ``--num-envs``).
        """
        positive = ("total_steps", "num_envs", "num_steps", "feature_dim", "num_minibatches",
                    "update_epochs", "checkpoint_every", "log_every")  # fmt: skip
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"{name(key)} must be >= 1, got {getattr(self, key)}")
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"{name('num_minibatches')} ({self.num_minibatches}) must divide "
                f"{name('num_envs')} ({self.num_envs})"
            )
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{name(key)} must be in [0, 1], got {getattr(self, key)}")
        for key in ("learning_rate", "clip_coef"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{name(key)} must be > 0, got {getattr(self, key)}")
        if self.reconstruction_coef < 0:
            raise ValueError(
                f"{name('reconstruction_coef')} must be >= 0, got {self.reconstruction_coef}"
            )
        if not 0.0 < self.allocator_explore_fraction <= 1.0:
            raise ValueError(
                f"{name('allocator_explore_fraction')} must be in (0, 1], got "
                f"{self.allocator_explore_fraction}"
            )
        if self.memory_gradient not in MEMORY_GRADIENTS:
            raise ValueError(
                f"{name('memory_gradient')} must be one of {MEMORY_GRADIENTS}, got "
                f"{self.memory_gradient!r}"
            )
        if self.memory_gradient != "window" and self.core not in ATTENTION_CORES:
            raise ValueError(
                f"{name('memory_gradient')} {self.memory_gradient!r} needs an attention core "
                f"{ATTENTION_CORES}, got {name('core')} {self.core!r}"
            )
        if "detach_window" in self.core_kwargs:
            raise ValueError(
                f"set detach_window with {name('memory_gradient')} (window or detached), not in "
                f"{name('core_kwargs')}"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"{name('objective')} must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.answer_step not in ANSWER_STEPS:
            raise ValueError(
                f"{name('answer_step')} must be one of {ANSWER_STEPS}, got {self.answer_step!r}"
            )
        if self.answer_coef < 0:
            raise ValueError(f"{name('answer_coef')} must be >= 0, got {self.answer_coef}")
        if self.answer_coef > 0 and self.objective != "rl":
            raise ValueError(
                f"{name('answer_coef')} adds a probe beside {name('objective')} 'rl'; "
                f"{name('objective')} {self.objective!r} trains on the answers already"
            )
        if self.answer_step != "last" and self.objective != "supervised" and not self.answer_coef:
            raise ValueError(
                f"{name('answer_step')} {self.answer_step!r} applies to {name('objective')} "
                f"'supervised' or a probe ({name('answer_coef')} > 0) only, got "
                f"{name('objective')} {self.objective!r}"
            )
        if self.grid_encoder not in GRID_ENCODERS:
            raise ValueError(
                f"{name('grid_encoder')} must be one of {GRID_ENCODERS}, got {self.grid_encoder!r}"
            )
        if self.env_id not in gymnasium.registry:
            raise ValueError(f"unknown env id {self.env_id!r}; run `memrl list`")

    @property
    def batch_steps(self) -> int:
        """Env steps per rollout."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """Updates in the run."""
        return max(1, self.total_steps // self.batch_steps)
