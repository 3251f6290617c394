"""``make_core``: every memory core by name, so agents, the CLI and benchmarks can swap them."""

from __future__ import annotations

import inspect
from typing import Any

from memrl.memory.base import MemoryCore
from memrl.memory.hcam import HCAMCore
from memrl.memory.passthrough import NoMemoryCore
from memrl.memory.recurrent import GRUCore, LSTMCore
from memrl.memory.sat import SATFIFOCore, SATPMCore
from memrl.memory.transformer import TransformerCore

CORES: dict[str, type[MemoryCore]] = {
    "none": NoMemoryCore,
    "lstm": LSTMCore,
    "gru": GRUCore,
    "transformer": TransformerCore,
    "hcam": HCAMCore,
    "sat-fifo": SATFIFOCore,
    "sat-pm": SATPMCore,
}
"""Core classes by name. The SAT agent with the Adaptive Memory Allocator ("sat-ama") is a SAT
core whose strategy the allocator sets per episode (``memrl.memory.sat.set_strategy``)."""


def core_options(name: str) -> dict[str, Any]:
    """The keyword arguments of core ``name`` and their defaults."""
    if name not in CORES:
        raise ValueError(f"core must be one of {tuple(CORES)}, got {name!r}")
    parameters = inspect.signature(CORES[name].__init__).parameters
    return {key: p.default for key, p in parameters.items() if key not in ("self", "input_dim")}


def make_core(name: str, input_dim: int, **kwargs: Any) -> MemoryCore:
    """Build the memory core ``name`` for inputs of width ``input_dim``.

    Args:
        name: One of ``CORES``: none, lstm, gru, transformer, hcam, sat-fifo, sat-pm.
        input_dim: Width of the features fed in at each step.
        **kwargs: The core's options (see ``core_options(name)``), e.g. ``width``, ``chunk_size``.

    Raises:
        ValueError: On an unknown name, an option the core does not take, or a bad value.
    """
    allowed = core_options(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"core {name!r} takes options {sorted(allowed)}, got unknown {unknown}")
    return CORES[name](input_dim, **kwargs)
