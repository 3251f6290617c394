"""Task catalogues: every task a stream can visit, by name, with its domain and split.

A :class:`Task` is a named, seeded environment factory. Three domains:

- ``metaworld``: the 50 Meta-World v3 tasks (``metaworld==3.1.1``) under the Continual World
  protocol (:mod:`memrl.streams.metaworld_protocol`), named by their v3 names (``"hammer-v3"``).
  Splits follow L2M (Schmied et al. 2023): the ten Continual World tasks (``CW10``) are
  ``finetune``, the other forty (``MT40``) are ``pretrain``.
- ``dm_control``: the 16 DeepMind Control Suite tasks L2M used, flattened to a fixed vector
  (:mod:`memrl.streams.dm_control_env`), named ``"domain-task"`` (``"cheetah-run"``): ten
  ``pretrain`` tasks and six ``finetune`` tasks, as in L2M.
- ``memrl``: memrl's own single-task memory environments (every id of ``memrl.envs.MEMORY``),
  named by their Gymnasium ids. No published split covers them: they are labelled ``heldout``
  (outside both L2M splits), which says nothing about whether a stream trains on them.

Named task lists (``TASK_LISTS``): ``MT50``, ``CW10``, ``MT40``, ``DMC-pretrain``,
``DMC-finetune``, ``DMC16``, ``L2M-pretrain`` (MT40 + DMC-pretrain), ``L2M-finetune`` (CW10 +
DMC-finetune) and ``MEMORY``. ``CW20`` is CW10 twice: it is a schedule over CW10 (see
:mod:`memrl.streams.stream`), and the constant ``CW20`` spells it out. A stream laid out by stage
(CW20) names a task's later stages ``"<name>#<k>"`` (:func:`occurrence`): the same environment
under a name of its own.

Nothing here imports Meta-World, MuJoCo or dm_control; environments are built by ``Task.make``.
"""

from __future__ import annotations

import collections
import difflib
import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import gymnasium
import numpy as np

from memrl.envs.suites import MEMORY

DOMAINS: tuple[str, ...] = ("metaworld", "dm_control", "memrl")
"""Where a task comes from."""

SPLITS: tuple[str, ...] = ("pretrain", "finetune", "heldout")
"""What a task is for: pre-training a shared policy, fine-tuning in a stream, held out."""

MT50: tuple[str, ...] = (
    "assembly-v3",
    "basketball-v3",
    "bin-picking-v3",
    "box-close-v3",
    "button-press-topdown-v3",
    "button-press-topdown-wall-v3",
    "button-press-v3",
    "button-press-wall-v3",
    "coffee-button-v3",
    "coffee-pull-v3",
    "coffee-push-v3",
    "dial-turn-v3",
    "disassemble-v3",
    "door-close-v3",
    "door-lock-v3",
    "door-open-v3",
    "door-unlock-v3",
    "hand-insert-v3",
    "drawer-close-v3",
    "drawer-open-v3",
    "faucet-open-v3",
    "faucet-close-v3",
    "hammer-v3",
    "handle-press-side-v3",
    "handle-press-v3",
    "handle-pull-side-v3",
    "handle-pull-v3",
    "lever-pull-v3",
    "peg-insert-side-v3",
    "pick-place-wall-v3",
    "pick-out-of-hole-v3",
    "reach-v3",
    "push-back-v3",
    "push-v3",
    "pick-place-v3",
    "plate-slide-v3",
    "plate-slide-side-v3",
    "plate-slide-back-v3",
    "plate-slide-back-side-v3",
    "peg-unplug-side-v3",
    "soccer-v3",
    "stick-push-v3",
    "stick-pull-v3",
    "push-wall-v3",
    "reach-wall-v3",
    "shelf-place-v3",
    "sweep-into-v3",
    "sweep-v3",
    "window-open-v3",
    "window-close-v3",
)
"""All 50 Meta-World v3 tasks, in Meta-World's own order (``metaworld.env_dict``)."""

CW10: tuple[str, ...] = (
    "hammer-v3",
    "push-wall-v3",
    "faucet-close-v3",
    "push-back-v3",
    "stick-pull-v3",
    "handle-press-side-v3",
    "push-v3",
    "shelf-place-v3",
    "window-close-v3",
    "peg-unplug-side-v3",
)
"""Continual World's ten tasks, in Continual World's order (the fine-tuning split)."""

CW20: tuple[str, ...] = CW10 + CW10
"""Continual World's CW20: CW10 twice, in the same order."""

MT40: tuple[str, ...] = tuple(name for name in MT50 if name not in CW10)
"""MT50 minus CW10: the pre-training split (L2M), in Meta-World's order."""

