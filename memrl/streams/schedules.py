"""Schedules: the order in which a stream's tasks are trained, as a sequence of stages.

A schedule turns ``num_tasks`` distinct tasks into stages; each stage trains one task (or, for
``scole``, a set of tasks) for ``steps_per_task`` environment steps. Every schedule is a frozen,
seeded dataclass: the same parameters give the same stages, in any process.

| kind         | stages                                                          | after         |
|--------------|-----------------------------------------------------------------|---------------|
| `sequential` | each task once, in order (or a seeded permutation)              | CW10          |
| `repeat`     | the whole sequence `times` times, same order each time          | CW20          |
| `cyclic`     | `cycles` cycles, each visiting every task once in a fresh order | CORA-style    |
| `power_law`  | `num_stages` stages; a task recurs with a probability that      | Anderson &    |
|              | decays as a power of the time since it was last trained         | Schooler 1991 |
| `scole`      | `num_stages` stages, each training a random subset of k tasks   | SCoLe         |

``Schedule.timeline(task_names, steps_per_task)`` gives a :class:`Timeline`, which prints as a
table (``str``) or as a task-by-stage chart (``Timeline.chart()``).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class Stage:
    """One stage of a timeline: which tasks are trained, over which stream steps.

    Attributes:
        index: Position in the timeline, from 0.
        task_ids: Indices of the trained tasks in the stream's task list (one for every kind but
            ``scole``).
        tasks: Their names.
        start: First stream step of the stage (steps are counted from 0 over the whole stream).
        steps: Number of environment steps the stage lasts.
    """

    index: int
    task_ids: tuple[int, ...]
    tasks: tuple[str, ...]
    start: int
    steps: int

    @property
    def end(self) -> int:
        """The first stream step after the stage."""
        return self.start + self.steps


@dataclass(frozen=True)
class Timeline:
    """A schedule laid out in time over named tasks.

    Attributes:
        stages: The stages, in order, back to back.
        task_names: The stream's distinct tasks; ``Stage.task_ids`` index into it.
        schedule: The schedule's description (``str(schedule)``).
    """

    stages: tuple[Stage, ...]
    task_names: tuple[str, ...]
    schedule: str = ""

    @property
    def total_steps(self) -> int:
        """Steps of the whole stream."""
        return self.stages[-1].end if self.stages else 0

    @functools.cached_property
    def _starts(self) -> list[int]:
        return [stage.start for stage in self.stages]

    def stage_at(self, step: int) -> Stage:
        """The stage that stream step ``step`` falls in (the last stage after the end)."""
        return self.stages[max(bisect.bisect_right(self._starts, step) - 1, 0)]

    def visits(self) -> dict[str, int]:
        """How many stages train each task."""
        counts = dict.fromkeys(self.task_names, 0)
        for stage in self.stages:
            for name in stage.tasks:
                counts[name] += 1
        return counts

    def __str__(self) -> str:
        return self.format()

    def format(self, max_stages: int | None = None) -> str:
        """The timeline as a table: one line per stage with its steps and tasks.

        Args:
            max_stages: Print at most this many stages (first and last halves); all if None.

        Returns:
            The table, with a summary line.
        """
        width = len(f"{self.total_steps:,}")
        lines = [f"{'stage':>5}  {'steps':<{2 * width + 3}}  tasks"]
        shown: list[Stage | None] = list(self.stages)
        if max_stages is not None and len(self.stages) > max_stages:
            half = max(max_stages // 2, 1)
            shown = [*self.stages[:half], None, *self.stages[-half:]]
        for stage in shown:
            if stage is None:
                lines.append(f"{'...':>5}")
                continue
            span = f"{stage.start:>{width},} - {stage.end:<{width},}"
            lines.append(f"{stage.index:>5}  {span}  {' + '.join(stage.tasks)}")
        lines.append(
            f"{len(self.stages)} stages, {self.total_steps:,} steps, {len(self.task_names)} tasks"
            + (f"; {self.schedule}" if self.schedule else "")
        )
        return "\n".join(lines)

    def chart(self, width: int = 100) -> str:
        """A task-by-stage chart: one row per task, ``#`` in the columns of stages that train it.

        Args:
            width: Stages per block of rows; longer timelines wrap into several blocks.

        Returns:
            The chart.
        """
        _check_int("width", width, 1)
        label = max(len(name) for name in self.task_names)
        blocks = []
        for first in range(0, len(self.stages), width):
            stages = self.stages[first : first + width]
            rows = [f"{'stage':>{label}}  {first}.."]
            for task_id, name in enumerate(self.task_names):
                cells = "".join("#" if task_id in s.task_ids else "." for s in stages)
                rows.append(f"{name:>{label}}  {cells}")
            blocks.append("\n".join(rows))
        return "\n\n".join(blocks)


@dataclass(frozen=True)
class Schedule(ABC):
    """The order in which tasks are trained: a seeded list of stages.

    Attributes:
        seed: Seed of every random choice the schedule makes.
    """

    kind: ClassVar[str]
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0)

    @abstractmethod
    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:
        """The task indices trained at each stage.

        Args:
            num_tasks: Number of distinct tasks (indices ``0 .. num_tasks - 1``).

        Returns:
            One tuple of task indices per stage.
        """

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def timeline(self, task_names: Sequence[str], steps_per_task: int = 1) -> Timeline:
        """Lay the stages out in time over named tasks.

        Args:
            task_names: The stream's distinct tasks.
            steps_per_task: Environment steps of every stage.

        Returns:
            The timeline.
        """
        _check_int("steps_per_task", steps_per_task, 1)
        names = tuple(task_names)
        stages = []
        for index, task_ids in enumerate(self.stages(len(names))):
            stages.append(
                Stage(
                    index=index,
                    task_ids=task_ids,
                    tasks=tuple(names[i] for i in task_ids),
                    start=index * steps_per_task,
                    steps=steps_per_task,
                )
            )
        return Timeline(tuple(stages), names, str(self))

    def to_dict(self) -> dict[str, Any]:
        """The schedule as plain data, ``{"kind": ..., **parameters}`` (for ``make_schedule``)."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def __str__(self) -> str:
        parameters = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items())
        return f"{self.kind}({parameters})"


