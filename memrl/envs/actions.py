"""The action contract every memrl env keeps: an action outside its space is a ``ValueError``.

One check per kind of space, cheap enough for the step budgets of DESIGN.md (a few
hundred nanoseconds for a single action, a few numpy calls per batch):

- ``Discrete(n)``: an integer ``start <= a < start + n``. Python ints, numpy integer scalars and
  0-d integer arrays are accepted (SB3 and Gymnasium pass those). Floats are rejected, even
  integral ones such as ``2.0``: a float where an index is meant is a bug upstream (it used to
  score ``cue + 0.5`` as the cue). Bools are rejected too: ``True`` is not an action index, and a
  mask or done flag passed by mistake would otherwise silently mean action 1 (numpy's bool is
  not an integer type, and Gymnasium's ``Discrete.contains`` already refuses ``np.bool_``; we
  refuse Python's ``bool`` as well, for one rule).
- ``Box``: a numeric (integer or float, not bool) array of exactly the space's shape, with no
  NaN or infinity. Finite values outside the bounds are accepted and clipped by the simulator
  (Gymnasium's convention that an env may clip; Meta-World clips to [-1, 1] in its ``step``,
  MuJoCo clamps dm_control's controls to their ``ctrlrange``); a NaN would instead reach the
  physics and corrupt the episode silently.
- Batches of ``Discrete`` actions (memrl's batched envs): an integer array of shape
  ``[num_envs]`` whose every entry is in range; any other shape (``[N, 1]``, a scalar) is refused
  rather than broadcast.

Messages name the space and the offending value, e.g. ``action must be in Discrete(8), got 99``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from gymnasium import spaces

_INTEGER_KINDS = "iu"
_NUMBER_KINDS = "iuf"


def check_discrete_action(action: Any, n: int, start: int = 0) -> int:
    """The action as a Python int, if it is in ``Discrete(n, start=start)``.

    Takes the space's size as Python ints rather than the space: comparing with the space's
    numpy attributes would cost more than the rest of the check.

    Args:
        action: A Python int, a numpy integer scalar or a 0-d integer array (anything with
            ``__index__`` but a bool).
        n: Number of actions.
        start: The first action.

    Returns:
        The action as a Python int.

    Raises:
        ValueError: ``action`` is not an integer (floats and bools included) or is out of range.
    """
    if type(action) is not int:
        try:
            if type(action) is bool:  # a subclass of int, but not an action index
                raise TypeError
            action = operator.index(action)
        except TypeError:
            space = spaces.Discrete(n, start=start)
            raise ValueError(
                f"action must be an integer in {space}, got {action!r} ({type(action).__name__})"
            ) from None
    if not start <= action < start + n:
        raise ValueError(f"action must be in {spaces.Discrete(n, start=start)}, got {action}")
    return action


def check_box_action(action: Any, space: spaces.Box) -> np.ndarray:
    """The action as a numpy array, if it has the space's shape and only finite numbers.

    Finite values outside the bounds are accepted: the simulator clips them (see the module
    docstring).

    Args:
        action: Anything ``np.asarray`` turns into a numeric array (a list of floats too).
        space: The env's ``Box`` action space.

    Returns:
        ``np.asarray(action)``.

    Raises:
        ValueError: The shape differs from the space's, the dtype is not numeric (bools
            included), or a value is NaN or infinite.
    """
    array = np.asarray(action)
    if array.shape != space.shape or array.dtype.kind not in _NUMBER_KINDS:
        raise ValueError(
            f"action must be a numeric array of shape {space.shape} in {space}, got {action!r} "
            f"(shape {array.shape}, dtype {array.dtype})"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"action must be finite (no NaN or inf) in {space}, got {action!r}")
    return array


def check_action(action: Any, space: spaces.Space) -> Any:
    """``action`` checked against any space (``Discrete``, ``Box``, others by ``contains``).

    For envs whose action space is only known at run time (``memrl.streams.ContinualEnv``).

    Raises:
        ValueError: ``action`` is not in ``space``.
    """
    if isinstance(space, spaces.Discrete):
        return check_discrete_action(action, int(space.n), int(space.start))
    if isinstance(space, spaces.Box):
        return check_box_action(action, space)
    if not space.contains(action):
        raise ValueError(f"action must be in {space}, got {action!r}")
    return action


def check_batched_discrete_actions(
    actions: Any, space: spaces.Discrete, num_envs: int
) -> np.ndarray:
    """A vector env's actions as one int64 array, if every one of them is in ``space``.

    Args:
        actions: One action per sub-environment: an integer array (or list) of shape
            ``[num_envs]``.
        space: The action space of one sub-environment.
        num_envs: Number of sub-environments.

    Returns:
        The actions as an int64 array of shape ``[num_envs]``.

    Raises:
        ValueError: The shape is not ``[num_envs]`` (no broadcasting), the dtype is not an
            integer one (floats and bools included), or an action is out of range.
    """
    given = np.asarray(actions)
    if given.shape != (num_envs,) or given.dtype.kind not in _INTEGER_KINDS:
        raise ValueError(
            f"actions must be an integer array of shape ({num_envs},), one action in {space} "
            f"per sub-environment, got {actions!r} (shape {given.shape}, dtype {given.dtype})"
        )
    array = given if given.dtype == np.int64 else given.astype(np.int64)
    offset = array - space.start if space.start else array
    if offset.view(np.uint64).max() >= space.n:  # negative offsets wrap to huge
        row = int(np.flatnonzero((offset < 0) | (offset >= space.n))[0])
        raise ValueError(f"actions must be in {space}, got {given[row]} for sub-environment {row}")
    return array