DMC_PRETRAIN: tuple[str, ...] = (
    "cartpole-balance",
    "finger-turn_easy",
    "finger-turn_hard",
    "fish-upright",
    "hopper-stand",
    "pendulum-swingup",
    "point_mass-easy",
    "reacher-hard",
    "walker-stand",
    "walker-run",
)
"""The ten dm_control tasks L2M pre-trained on."""

DMC_FINETUNE: tuple[str, ...] = (
    "ball_in_cup-catch",
    "cartpole-swingup",
    "cheetah-run",
    "finger-spin",
    "reacher-easy",
    "walker-walk",
)
"""The six dm_control tasks L2M fine-tuned on."""

DMC16: tuple[str, ...] = DMC_PRETRAIN + DMC_FINETUNE
"""All 16 dm_control tasks of L2M."""

MEMORY_TASKS: tuple[str, ...] = tuple(MEMORY)
"""memrl's own single-task memory environments, by Gymnasium id."""


@dataclass(frozen=True)
class Task:
    """A named, seeded environment factory.

    Attributes:
        name: Unique name: a Meta-World v3 name, ``"domain-task"`` for dm_control, or a memrl
            Gymnasium id.
        domain: One of ``DOMAINS``.
        split: One of ``SPLITS``.
        entry_point: ``"module:Class"`` of the environment (``metaworld`` and ``dm_control``), or
            the Gymnasium id to ``gymnasium.make`` (``memrl``).
        kwargs: Keyword arguments of the environment (read-only).
    """

    name: str
    domain: str
    split: str
    entry_point: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {list(DOMAINS)}, got {self.domain!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.domain,
                self.split,
                self.entry_point,
                repr(sorted(self.kwargs.items())),
            )
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # MappingProxyType does not pickle: rebuild from a plain dict.
        return (Task, (self.name, self.domain, self.split, self.entry_point, dict(self.kwargs)))

    @property
    def base_name(self) -> str:
        """The catalogue task this is (``"hammer-v3"`` for the position copy ``"hammer-v3#2"``)."""
        return base_task_name(self.name)

    def with_kwargs(self, **kwargs: Any) -> Task:
        """The same task with some environment keyword arguments changed.

        Args:
            **kwargs: Arguments to add or replace (e.g. ``episode_length=500``).

        Returns:
            A new ``Task`` with the same name, domain and split.
        """
        return Task(self.name, self.domain, self.split, self.entry_point, {**self.kwargs, **kwargs})

    def make(
        self, *, seed: int | None = None, render_mode: str | None = None, **kwargs: Any
    ) -> gymnasium.Env:
        """Build the task's environment.

        Args:
            seed: Seeds the environment's generator as ``reset(seed=seed)`` would, so the first
                ``reset()`` is reproducible (for dm_control it also seeds the task's own
                generator at construction). None: unseeded until the first seeded reset.
            render_mode: ``"rgb_array"``, ``"ansi"`` or None.
            **kwargs: Extra keyword arguments of the environment (override ``self.kwargs``).

        Returns:
            The environment (for ``memrl`` tasks, made by ``gymnasium.make`` with its wrappers).
        """
        arguments = {**self.kwargs, **kwargs}
        env: gymnasium.Env
        if self.domain == "memrl":
            env = gymnasium.make(self.entry_point, render_mode=render_mode, **arguments)
        else:
            if self.domain == "dm_control":
                arguments.setdefault("seed", seed)
            module_name, class_name = self.entry_point.split(":")
            env_class = getattr(importlib.import_module(module_name), class_name)
            env = env_class(render_mode=render_mode, **arguments)
        if seed is not None:
            env.unwrapped.np_random = np.random.Generator(np.random.PCG64(seed))
        return env


def _metaworld_task(name: str) -> Task:
    return Task(
        name=name,
        domain="metaworld",
        split="finetune" if name in CW10 else "pretrain",
        entry_point="memrl.streams.metaworld_protocol:MetaWorldTaskEnv",
        kwargs={"task": name},
    )


def _dm_control_task(name: str) -> Task:
    domain, task = name.split("-")
    return Task(
        name=name,
        domain="dm_control",
        split="finetune" if name in DMC_FINETUNE else "pretrain",
        entry_point="memrl.streams.dm_control_env:DMControlTaskEnv",
        kwargs={"domain": domain, "task": task},
    )


def _memory_task(env_id: str) -> Task:
    return Task(name=env_id, domain="memrl", split="heldout", entry_point=env_id)


CATALOGUE: Mapping[str, Task] = MappingProxyType(
    {
        **{name: _metaworld_task(name) for name in MT50},
        **{name: _dm_control_task(name) for name in DMC16},
        **{env_id: _memory_task(env_id) for env_id in MEMORY_TASKS},
    }
)
"""Every task, by name."""