def _singletons(order: Iterable[int]) -> list[tuple[int, ...]]:
    """One single-task stage per task index of ``order``."""
    return [(i,) for i in order]


def _check_num_tasks(num_tasks: int) -> None:
    _check_int("num_tasks", num_tasks, 1)


@dataclass(frozen=True)
class Sequential(Schedule):
    """Each task once, in the given order (Continual World's CW10), or a seeded permutation.

    Attributes:
        shuffle: Train the tasks in a seeded random order instead of the given one.
    """

    kind: ClassVar[str] = "sequential"
    shuffle: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bool("shuffle", self.shuffle)

    def order(self, num_tasks: int) -> list[int]:
        """The order of the tasks."""
        _check_num_tasks(num_tasks)
        if self.shuffle:
            return [int(i) for i in self._rng().permutation(num_tasks)]
        return list(range(num_tasks))

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:  # noqa: D102
        return _singletons(self.order(num_tasks))


@dataclass(frozen=True)
class Repeat(Sequential):
    """The whole sequence ``times`` times, in the same order each time (CW20 = CW10 twice).

    Attributes:
        times: Number of passes over the tasks.
    """

    kind: ClassVar[str] = "repeat"
    times: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("times", self.times, 1)

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:  # noqa: D102
        return _singletons(self.order(num_tasks)) * self.times


@dataclass(frozen=True)
class Cyclic(Schedule):
    """``cycles`` cycles; each visits every task once, in a fresh seeded order.

    With ``reshuffle=True`` (default) each cycle's order is a uniformly random permutation, drawn
    again (rejection sampling) if it would start with the task that ended the previous cycle, so
    no task is trained twice in a row. With ``reshuffle=False`` every cycle keeps the given
    order (the same stages as ``repeat``).

    Attributes:
        cycles: Number of cycles.
        reshuffle: Draw a new order for every cycle.
    """

    kind: ClassVar[str] = "cyclic"
    cycles: int = 3
    reshuffle: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("cycles", self.cycles, 1)
        _check_bool("reshuffle", self.reshuffle)

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:  # noqa: D102
        _check_num_tasks(num_tasks)
        if not self.reshuffle:
            return _singletons(range(num_tasks)) * self.cycles
        rng = self._rng()
        order: list[int] = []
        for _ in range(self.cycles):
            cycle = [int(i) for i in rng.permutation(num_tasks)]
            while num_tasks > 1 and order and cycle[0] == order[-1]:
                cycle = [int(i) for i in rng.permutation(num_tasks)]
            order += cycle
        return _singletons(order)


MAX_ALPHA = 1000.0
"""Largest power-law exponent: the largest weight, ``2 ** -alpha``, stays a normal float."""


def power_law_weights(gaps: np.ndarray, alpha: float) -> np.ndarray:
    """Unnormalised recurrence weights ``(1 + gap) ** -alpha`` (see :class:`PowerLaw`)."""
    return (1.0 + np.asarray(gaps, dtype=np.float64)) ** -alpha


