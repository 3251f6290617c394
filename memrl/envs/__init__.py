"""Single-task Gymnasium environments that demand episodic memory, and their registration."""

from memrl.envs.suites import (
    ALL,
    BALLET,
    CONTROL,
    MEMORY,
    RECALL,
    ROOMS,
    STREAMS,
    SuiteEntry,
    register_memrl_envs,
)

__all__ = [
    "ALL",
    "BALLET",
    "CONTROL",
    "MEMORY",
    "RECALL",
    "ROOMS",
    "STREAMS",
    "SuiteEntry",
    "register_memrl_envs",
]