TASK_LISTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "MT50": MT50,
        "CW10": CW10,
        "MT40": MT40,
        "DMC-pretrain": DMC_PRETRAIN,
        "DMC-finetune": DMC_FINETUNE,
        "DMC16": DMC16,
        "L2M-pretrain": MT40 + DMC_PRETRAIN,
        "L2M-finetune": CW10 + DMC_FINETUNE,
        "MEMORY": MEMORY_TASKS,
    }
)
"""Named lists of distinct task names (CW20 is a schedule over CW10, not a list)."""


POSITION_MARK = "#"
"""Separates a task's name from its occurrence in a stream laid out by stage: ``"hammer-v3#2"``."""


def base_task_name(name: str) -> str:
    """The catalogue name of a task name, without any occurrence suffix (``"hammer-v3#2"``)."""
    return name.split(POSITION_MARK, 1)[0]


def occurrence(task: str | Task, number: int) -> Task:
    """Occurrence ``number`` of a task as a task of its own (same environment, own name).

    A stream laid out by stage (Continual World's CW20) gives every stage its own one-hot and so
    its own output head; a task's second stage is then the task ``"<name>#2"``. The first
    occurrence is the task itself.

    Raises:
        ValueError: An unknown task, or ``number`` < 1.
    """
    base = get_task(task)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"an occurrence number must be an integer >= 1, got {number!r}")
    name = base.base_name if number == 1 else f"{base.base_name}{POSITION_MARK}{number}"
    if name == base.name:
        return base
    return Task(name, base.domain, base.split, base.entry_point, dict(base.kwargs))


def get_task(name: str | Task) -> Task:
    """The task called ``name`` (a ``Task`` is returned as is).

    ``"<name>#<k>"`` (k >= 2) is occurrence ``k`` of a catalogue task (:func:`occurrence`).

    Raises:
        ValueError: ``name`` is no task; the message names the closest ones and every domain's
            names.
    """
    if isinstance(name, Task):
        return name
    if isinstance(name, str) and name in CATALOGUE:
        return CATALOGUE[name]
    if isinstance(name, str) and POSITION_MARK in name:
        base, number = name.split(POSITION_MARK, 1)
        if base in CATALOGUE and number.isdigit() and int(number) >= 2:
            return occurrence(base, int(number))
    close = difflib.get_close_matches(str(name), list(CATALOGUE), n=3)
    hint = f" Did you mean {close}?" if close else ""
    by_domain = "; ".join(
        f"{domain}: {[t.name for t in CATALOGUE.values() if t.domain == domain]}"
        for domain in DOMAINS
    )
    raise ValueError(f"unknown task {name!r}.{hint} Allowed task names are ({by_domain})")


def resolve_tasks(spec: str | Task | Iterable[str | Task]) -> tuple[Task, ...]:
    """Tasks from a list name (``"CW10"``), one task, or a sequence of names or ``Task``s.

    A list name inside a sequence stands for its tasks, so ``["MT40"]`` is MT40 and
    ``["CW10", "reach-v3"]`` is CW10's tasks and then reach-v3.

    Raises:
        ValueError: An unknown list or task name, an empty list, or a task given twice (a
            stream's tasks are distinct; repetition is the schedule's job).
    """
    if isinstance(spec, str) and spec in TASK_LISTS:
        names: Sequence[str | Task] = TASK_LISTS[spec]
    elif isinstance(spec, str | Task):
        if isinstance(spec, str) and spec not in CATALOGUE:
            close = difflib.get_close_matches(spec, [*TASK_LISTS, *CATALOGUE], n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise ValueError(
                f"tasks must be a list name {list(TASK_LISTS)}, a task name or a sequence of "
                f"task names, got {spec!r}.{hint} (see memrl.streams.CATALOGUE for task names)"
            )
        names = [spec]
    else:
        names = []
        for item in spec:
            if isinstance(item, str) and item in TASK_LISTS:
                names.extend(TASK_LISTS[item])
            else:
                names.append(item)
    tasks = tuple(get_task(name) for name in names)
    if not tasks:
        raise ValueError("tasks must name at least one task, got an empty list")
    counts = collections.Counter(t.name for t in tasks)
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(
            f"tasks must be distinct, got {repeated} more than once; repeat tasks with a "
            "schedule instead (e.g. schedule='repeat' for CW20)"
        )
    return tasks


def tasks_of(domain: str | None = None, split: str | None = None) -> tuple[Task, ...]:
    """Every task of a domain and/or split, in catalogue order.

    Raises:
        ValueError: An unknown domain or split.
    """
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"domain must be one of {list(DOMAINS)} or None, got {domain!r}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)} or None, got {split!r}")
    return tuple(
        t
        for t in CATALOGUE.values()
        if (domain is None or t.domain == domain) and (split is None or t.split == split)
    )
