"""The shared state and action layout of the multi-domain Decision Transformer.

Every task of the L2M pre-training and fine-tuning lists (``TASK_LISTS["L2M-pretrain"]`` and
``TASK_LISTS["L2M-finetune"]``: MT40 and CW10 from Meta-World, sixteen dm_control tasks) maps into
one layout, as in L2M (Schmied et al. 2023):

- States: zero-padded at the end to :data:`STATE_DIM`, the widest observation over both lists
  (Meta-World's 39 floats; the widest dm_control task, walker, has 24). L2M pads to 204 because
  its dm_control observations were wider; memrl's flattened dm_control tasks are not.
- Actions: zero-padded at the end to :data:`ACTION_DIM` (walker and cheetah have 6). A task's
  *action mask* marks its real dimensions; the loss sees only those, and inference returns only
  those.

States enter the model in this layout, unnormalised; the model normalises them with its own
per-domain statistics (its ``state_mean`` and ``state_std`` buffers, computed from the
pretraining data by :func:`memrl.agents.pretrained.dataset.state_statistics`).
The constants are recorded here so that importing the model builds no environment;
:func:`layout_widths` recomputes them (it builds all 66 environments, about half a minute).
"""

from __future__ import annotations

import numpy as np

STATE_DIM: int = 39
"""Width of the shared state layout: the widest observation over the L2M task lists."""

ACTION_DIM: int = 6
"""Width of the shared action layout: the widest action over the L2M task lists."""

LAYOUT_TASK_LISTS: tuple[str, ...] = ("L2M-pretrain", "L2M-finetune")
"""The task lists (``memrl.streams.catalogue.TASK_LISTS``) whose tasks share the layout."""


def layout_widths() -> tuple[int, int]:
    """Recompute the layout's widths from the environments of :data:`LAYOUT_TASK_LISTS`.

    Builds every task's environment once (Meta-World and dm_control are imported here, not at
    module import).

    Returns:
        ``(state_dim, action_dim)``: the widest 1-D observation and action over the tasks.
    """
    from memrl.streams.catalogue import TASK_LISTS, get_task
    from memrl.streams.layout import task_spaces

    state_dim, action_dim = 0, 0
    for list_name in LAYOUT_TASK_LISTS:
        for name in TASK_LISTS[list_name]:
            task = task_spaces(get_task(name))
            observation_shape = task.observation_space.shape or ()
            action_shape = task.action_space.shape or ()
            if len(observation_shape) != 1 or len(action_shape) != 1:
                raise ValueError(
                    f"task {name} must have 1-D observations and actions, got shapes "
                    f"{observation_shape} and {action_shape}"
                )
            state_dim = max(state_dim, observation_shape[0])
            action_dim = max(action_dim, action_shape[0])
    return state_dim, action_dim


def pad_states(states: np.ndarray, state_dim: int = STATE_DIM) -> np.ndarray:
    """Zero-pad a task's states (last axis) into the shared layout, as float32.

    Args:
        states: ``[..., d]`` observations with ``d <= state_dim``.
        state_dim: The layout's width.

    Returns:
        ``[..., state_dim]`` float32 array.

    Raises:
        ValueError: ``d`` is wider than the layout.
    """
    states = np.asarray(states)
    size = states.shape[-1]
    if size > state_dim:
        raise ValueError(f"states have {size} features, the layout allows 1..{state_dim}")
    out = np.zeros((*states.shape[:-1], state_dim), dtype=np.float32)
    out[..., :size] = states
    return out


def pad_actions(actions: np.ndarray, action_dim: int = ACTION_DIM) -> np.ndarray:
    """Zero-pad a task's actions (last axis) into the shared layout, as float32.

    Args:
        actions: ``[..., d]`` actions with ``d <= action_dim``.
        action_dim: The layout's width.

    Returns:
        ``[..., action_dim]`` float32 array.

    Raises:
        ValueError: ``d`` is wider than the layout.
    """
    actions = np.asarray(actions)
    size = actions.shape[-1]
    if size > action_dim:
        raise ValueError(f"actions have {size} dimensions, the layout allows 1..{action_dim}")
    out = np.zeros((*actions.shape[:-1], action_dim), dtype=np.float32)
    out[..., :size] = actions
    return out


def action_mask(task_action_dim: int, action_dim: int = ACTION_DIM) -> np.ndarray:
    """The mask of a task's real action dimensions in the shared layout.

    Args:
        task_action_dim: The task's own action dimension.
        action_dim: The layout's width.

    Returns:
        ``[action_dim]`` bool array, True on the first ``task_action_dim`` entries.

    Raises:
        ValueError: ``task_action_dim`` is not in ``1..action_dim``.
    """
    if not 1 <= task_action_dim <= action_dim:
        raise ValueError(f"task_action_dim must be 1..{action_dim}, got {task_action_dim}")
    mask = np.zeros(action_dim, dtype=bool)
    mask[:task_action_dim] = True
    return mask
