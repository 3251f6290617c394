"""Timings of the multi-domain Decision Transformer and the L2M pool (for ``memrl bench l2m``).

The later CW10 study fine-tunes 10 tasks x 8 methods x 3 seeds on a 2-core CPU and acts online
in Meta-World after every task, so one update and one action must be cheap. These functions time
them on synthetic inputs (random states, actions, returns), on ``threads`` CPU threads:

- :func:`measure_update_ms`: one training update (forward, backward, AdamW step) at a batch of
  full contexts, either full fine-tuning (every parameter trains) or the L2M pool (frozen model,
  30-entry LoRA banks on query/value/fc1 routed per sample, key selection and pull loss).
- :func:`measure_action_ms`: one action for a batch of rolling contexts (no gradient).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from memrl.agents.l2m.lora import attach_lora
from memrl.agents.l2m.modulator_pool import ModulatorPool
from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.inference import predict_action
from memrl.agents.pretrained.inputs import TrajectoryContext
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer

UPDATE_METHODS: tuple[str, ...] = ("full", "l2m")
"""What an update trains: every parameter, or the L2M pool on the frozen model."""


def parameter_count(model: MultiDomainDecisionTransformer) -> int:
    """Parameters of the pretrained model itself (attached adapters excluded)."""
    return sum(parameter.numel() for parameter in model.base_parameters())


def synthetic_context(
    config: MDDTConfig, batch_size: int, generator: torch.Generator
) -> TrajectoryContext:
    """Full random contexts in the layout (4 action dims and domain 0, like Meta-World).

    Args:
        config: The model's config.
        batch_size: Contexts.
        generator: Random source.
    """
    shape = (batch_size, config.context_steps)
    action_mask = torch.zeros(batch_size, config.action_dim, dtype=torch.bool)
    action_mask[:, : min(4, config.action_dim)] = True
    return TrajectoryContext(
        states=torch.randn(*shape, config.state_dim, generator=generator),
        actions=torch.rand(*shape, config.action_dim, generator=generator) * 2 - 1,
        returns_to_go=torch.rand(shape, generator=generator),
        timesteps=torch.randint(0, config.max_timestep, shape, generator=generator),
        action_mask=action_mask,
        domain=torch.zeros(batch_size, dtype=torch.long),
    )


@dataclass(frozen=True)
class Timing:
    """Median milliseconds of one call.

    Attributes:
        cpu_ms: CPU time of the calling thread: what one otherwise idle core would take (on a
            shared machine, wall time also counts the waits for a core).
        wall_ms: Wall-clock time.
    """

    cpu_ms: float
    wall_ms: float


def _median_ms(step: Callable[[], object], repeats: int, warmup: int, threads: int) -> Timing:
    """Median CPU and wall time of ``step()``, on ``threads`` threads."""
    if repeats < 1 or warmup < 0 or threads < 1:
        raise ValueError(
            f"need repeats >= 1, warmup >= 0, threads >= 1; got {repeats}, {warmup}, {threads}"
        )
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            step()
        cpu, wall = [], []
        for _ in range(repeats):
            start_cpu, start_wall = time.thread_time(), time.perf_counter()
            step()
            cpu.append((time.thread_time() - start_cpu) * 1000.0)
            wall.append((time.perf_counter() - start_wall) * 1000.0)
    finally:
        torch.set_num_threads(previous)
    return Timing(statistics.median(cpu), statistics.median(wall))


def _build(
    config: MDDTConfig, method: str, seed: int
) -> tuple[MultiDomainDecisionTransformer, ModulatorPool | None]:
    """A fresh model (and, for ``"l2m"``, its frozen base, 30-entry LoRA banks and pool)."""
    if method not in UPDATE_METHODS:
        raise ValueError(f"method must be one of {UPDATE_METHODS}, got {method!r}")
    torch.manual_seed(seed)
    model = MultiDomainDecisionTransformer(config)
    if method == "full":
        return model, None
    model.freeze_base()
    attach_lora(model, num_adapters=30)
    pool = ModulatorPool(key_dim=config.embed_dim, num_entries=30)
    pool.start_task()
    return model, pool


def measure_update_ms(
    config: MDDTConfig | None = None,
    batch_size: int = 128,
    method: str = "full",
    repeats: int = 20,
    warmup: int = 3,
    threads: int = 1,
    seed: int = 0,
) -> Timing:
    """Median milliseconds of one training update (forward, backward, AdamW step).

    Args:
        config: The model (default: memrl's default ``MDDTConfig()``).
        batch_size: Contexts per update.
        method: ``"full"`` (full fine-tuning) or ``"l2m"`` (frozen model, 30-entry LoRA pool).
        repeats: Timed updates.
        warmup: Untimed updates first.
        threads: CPU threads (``torch.set_num_threads``; restored afterwards). CPU time is
            that of the calling thread, so it is meaningful for ``threads=1``.
        seed: Seeds the model and the data.

    Raises:
        ValueError: An unknown ``method`` or bad counts.
    """
    config = config or MDDTConfig()
    model, pool = _build(config, method, seed)
    model.train()
    context = synthetic_context(config, batch_size, torch.Generator().manual_seed(seed))
    trainable = [p for p in model.parameters() if p.requires_grad]
    if pool is not None:
        pool.train()
        trainable += list(pool.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)

    def update() -> None:
        embedded = model.embed(context)
        if pool is None:
            loss = model.action_loss(model.run(embedded), context)
        else:
            selection = pool(model.pool_query(embedded))
            prediction = model.run(embedded, selection.modulation)
            loss = model.action_loss(prediction, context) + selection.pull_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _median_ms(update, repeats, warmup, threads)


def measure_action_ms(
    config: MDDTConfig | None = None,
    num_envs: int = 1,
    method: str = "full",
    repeats: int = 200,
    warmup: int = 10,
    threads: int = 1,
    seed: int = 0,
) -> Timing:
    """Median milliseconds to choose one action for ``num_envs`` full contexts.

    Args:
        config: The model (default: memrl's default ``MDDTConfig()``).
        num_envs: Contexts per call.
        method: ``"full"`` (the model alone) or ``"l2m"`` (pool selection and LoRA routing).
        repeats: Timed calls.
        warmup: Untimed calls first.
        threads: CPU threads (``torch.set_num_threads``; restored afterwards). CPU time is
            that of the calling thread, so it is meaningful for ``threads=1``.
        seed: Seeds the model and the data.

    Raises:
        ValueError: An unknown ``method`` or bad counts.
    """
    config = config or MDDTConfig()
    model, pool = _build(config, method, seed)
    model.eval()
    context = synthetic_context(config, num_envs, torch.Generator().manual_seed(seed))
    if pool is None:
        return _median_ms(lambda: predict_action(model, context), repeats, warmup, threads)
    pool.eval()
    modulated = pool

    def act() -> torch.Tensor:
        return predict_action(model, context, modulate=lambda query: modulated(query).modulation)

    return _median_ms(act, repeats, warmup, threads)
