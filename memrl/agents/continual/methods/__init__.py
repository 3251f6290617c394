"""Continual-learning methods behind one interface (:class:`Method`), one module per family.

| name        | class           | module                                       |
|-------------|-----------------|----------------------------------------------|
| `finetune`  | `Finetune`      | :mod:`~memrl.agents.continual.methods.base`  |
| `l2`        | `L2`            | :mod:`~memrl.agents.continual.methods.regularization` |
| `ewc`       | `EWC`           | :mod:`~memrl.agents.continual.methods.regularization` |
| `packnet`   | `PackNet`       | :mod:`~memrl.agents.continual.methods.packnet` |
| `replay`    | `PerfectMemory` | :mod:`~memrl.agents.continual.methods.base`  |
| `multitask` | `Multitask`     | :mod:`~memrl.agents.continual.methods.multitask` |
"""

from __future__ import annotations

from memrl.agents.continual.config import METHODS, ContinualConfig
from memrl.agents.continual.methods.base import (
    Finetune,
    Method,
    PerfectMemory,
    Segment,
    task_segments,
)
from memrl.agents.continual.methods.multitask import InterleavedTasks, Multitask
from memrl.agents.continual.methods.packnet import PackNet
from memrl.agents.continual.methods.regularization import EWC, L2, Regularizer, fisher_diagonal
from memrl.streams import Stream

METHOD_CLASSES: dict[str, type[Method]] = {
    cls.name: cls for cls in (Finetune, L2, EWC, PackNet, PerfectMemory, Multitask)
}
assert tuple(METHOD_CLASSES) == METHODS


def make_method(config: ContinualConfig, stream: Stream) -> Method:
    """The method ``config.method`` names, for ``stream``.

    Raises:
        ValueError: An unknown method; the message names the allowed ones.
    """
    if config.method not in METHOD_CLASSES:
        raise ValueError(f"method must be one of {list(METHOD_CLASSES)}, got {config.method!r}")
    return METHOD_CLASSES[config.method](config, stream)


__all__ = [
    "EWC",
    "L2",
    "METHOD_CLASSES",
    "Finetune",
    "InterleavedTasks",
    "Method",
    "Multitask",
    "PackNet",
    "PerfectMemory",
    "Regularizer",
    "Segment",
    "fisher_diagonal",
    "make_method",
    "task_segments",
]
