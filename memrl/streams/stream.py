"""Streams: a task list, a schedule and a step budget per stage, and the named streams.

``make_stream("CW20")`` is Continual World's CW20; keyword arguments replace a part of a named
stream (``make_stream("CW10", steps_per_task=20_000)``), or build a new one
(``make_stream(tasks=["push-v3", "reach-v3"], schedule={"kind": "cyclic", "cycles": 4})``).

| name       | tasks                  | schedule                               | steps per stage |
|------------|------------------------|----------------------------------------|-----------------|
| `CW10`     | CW10                   | sequential                             | 1,000,000       |
| `CW20`     | CW10                   | repeat, times=2; one-hot per stage     | 1,000,000       |
| `PowerLaw` | CW10                   | power_law, 200 stages, alpha=1, seed 0 | 100,000         |
| `Cyclic`   | CW10                   | cyclic, 3 cycles, reshuffled, seed 0   | 1,000,000       |
| `SCoLe`    | CW10                   | scole, 100 stages of 2 tasks, seed 0   | 200,000         |
| `DMC6`     | dm_control fine-tuning | sequential                             | 1,000,000       |
| `Recall`   | four memrl memory envs | cyclic, 3 cycles, reshuffled, seed 0   | 100,000         |

``one_hot="stage"`` lays a stream out as Continual World lays out CW20: every stage is a task of
its own (a task's second stage is the task ``"hammer-v3#2"``, same environment), so it has its
own one-hot, its own output head in a multi-head agent and its own column in the evaluations,
and the schedule becomes sequential over the stages. ``CW20`` is laid out so (20 tasks); with
``one_hot="task"`` (every other stream's default) a re-occurring task keeps its one-hot, head and
column (``make_stream("CW20", one_hot="task")``: 10 tasks, schedule ``repeat``).

``held_out=`` adds tasks that the stream evaluates but never trains (``make_stream("CW10",
held_out=["door-open-v3"])``): they follow the trained tasks in the one-hot layout
(``layout_names``), so an agent can be evaluated on them in the stream's spaces, and no stage
trains them. A retention matrix's held-out columns come from them.

``PowerLaw`` spends CW20's budget (20M steps) over 200 shorter stages. ``Recall`` is
DelayedMatch-Easy, KeyToDoor, DelayedMatch and PassiveVisualMatch (all ``Discrete(4)`` actions;
observations padded to 77 entries).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from memrl.streams.catalogue import Task, base_task_name, occurrence, resolve_tasks
from memrl.streams.schedules import Schedule, Timeline, make_schedule


@dataclass(frozen=True, eq=False)
class Stream:
    """A task list, a schedule over it, and the environment steps of every stage.

    Attributes:
        name: The stream's name.
        tasks: The distinct tasks (their order is the one-hot order).
        schedule: The order of training.
        steps_per_task: Environment steps of every stage.
        one_hot: ``"task"``, or ``"stage"`` when ``tasks`` hold one task per stage (occurrences
            after the first renamed ``"<name>#<k>"``) and the schedule is sequential.
        held_out: Tasks evaluated but never trained; in the one-hot layout after ``tasks``.
    """

    name: str
    tasks: tuple[Task, ...]
    schedule: Schedule
    steps_per_task: int
    one_hot: str = "task"
    held_out: tuple[Task, ...] = ()

    @property
    def task_names(self) -> tuple[str, ...]:
        """Names of the distinct trained tasks, in one-hot order (the schedule's task ids)."""
        return tuple(task.name for task in self.tasks)

    @property
    def held_out_names(self) -> tuple[str, ...]:
        """Names of the held-out tasks."""
        return tuple(task.name for task in self.held_out)

    @property
    def layout_tasks(self) -> tuple[Task, ...]:
        """Every task of the one-hot layout: the trained ones, then the held-out ones."""
        return self.tasks + self.held_out

    @property
    def layout_names(self) -> tuple[str, ...]:
        """Names of ``layout_tasks`` (the one-hot order, the evaluation columns)."""
        return tuple(task.name for task in self.layout_tasks)

    @functools.cached_property
    def timeline(self) -> Timeline:
        """The stages laid out in stream steps."""
        return self.schedule.timeline(self.task_names, self.steps_per_task)

    def task(self, name: str) -> Task:
        """The stream's task (trained or held out) called ``name``.

        Raises:
            ValueError: ``name`` is not one of the stream's tasks.
        """
        for task in self.layout_tasks:
            if task.name == name:
                return task
        raise ValueError(
            f"task must be one of the stream's tasks {list(self.layout_names)}, got {name!r}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The stream as plain data (for run configs and reports)."""
        return {
            "name": self.name,
            "tasks": list(self.task_names),
            "schedule": self.schedule.to_dict(),
            "steps_per_task": self.steps_per_task,
            "one_hot": self.one_hot,
            "held_out": list(self.held_out_names),
        }

    def __str__(self) -> str:
        held_out = f"\nheld out: {', '.join(self.held_out_names)}" if self.held_out else ""
        return f"stream {self.name}\n{self.timeline.format(max_stages=40)}{held_out}"


NAMED_STREAMS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "CW10": {"tasks": "CW10", "schedule": "sequential", "steps_per_task": 1_000_000},
        "CW20": {
            "tasks": "CW10",
            "schedule": {"kind": "repeat", "times": 2},
            "steps_per_task": 1_000_000,
            "one_hot": "stage",
        },
        "PowerLaw": {
            "tasks": "CW10",
            "schedule": {"kind": "power_law", "num_stages": 200, "alpha": 1.0, "seed": 0},
            "steps_per_task": 100_000,
        },
        "Cyclic": {
            "tasks": "CW10",
            "schedule": {"kind": "cyclic", "cycles": 3, "reshuffle": True, "seed": 0},
            "steps_per_task": 1_000_000,
        },
        "SCoLe": {
            "tasks": "CW10",
            "schedule": {"kind": "scole", "num_stages": 100, "tasks_per_stage": 2, "seed": 0},
            "steps_per_task": 200_000,
        },
        "DMC6": {"tasks": "DMC-finetune", "schedule": "sequential", "steps_per_task": 1_000_000},
        "Recall": {
            "tasks": (
                "memrl/DelayedMatch-Easy-v0",
                "memrl/KeyToDoor-v0",
                "memrl/DelayedMatch-v0",
                "memrl/PassiveVisualMatch-v0",
            ),
            "schedule": {"kind": "cyclic", "cycles": 3, "reshuffle": True, "seed": 0},
            "steps_per_task": 100_000,
        },
    }
)
"""The named streams: tasks, schedule, steps per stage and (CW20) one-hot layout of each."""

