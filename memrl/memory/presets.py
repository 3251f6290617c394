"""The sizes at which memrl's studies compare memory cores (the scripts under scripts/ share them).

The attention cores at 2 layers of width 64 train fast on a CPU; chunked memories use chunks of
16 steps (a Ballet dance; the recall study's HCAM). The recurrent and memory-free cores keep their
defaults.
"""

from __future__ import annotations

from typing import Any

SMALL: dict[str, Any] = {"num_layers": 2, "width": 64}
"""2 layers of width 64: the attention cores at a size that trains fast on a CPU."""
CHUNKED: dict[str, Any] = {**SMALL, "chunk_size": 16}
"""Chunked memories with chunks of 16 steps (a Ballet dance; the recall study's HCAM)."""
STUDY_CORES: dict[str, dict[str, Any]] = {
    "hcam": CHUNKED,
    "transformer": SMALL,
    "lstm": {},
    "gru": {},
    "none": {},
}
"""Core name -> the options the Ballet scripts train it with (scripts/memory_study.py's presets
of these cores)."""
