"""One observation and action layout shared by every task of a stream.

A stream's tasks may have different spaces (Meta-World's 39 floats, a dm_control task's 5 to 24,
a memory env's grid). :class:`StreamLayout` maps them into one pair of spaces:

- Observations. If every task's observation space is a 1-D ``Box``, the stream's is a 1-D
  ``Box`` as long as the longest: a shorter observation is padded with zeros at the end. Bounds
  are the element-wise union (a padded position counts as ``[0, 0]`` for the task that pads it);
  the dtype is numpy's common type of all tasks' dtypes. Otherwise every task must have the same
  observation space, which is passed through. With ``task_one_hot=True`` a one-hot of the
  task's index in the stream's task list is appended: to the vector for ``Box`` layouts (the
  last ``num_tasks`` entries, bounds ``[0, 1]``), as a ``"task"`` key for ``Dict`` layouts, and
  as ``Dict({"observation": ..., "task": ...})`` for any other space.
- Actions. If every task has the same action space it is passed through. If they are all 1-D
  ``Box`` es, the stream's is a ``Box`` as wide as the widest with the element-wise union of the
  bounds; a task receives the first ``d`` components of the action (its own dimension) and
  ignores the rest. Anything else (e.g. ``Discrete`` spaces of different sizes) raises
  ``ValueError``: there is no faithful way to give a task an action it does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from memrl.streams.catalogue import Task


@dataclass(frozen=True)
class TaskSpaces:
    """The spaces and frame rate of one task's environment.

    Attributes:
        observation_space: The task's observation space.
        action_space: The task's action space.
        render_fps: ``metadata["render_fps"]`` of the task's environment (None if absent).
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    render_fps: int | None


_SPACES_CACHE: dict[Task, TaskSpaces] = {}


def task_spaces(task: Task) -> TaskSpaces:
    """The spaces of ``task``'s environment (built once per process, then cached).

    Args:
        task: The task.

    Returns:
        Its observation and action spaces and frame rate.
    """
    cached = _SPACES_CACHE.get(task)
    if cached is None:
        env = task.make()
        try:
            cached = TaskSpaces(
                env.observation_space, env.action_space, env.metadata.get("render_fps")
            )
        finally:
            env.close()
        _SPACES_CACHE[task] = cached
    return cached