@dataclass(frozen=True)
class PowerLaw(Schedule):
    """Tasks recur with a probability that decays as a power of the time since last trained.

    After the environmental statistics of Anderson & Schooler (1991), which the "naturalistic
    power-law environments" study of continual learning adopts: the odds that something is
    needed again fall as a power of the time since it was last needed. Precisely, at stage
    ``t = 0, 1, ...`` task ``i`` is trained with probability

        P(i at t) = w_i(t) / sum_j w_j(t),   w_i(t) = (1 + t - last_i) ** -alpha,

    where ``last_i`` is the last stage before ``t`` that trained task ``i``. A task never trained
    yet counts as last trained at stage ``-1`` (as if every task had been seen once just before
    the stream): all tasks are equally likely at ``t = 0``, and an unseen task becomes rarer with
    time just as a long-unseen one does. ``gap = t - last_i >= 1``; a gap of 1 means the task
    trained at the previous stage, so a task can continue for several stages (recency makes
    that the likeliest event). ``alpha = 0`` is uniform sampling with replacement.

    The conditional law is the definition; it is what the tests check: among all (stage, task)
    pairs with gap ``g``, the rate of re-occurrence, corrected for the normaliser, falls as
    ``(1 + g) ** -alpha`` (a straight line of slope ``-alpha`` on log-log axes). The marginal
    distribution of gaps between consecutive visits is *not* a pure power law (it also carries
    the probability of not having recurred earlier).

    Attributes:
        num_stages: Number of stages.
        alpha: Exponent of the decay (>= 0).
    """

    kind: ClassVar[str] = "power_law"
    num_stages: int = 200
    alpha: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("num_stages", self.num_stages, 1)
        if (
            isinstance(self.alpha, bool)
            or not isinstance(self.alpha, int | float | np.number)
            or not math.isfinite(self.alpha)
            or not 0 <= self.alpha <= MAX_ALPHA
        ):
            raise ValueError(
                f"alpha must be a number in [0, {MAX_ALPHA}], got {self.alpha!r} (beyond "
                f"{MAX_ALPHA} the weights underflow: the law is then 'repeat the last task')"
            )

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:  # noqa: D102
        _check_num_tasks(num_tasks)
        rng = self._rng()
        last_seen = np.full(num_tasks, -1, dtype=np.int64)
        order: list[tuple[int, ...]] = []
        for t in range(self.num_stages):
            weights = power_law_weights(t - last_seen, float(self.alpha))
            task = int(rng.choice(num_tasks, p=weights / weights.sum()))
            last_seen[task] = t
            order.append((task,))
        return order


@dataclass(frozen=True)
class Scole(Schedule):
    """Long sequences of stages, each training a sparse random subset of the tasks (SCoLe).

    After SCoLe (Lesort et al. 2022, "Scaling the number of tasks in continual learning"): every
    stage trains ``tasks_per_stage`` of the ``num_tasks`` tasks, drawn uniformly without
    replacement within the stage and independently across stages, so tasks re-occur at random
    over a long sequence. (In :class:`memrl.streams.ContinualEnv` each episode of a stage is one
    of its tasks, drawn uniformly.) Task indices within a stage are sorted.

    Attributes:
        num_stages: Number of stages.
        tasks_per_stage: Tasks trained together in a stage (k, 1 <= k <= num_tasks).
    """

    kind: ClassVar[str] = "scole"
    num_stages: int = 500
    tasks_per_stage: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("num_stages", self.num_stages, 1)
        _check_int("tasks_per_stage", self.tasks_per_stage, 1)

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:  # noqa: D102
        _check_num_tasks(num_tasks)
        if self.tasks_per_stage > num_tasks:
            raise ValueError(
                f"tasks_per_stage must be 1..{num_tasks} (the number of tasks), "
                f"got {self.tasks_per_stage}"
            )
        rng = self._rng()
        return [
            tuple(
                sorted(int(i) for i in rng.choice(num_tasks, self.tasks_per_stage, replace=False))
            )
            for _ in range(self.num_stages)
        ]


SCHEDULES: dict[str, type[Schedule]] = {
    cls.kind: cls for cls in (Sequential, Repeat, Cyclic, PowerLaw, Scole)
}
"""Schedule classes by kind."""


def make_schedule(spec: str | Mapping[str, Any] | Schedule) -> Schedule:
    """A schedule from a kind, a dict of a kind and parameters, or a ``Schedule``.

    ``"power_law"`` gives the kind's default parameters, ``{"kind": "power_law", "alpha": 0.5}``
    replaces some, and a ``Schedule`` is returned as is.

    Raises:
        ValueError: An unknown kind or parameter, or a bad parameter value; the message names the
            allowed ones.
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        kind, parameters = spec, {}
    elif isinstance(spec, Mapping):
        parameters = dict(spec)
        kind = parameters.pop("kind", None)
    else:
        raise ValueError(
            f"schedule must be a kind {list(SCHEDULES)}, a dict with a 'kind' key or a Schedule, "
            f"got {spec!r}"
        )
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {kind!r}")
    cls = SCHEDULES[kind]
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} schedule parameters must be among {allowed}, got {unknown}")
    return cls(**parameters)
