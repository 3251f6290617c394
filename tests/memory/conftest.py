from __future__ import annotations

import pytest
import torch

from memrl.memory import make_core

NUM_PLACES = 4
INPUT_DIM = 5

# Tiny configurations of every core: small enough to be fast, small enough that a window of a few
# dozen steps crosses chunk boundaries, fills the memory and evicts.
TINY: dict[str, dict] = {
    "none": {"width": 8},
    "lstm": {"width": 8},
    "gru": {"width": 8, "num_layers": 2},
    "transformer": {"width": 8, "heads": 2, "window": 5, "num_layers": 2},
    "hcam": {"width": 8, "heads": 2, "chunk_size": 3, "top_k": 2, "capacity": 3, "num_layers": 2},
    "sat-fifo": {
        "width": 8,
        "heads": 2,
        "chunk_size": 3,
        "top_k": 2,
        "capacity": 3,
        "num_layers": 2,
        "num_places": NUM_PLACES,
    },
    "sat-pm": {
        "width": 8,
        "heads": 2,
        "top_k": 2,
        "capacity": 6,
        "num_layers": 2,
        "num_places": NUM_PLACES,
    },
}


@pytest.fixture
def tiny_core():
    """``tiny_core(name, seed=0)``: core ``name`` in a tiny configuration, built after seeding."""

    def make(name: str, seed: int = 0):
        torch.manual_seed(seed)
        return make_core(name, INPUT_DIM, **TINY[name])

    return make


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