ONE_HOT_LAYOUTS: tuple[str, ...] = ("task", "stage")
"""One one-hot (and head, and evaluation column) per distinct task, or per stage."""


def _same_part(key: str, value: Any, base: Any) -> bool:
    """Whether a replacement part of a stream equals the part it replaces."""
    if key == "tasks":
        return resolve_tasks(value) == resolve_tasks(base)
    if key == "held_out":
        return _held_out_tasks(value) == _held_out_tasks(base)
    if key == "schedule":
        return make_schedule(value) == make_schedule(base)
    return bool(value == base)


def _by_stage(tasks: tuple[Task, ...], schedule: Schedule) -> tuple[Task, ...]:
    """One task per stage of ``schedule`` over ``tasks``: a task's k-th stage is occurrence k.

    Raises:
        ValueError: A stage trains several tasks (scole).
    """
    stages = schedule.timeline(tuple(t.name for t in tasks), 1).stages
    if any(len(stage.task_ids) != 1 for stage in stages):
        raise ValueError(
            f"one_hot='stage' needs one task per stage, got a {schedule.kind} schedule with "
            "several; use one_hot='task'"
        )
    seen: dict[str, int] = {}
    by_stage = []
    for stage in stages:
        task = tasks[stage.task_ids[0]]
        seen[task.base_name] = seen.get(task.base_name, 0) + 1
        by_stage.append(occurrence(task, seen[task.base_name]))
    return tuple(by_stage)


def _held_out_tasks(spec: str | Task | Iterable[str | Task]) -> tuple[Task, ...]:
    """Held-out tasks from a list name, a task or tasks; none for an empty sequence.

    Raises:
        ValueError: An unknown task, or one environment held out twice (``"x"`` and ``"x#2"``).
    """
    if not isinstance(spec, str | Task) and not tuple(spec):
        return ()
    bases = [base_task_name(item.name if isinstance(item, Task) else item) for item in
             ((spec,) if isinstance(spec, str | Task) else spec)]  # fmt: skip
    twice = sorted({name for name in bases if bases.count(name) > 1})
    if twice:
        raise ValueError(f"held_out tasks must be distinct, got {twice} more than once")
    return resolve_tasks(spec)


def _check_held_out(trained: tuple[Task, ...], held_out: tuple[Task, ...]) -> None:
    """Refuse a held-out task that the stream trains (under any occurrence name)."""
    both = sorted({t.base_name for t in trained} & {t.base_name for t in held_out})
    if both:
        raise ValueError(
            f"held_out tasks must not be trained by the stream, but {both} are among its tasks"
        )


