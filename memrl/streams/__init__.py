"""Task streams: catalogues of tasks, schedules that order them, and ``ContinualEnv``.

- :mod:`~memrl.streams.catalogue`: ``Task`` and the catalogues (Meta-World v3 MT50 / CW10 /
  MT40, L2M's 16 dm_control tasks, memrl's memory envs) with their splits.
- :mod:`~memrl.streams.metaworld_protocol`: Meta-World under the Continual World protocol.
- :mod:`~memrl.streams.dm_control_env`: dm_control suite tasks with flat observations.
- :mod:`~memrl.streams.schedules`: ``sequential``, ``repeat``, ``cyclic``, ``power_law``,
  ``scole``, and the ``Timeline`` they lay out.
- :mod:`~memrl.streams.stream`: ``Stream`` and the named streams (``CW10``, ``CW20``, ...).
- :mod:`~memrl.streams.layout`: the shared observation/action layout (padding, task one-hot).
- :mod:`~memrl.streams.continual_env`: ``ContinualEnv``, a stream as one Gymnasium env.

Importing this package imports neither Meta-World, MuJoCo nor dm_control.
"""

from memrl.streams.catalogue import (
    CATALOGUE,
    CW10,
    CW20,
    DMC16,
    DMC_FINETUNE,
    DMC_PRETRAIN,
    DOMAINS,
    MEMORY_TASKS,
    MT40,
    MT50,
    SPLITS,
    TASK_LISTS,
    Task,
    get_task,
    resolve_tasks,
    tasks_of,
)
from memrl.streams.continual_env import ContinualEnv
from memrl.streams.layout import StreamLayout, TaskSpaces, task_spaces
from memrl.streams.schedules import (
    SCHEDULES,
    Cyclic,
    PowerLaw,
    Repeat,
    Schedule,
    Scole,
    Sequential,
    Stage,
    Timeline,
    make_schedule,
    power_law_weights,
)
from memrl.streams.stream import NAMED_STREAMS, Stream, make_stream

__all__ = [
    "CATALOGUE",
    "CW10",
    "CW20",
    "DMC16",
    "DMC_FINETUNE",
    "DMC_PRETRAIN",
    "DOMAINS",
    "MEMORY_TASKS",
    "MT40",
    "MT50",
    "NAMED_STREAMS",
    "SCHEDULES",
    "SPLITS",
    "TASK_LISTS",
    "ContinualEnv",
    "Cyclic",
    "PowerLaw",
    "Repeat",
    "Schedule",
    "Scole",
    "Sequential",
    "Stage",
    "Stream",
    "StreamLayout",
    "Task",
    "TaskSpaces",
    "Timeline",
    "get_task",
    "make_schedule",
    "make_stream",
    "power_law_weights",
    "resolve_tasks",
    "task_spaces",
    "tasks_of",
]