def _is_vector_box(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 1


def _union_box(boxes: Sequence[spaces.Box], extra: int = 0) -> spaces.Box:
    """A 1-D Box as long as the longest of ``boxes`` (+ ``extra`` one-hot entries in [0, 1])."""
    size = max(box.shape[0] for box in boxes)
    dtype = np.result_type(*(box.dtype for box in boxes))
    low = np.full(size + extra, np.inf)
    high = np.full(size + extra, -np.inf)
    for box in boxes:
        n = box.shape[0]
        low[:n] = np.minimum(low[:n], box.low)
        high[:n] = np.maximum(high[:n], box.high)
        low[n:size] = np.minimum(low[n:size], 0.0)
        high[n:size] = np.maximum(high[n:size], 0.0)
    low[size:], high[size:] = 0.0, 1.0
    return spaces.Box(low.astype(dtype), high.astype(dtype), dtype=dtype)


def _describe(names: Sequence[str], items: Sequence[spaces.Space]) -> str:
    return "; ".join(f"{name}: {space}" for name, space in zip(names, items, strict=True))


class StreamLayout:
    """Maps each task's observations and actions to and from the stream's shared spaces.

    Args:
        task_names: The stream's distinct tasks (the one-hot order).
        task_spaces: Their spaces, in the same order.
        task_one_hot: Append the task's one-hot to every observation.

    Raises:
        ValueError: The tasks' spaces cannot share a layout (see the module docstring).
    """

    def __init__(
        self,
        task_names: Sequence[str],
        task_spaces: Sequence[TaskSpaces],
        task_one_hot: bool = False,
    ) -> None:
        self.task_names = tuple(task_names)
        self.num_tasks = len(self.task_names)
        self.task_one_hot = bool(task_one_hot)
        observation_spaces = [s.observation_space for s in task_spaces]
        action_spaces = [s.action_space for s in task_spaces]
        self.observation_space = self._observation_layout(observation_spaces)
        self.action_space = self._action_layout(action_spaces)

    # -- observations ----------------------------------------------------------------------------

    def _observation_layout(self, observation_spaces: list[spaces.Space]) -> spaces.Space:
        n = self.num_tasks
        # Per task: None (pass through unchanged) or a function of the observation.
        self._observe: list[Any] = [None] * n
        if all(_is_vector_box(space) for space in observation_spaces):
            boxes: list[spaces.Box] = observation_spaces  # type: ignore[assignment]
            extra = n if self.task_one_hot else 0
            union = _union_box(boxes, extra)
            if not extra and all(space == union for space in boxes):
                return boxes[0]
            size = union.shape[0] - extra
            for task_id, box in enumerate(boxes):
                if not extra and box.shape[0] == size and box.dtype == union.dtype:
                    continue  # already in the layout (the union bounds contain it)
                template = np.zeros(union.shape, dtype=union.dtype)
                if extra:
                    template[size + task_id] = 1
                self._observe[task_id] = _Padder(template, box.shape[0])
            return union
        first = observation_spaces[0]
        if any(space != first for space in observation_spaces):
            raise ValueError(
                "observation spaces must be 1-D Boxes (padded to one length) or all equal, got "
                + _describe(self.task_names, observation_spaces)
            )
        if not self.task_one_hot:
            return first
        one_hot = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        codes = np.eye(n, dtype=np.float32)
        if isinstance(first, spaces.Dict):
            if "task" in first.spaces:
                raise ValueError("task_one_hot=True needs a free 'task' key in Dict observations")
            for task_id in range(n):
                self._observe[task_id] = _DictOneHot(codes[task_id])
            return spaces.Dict({**first.spaces, "task": one_hot})
        for task_id in range(n):
            self._observe[task_id] = _WrapOneHot(codes[task_id])
        return spaces.Dict({"observation": first, "task": one_hot})

    def observation(self, task_id: int, observation: Any) -> Any:
        """Task ``task_id``'s observation in the stream's layout."""
        convert = self._observe[task_id]
        return observation if convert is None else convert(observation)

    def one_hot(self, task_id: int) -> np.ndarray:
        """The one-hot code of task ``task_id`` (float32)."""
        code = np.zeros(self.num_tasks, dtype=np.float32)
        code[task_id] = 1.0
        return code

    # -- actions ---------------------------------------------------------------------------------

    def _action_layout(self, action_spaces: list[spaces.Space]) -> spaces.Space:
        self._action_sizes: list[int | None] = [None] * self.num_tasks
        first = action_spaces[0]
        if all(space == first for space in action_spaces):
            return first
        if all(_is_vector_box(space) for space in action_spaces):
            boxes: list[spaces.Box] = action_spaces  # type: ignore[assignment]
            union = _union_box(boxes)
            for task_id, box in enumerate(boxes):
                if box.shape[0] < union.shape[0]:
                    self._action_sizes[task_id] = box.shape[0]
            return union
        raise ValueError(
            "action spaces must agree, or all be 1-D Boxes (padded to the widest), got "
            + _describe(self.task_names, action_spaces)
        )

    def action(self, task_id: int, action: Any) -> Any:
        """The part of a stream action that task ``task_id`` takes (its first ``d`` components)."""
        size = self._action_sizes[task_id]
        return action if size is None else np.asarray(action)[:size]

    def pads_actions(self, task_id: int) -> bool:
        """Whether task ``task_id`` takes only a prefix of the stream's actions."""
        return self._action_sizes[task_id] is not None


class _Padder:
    """Copy an observation into a template (zeros, plus the task's one-hot)."""

    def __init__(self, template: np.ndarray, size: int) -> None:
        self.template = template
        self.size = size

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        out = self.template.copy()
        out[: self.size] = observation
        return out


class _DictOneHot:
    def __init__(self, code: np.ndarray) -> None:
        self.code = code

    def __call__(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, "task": self.code.copy()}


class _WrapOneHot:
    def __init__(self, code: np.ndarray) -> None:
        self.code = code

    def __call__(self, observation: Any) -> dict[str, Any]:
        return {"observation": observation, "task": self.code.copy()}