def make_stream(
    stream: str | Stream | None = "CW10",
    *,
    tasks: str | Task | Iterable[str | Task] | None = None,
    schedule: str | Mapping[str, Any] | Schedule | None = None,
    steps_per_task: int | None = None,
    one_hot: str | None = None,
    held_out: str | Task | Iterable[str | Task] | None = None,
) -> Stream:
    """A named stream (or a given one), with any of its parts replaced.

    Args:
        stream: A name in ``NAMED_STREAMS``, a ``Stream``, or None to build one from the other
            arguments (then ``tasks`` is required; the schedule defaults to ``sequential`` and
            ``steps_per_task`` to 1,000,000).
        tasks: Replacement tasks: a list name (``"CW10"``), a task name, or task names/``Task``s.
        schedule: Replacement schedule: a kind, ``{"kind": ..., **parameters}`` or a ``Schedule``.
        steps_per_task: Replacement steps per stage (an integer >= 1).
        one_hot: ``"task"`` or ``"stage"`` (see the module's docstring); None: the stream's own
            (``"stage"`` for CW20, ``"task"`` otherwise).
        held_out: Replacement held-out tasks (evaluated, never trained), given as ``tasks`` is;
            an empty sequence removes them; None: the stream's own (none for a named stream).

    Returns:
        The stream.

    Raises:
        ValueError: An unknown stream, task or schedule, a bad ``steps_per_task`` or
            ``one_hot``, or tasks, schedule or layout replaced on a ``Stream`` laid out by stage;
            a held-out task that the stream trains; the message names the allowed values.
    """
    if isinstance(stream, Stream):
        base: dict[str, Any] = {
            "tasks": stream.tasks,
            "schedule": stream.schedule,
            "steps_per_task": stream.steps_per_task,
            "one_hot": stream.one_hot,  # laying out a laid-out stream again changes nothing
            "held_out": stream.held_out,
        }
        name = stream.name
    elif stream is None:
        if tasks is None:
            raise ValueError("tasks must be given when stream is None")
        base = {"tasks": tasks, "schedule": "sequential", "steps_per_task": 1_000_000,
                "one_hot": "task", "held_out": ()}  # fmt: skip
        name = "custom"
    elif isinstance(stream, str) and stream in NAMED_STREAMS:
        base = {"one_hot": "task", "held_out": (), **NAMED_STREAMS[stream]}
        name = stream
    else:
        raise ValueError(f"stream must be one of {list(NAMED_STREAMS)} or a Stream, got {stream!r}")
    # Iterators are read once here (the parts are read more than once below).
    if tasks is not None and not isinstance(tasks, str | Task):
        tasks = tuple(tasks)
    if held_out is not None and not isinstance(held_out, str | Task):
        held_out = tuple(held_out)
    changed = {
        key: value
        for key, value in (
            ("tasks", tasks),
            ("schedule", schedule),
            ("steps_per_task", steps_per_task),
            ("one_hot", one_hot),
            ("held_out", held_out),
        )
        if value is not None
    }
    relaid = sorted(set(changed) - {"steps_per_task", "held_out"})
    if isinstance(stream, Stream) and stream.one_hot == "stage" and relaid:
        raise ValueError(
            f"stream {stream.name!r} is laid out by stage, so its {relaid} cannot be replaced; "
            "replace them on the named stream instead (make_stream('CW20', tasks=...))"
        )
    parts = {**base, **changed}
    held_out_ = _held_out_tasks(parts["held_out"])
    if stream is not None:  # the name says which parts differ from the named stream's
        differ = [key for key in sorted(changed) if not _same_part(key, changed[key], base[key])]
        parts_changed = [key for key in differ if key != "held_out"]
        if parts_changed:
            name = f"{name} ({', '.join(parts_changed)} changed)"
        if "held_out" in differ:  # named by the held-out tasks themselves, replacing the old ones
            if isinstance(stream, Stream) and stream.held_out:
                name = name.replace(f" (held out: {', '.join(stream.held_out_names)})", "")
            if held_out_:
                name = f"{name} (held out: {', '.join(t.name for t in held_out_)})"
    budget = parts["steps_per_task"]
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise ValueError(f"steps_per_task must be an integer >= 1, got {budget!r}")
    if parts["one_hot"] not in ONE_HOT_LAYOUTS:
        raise ValueError(
            f"one_hot must be one of {list(ONE_HOT_LAYOUTS)}, got {parts['one_hot']!r}"
        )
    tasks_, schedule_ = resolve_tasks(parts["tasks"]), make_schedule(parts["schedule"])
    _check_held_out(tasks_, held_out_)
    if parts["one_hot"] == "stage":
        tasks_, schedule_ = _by_stage(tasks_, schedule_), make_schedule("sequential")
    return Stream(name, tasks_, schedule_, int(budget), parts["one_hot"], held_out_)
