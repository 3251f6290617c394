"""Torch memory cores behind one interface (see ``memrl.memory.base``).

``make_core(name, input_dim, **options)`` builds any of them: ``none``, ``lstm``, ``gru``,
``transformer``, ``hcam``, ``sat-fifo``, ``sat-pm``. The Adaptive Memory Allocator of the
Spatially-Aware Transformer lives in ``memrl.memory.allocator``.
"""

from memrl.memory.allocator import AdaptiveMemoryAllocator
from memrl.memory.base import MemoryCore, State, concat_states, detach_state, index_state
from memrl.memory.eviction import STRATEGIES
from memrl.memory.factory import CORES, core_options, make_core
from memrl.memory.sat import set_strategy

__all__ = [
    "CORES",
    "STRATEGIES",
    "AdaptiveMemoryAllocator",
    "MemoryCore",
    "State",
    "concat_states",
    "core_options",
    "detach_state",
    "index_state",
    "make_core",
    "set_strategy",
]
