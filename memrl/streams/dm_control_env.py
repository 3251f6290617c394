"""DeepMind Control Suite tasks as Gymnasium environments with a flat observation vector.

memrl's own small wrapper around ``dm_control.suite.load(domain, task, task_kwargs={"random":
seed})`` (``dm-control==1.0.28``): the observation dict is flattened in a fixed key order, the
action spec becomes a ``Box``, and the task's own generator is reseeded by ``reset(seed=...)``
(dm_control's environments take their seed only at construction).

dm_control and MuJoCo are imported when an environment is built, not when this module is.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from memrl.envs.actions import check_box_action
from memrl.envs.metaworld import OffscreenRenderer, gl_backend

EPISODE_LENGTH = 1000
"""Control steps per episode in every dm_control suite task."""
MAX_RETURN = float(EPISODE_LENGTH)
"""The highest episode return (rewards are in [0, 1] per step): a return / MAX_RETURN score."""


def _load(domain: str, task: str, seed: int | None) -> Any:
    """``dm_control.suite.load`` with the same OpenGL back-end as memrl's Meta-World renders."""
    # dm_control picks its OpenGL back-end when first imported; without MUJOCO_GL it tries GLFW
    # first and warns on a headless machine. Agree with memrl's own choice instead.
    os.environ.setdefault("MUJOCO_GL", gl_backend())
    from dm_control import suite

    if (domain, task) not in suite.ALL_TASKS:
        allowed = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
        raise ValueError(f"domain-task must be one of {allowed}, got {domain}-{task}")
    return suite.load(domain, task, task_kwargs={"random": seed})


class DMControlTaskEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """A dm_control suite task with a flat observation vector.

    ## Description

    One task of the DeepMind Control Suite (Tassa et al. 2018, `dm-control==1.0.28`, MuJoCo 3),
    `domain`-`task` (e.g. `cheetah`-`run`), with dm_control's physics, reward and episode length
    unchanged. Observation dicts are flattened into one float64 vector in a fixed order.

    ## Observation Space

    `Box(-inf, inf, (n,), float64)`: the task's observation entries flattened (row-major) and
    concatenated in sorted key order; `observation_keys` lists them with their sizes. For the 16
    tasks L2M used, n is: cartpole-balance 5, cartpole-swingup 5, finger-turn_easy 12,
    finger-turn_hard 12, finger-spin 9, fish-upright 21, hopper-stand 15, pendulum-swingup 3,
    point_mass-easy 4, reacher-easy 6, reacher-hard 6, walker-stand 24, walker-walk 24,
    walker-run 24, ball_in_cup-catch 8, cheetah-run 17.

    ## Action Space

    `Box(minimum, maximum, action_spec.shape, float32)` from dm_control's action spec (all 16
    tasks: `[-1, 1]`, 1 to 6 dimensions). Actions are passed to dm_control as float64. An action
    of another shape, of a non-numeric dtype (bools included) or with a NaN or infinite entry
    raises `ValueError`; finite values outside the bounds are clamped (by MuJoCo, to the
    actuators' `ctrlrange`, as Gymnasium allows an env to do).

    ## Rewards

    dm_control's reward, in `[0, 1]` per step (so an episode return is at most 1000).

    ## Starting State

    dm_control's task initialisation, drawn from the task's own generator (a
    `numpy.random.RandomState`): seeded by the `seed` argument at construction and reseeded by
    `reset(seed=s)` (with `RandomState(s)`, the same as constructing with `seed=s`); a `reset()`
    without a seed continues it.

    ## Episode End

    Truncation after 1000 control steps (every suite task has this limit); termination if
    dm_control ends an episode with discount 0 (none of the 16 tasks does). Stepping a finished
    episode raises `ResetNeeded` (dm_control would silently start a new one).

    dm_control defines no success. `info["is_success"]` (every step) is True once the episode
    return reaches `success_return`; with `success_return=None` (default) it is always False.
    Report returns (`info["episode_return"]`, every step) rather than success rates for these
    tasks unless a threshold is set deliberately.

    ## Arguments

    - `domain`, `task` (str): a dm_control suite task (`dm_control.suite.ALL_TASKS`).
    - `seed` (int or None): seed of the task's generator at construction.
    - `success_return` (float or None, default None): return threshold of `is_success`.
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` renders the model's camera
      `camera_id` (default 0) at `width` x `height` (default 240 x 240) offscreen (EGL when
      headless; `MUJOCO_GL` overrides); `ansi` is one line with the step, reward and return.

    ## Memory demand

    None within an episode (the tasks are fully observed). Across a stream, the skill.
    `info["memory"]` (at reset): `{"task": "domain-task"}`.

    ## Version History

    - v0: initial version (dm-control 1.0.28, MuJoCo 3.3.0).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 50}

    def __init__(
        self,
        domain: str = "cheetah",
        task: str = "run",
        seed: int | None = None,
        success_return: float | None = None,
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
        camera_id: int = 0,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if success_return is not None and (
            isinstance(success_return, bool)
            or not isinstance(success_return, int | float | np.number)
            or not np.isfinite(success_return)
        ):
            raise ValueError(
                f"success_return must be a finite number or None, got {success_return!r}"
            )
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.domain = domain
        self.task = task
        self.name = f"{domain}-{task}"
        self.success_return = None if success_return is None else float(success_return)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self._env = _load(domain, task, seed)
        cameras = self._env.physics.model.ncam
        if (
            isinstance(camera_id, bool)
            or not isinstance(camera_id, int | np.integer)
            or not (-1 <= camera_id < cameras)
        ):
            raise ValueError(
                f"camera_id must be -1 (the free camera) or one of the model's {cameras} cameras "
                f"(0..{cameras - 1}), got {camera_id!r}"
            )
        self.camera_id = int(camera_id)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self._env.control_timestep())}
        observation_spec = self._env.observation_spec()
        self.observation_keys: tuple[tuple[str, int], ...] = tuple(
            (key, int(np.prod(observation_spec[key].shape))) for key in sorted(observation_spec)
        )
        size = sum(n for _, n in self.observation_keys)
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), dtype=np.float64)
        action_spec = self._env.action_spec()
        self.action_space = spaces.Box(
            np.broadcast_to(action_spec.minimum, action_spec.shape).astype(np.float32),
            np.broadcast_to(action_spec.maximum, action_spec.shape).astype(np.float32),
            dtype=np.float32,
        )
        self._renderer: OffscreenRenderer | None = None
        self._steps: int | None = None
        self._over = False
        self._return = 0.0

    def _flatten(self, observation: dict[str, Any]) -> np.ndarray:
        return np.concatenate(
            [
                np.asarray(observation[key], dtype=np.float64).ravel()
                for key, _ in self.observation_keys
            ]
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` reseeds the task's own generator."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        time_step = self._env.reset()
        self._steps, self._over, self._return = 0, False, 0.0
        return self._flatten(time_step.observation), {"memory": {"task": self.name}}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One control step."""
        if self._steps is None or self._over:
            raise ResetNeeded("Call reset() before step() (the episode has ended).")
        action = check_box_action(action, self.action_space)
        time_step = self._env.step(action.astype(np.float64))
        self._steps += 1
        reward = float(time_step.reward or 0.0)
        self._return += reward
        terminated = truncated = False
        if time_step.last():
            self._over = True
            terminated = time_step.discount == 0.0
            truncated = not terminated
        success = self.success_return is not None and self._return >= self.success_return
        info = {"is_success": success, "episode_return": self._return}
        return self._flatten(time_step.observation), reward, terminated, truncated, info

    def render(self) -> np.ndarray | str | None:  # type: ignore[override]
        """``rgb_array``: the model's camera; ``ansi``: one line of text; None without a mode."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; returning None.")
            return None
        if self._steps is None:
            raise ResetNeeded("Call reset() before render().")
        if self.render_mode == "ansi":
            return f"{self.name} | step {self._steps}/{EPISODE_LENGTH} | return {self._return:.2f}"
        import mujoco

        physics = self._env.physics
        if self._renderer is None:
            # The offscreen buffer must hold the frame (dm_control's models ask for 640x480).
            visual = physics.model.vis.global_
            visual.offwidth = max(visual.offwidth, self.width)
            visual.offheight = max(visual.offheight, self.height)
            self._renderer = OffscreenRenderer(physics.model.ptr, self.width, self.height)
            if self.camera_id >= 0:  # the model's camera instead of the renderer's free one
                camera = self._renderer._camera
                camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
                camera.fixedcamid = self.camera_id
        return self._renderer.render(physics.model.ptr, physics.data.ptr)

    def close(self) -> None:
        """Free the rendering contexts."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        """The whole state: dm_control environments pickle (model, data, task generator).

        dm_control's own unpickling recomputes derived quantities and so loses the constraint
        solver's warm start; MuJoCo's full integration state (``mjSTATE_INTEGRATION``) is saved
        beside it and put back, so that a clone continues exactly.
        """
        import mujoco

        state = self.__dict__.copy()
        state["_renderer"] = None
        physics = self._env.physics
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        saved = np.empty(mujoco.mj_stateSize(physics.model.ptr, spec), dtype=np.float64)
        mujoco.mj_getState(physics.model.ptr, physics.data.ptr, saved, spec)
        state["_integration_state"] = saved
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore, then put MuJoCo's integration state (warm start included) back."""
        import mujoco

        saved = state.pop("_integration_state")
        self.__dict__.update(state)
        physics = self._env.physics
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(physics.model.ptr, physics.data.ptr, saved, spec)
