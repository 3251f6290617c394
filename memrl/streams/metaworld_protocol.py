"""Meta-World v3 tasks under the Continual World protocol, as a Gymnasium environment.

The protocol (Wołczyk et al. 2021, on ``metaworld==3.1.1``'s v3 tasks):

- 200-step episodes. Meta-World's own 500-step limit (``max_path_length``, past which its
  ``step`` raises) is disabled; this env truncates.
- Goal and object positions re-sampled at every reset from the env's own seeded generator.
  Meta-World's ``reset(seed=)`` ignores the seed and, through ``gym.make``, cycles among 50
  fixed layouts; re-sampling needs ``_freeze_rand_vec = False`` and ``seeded_rand_vec = True``
  (otherwise numpy's global generator is drawn). The env's generator *is* Meta-World's: the
  ``np_random`` that ``reset(seed=s)`` creates is handed to the Meta-World env, so ``reset(seed=s)``
  places objects exactly as Meta-World's ``env.seed(s); env.reset()`` would.
- Goal observable (as in Meta-World's MT benchmarks and in Continual World): the observation is
  Meta-World's 39 floats with the goal in ``obs[36:39]``.
- Success if Meta-World's ``info["success"]`` is ever 1 in the episode (``info["is_success"]``).

The building blocks are public so that other Meta-World environments of memrl (CuedReach) can
share them: :func:`make_protocol_env` builds a raw Meta-World env set up for the protocol, and
:func:`save_state` / :func:`restore_state` carry one across pickling. This module depends on no
other part of ``memrl.streams`` (only on ``memrl.envs``' offscreen renderer), so it can move to
``memrl.envs`` as it is when ``memrl.envs`` starts using it (``envs`` must not import ``streams``).

Meta-World and MuJoCo are imported when an environment is built, not when this module is.
"""

from __future__ import annotations

import operator
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from memrl.envs.actions import check_box_action
from memrl.envs.metaworld import (
    EPISODE_LENGTH,
    OffscreenRenderer,
    make_protocol_env,
    restore_state,
    save_state,
)


class MetaWorldTaskEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """One Meta-World v3 task under the Continual World protocol.

    ## Description

    A Sawyer arm above a table must manipulate objects to a goal (Yu et al. 2019,
    `metaworld==3.1.1`, MuJoCo 3): one of Meta-World's 50 v3 tasks, chosen by `task`. Physics,
    reward and the success test are Meta-World's, unmodified. What this env adds is the
    Continual World protocol: episodes of `episode_length` (200) steps without early
    termination, goal and object positions re-sampled at every reset from the env's own seeded
    generator, success if Meta-World's `info["success"]` is ever 1 in the episode, a
    reproducible episode under `reset(seed=...)`, pickling and headless rendering.

    ## Observation Space

    `Box(low, high, (39,), float64)`: Meta-World's goal-observable observation and bounds
    (`sawyer_observation_space`, object bounds infinite, goal bounds the task's goal box).

    | Index   | Meaning                                                         |
    |---------|-----------------------------------------------------------------|
    | `0:3`   | hand (end-effector) position x, y, z, metres                    |
    | `3`     | gripper opening                                                 |
    | `4:11`  | first object: position x, y, z and quaternion                   |
    | `11:18` | second object (or zeros if the task has one)                    |
    | `18:36` | indices `0:18` of the previous frame (at reset: the reset frame) |
    | `36:39` | goal position x, y, z                                           |

    ## Action Space

    `Box(-1, 1, (4,), float32)`, Meta-World's: the hand's displacement (x, y, z, 1 cm per unit)
    and the gripper effort (-1 open .. 1 closed). An action of another shape, of a non-numeric
    dtype (bools included) or with a NaN or infinite entry raises `ValueError`; finite values
    outside `[-1, 1]` are clipped (by Meta-World, as Gymnasium allows an env to do).

    ## Rewards

    Meta-World's v2 shaped reward of the task, in `[0, 10]`.

    ## Starting State

    The arm at the task's home pose; objects and goal drawn uniformly by Meta-World from the
    task's boxes, with `self.np_random` (which Meta-World's `seeded_rand_vec` draws from):
    `reset(seed=s)` places them as Meta-World's `env.seed(s); env.reset()`, and every later
    `reset()` draws fresh positions from the same generator.

    ## Episode End

    No termination (Meta-World's tasks never terminate). Truncation after `episode_length`
    steps. `info["is_success"]` (every step) is True from the first step on which Meta-World's
    `info["success"]` is 1 until the end of the episode; Meta-World's own `info` keys
    (`success`, `near_object`, `grasp_success`, ...) are passed through.

    ## Arguments

    - `task` (str, default `"push-v3"`): a Meta-World v3 task name (`memrl.streams.MT50`);
      an unknown name raises `ValueError` listing Meta-World's.
    - `episode_length` (int >= 1, default 200): steps per episode.
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` is a MuJoCo offscreen render
      (`width` x `height`, default 480 x 480) from a fixed camera in front of the table (EGL
      when headless; `MUJOCO_GL` overrides); `ansi` is one line with the step, the hand, the
      first object, the goal and success.

    ## Memory demand

    None within an episode (the goal is observed). Across a stream of tasks, what must be kept
    is the skill itself: that is what Continual World's forgetting measures.
    `info["memory"]` (at reset): `{"task": name, "goal": [x, y, z], "object": [x, y, z]}`, the
    episode's sampled layout (for analysis).

    ## Version History

    - v0: initial version (Meta-World 3.1.1 v3 tasks, MuJoCo 3.3.0).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 80}

    def __init__(
        self,
        task: str = "push-v3",
        episode_length: int = EPISODE_LENGTH,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        if (
            isinstance(episode_length, bool)
            or not isinstance(episode_length, int | np.integer)
            or episode_length < 1
        ):
            raise ValueError(f"episode_length must be an integer >= 1, got {episode_length!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.task = task
        self.episode_length = operator.index(episode_length)
        self.render_mode = render_mode
        self.width = operator.index(width)
        self.height = operator.index(height)
        self._mw = make_protocol_env(task, width=self.width, height=self.height)
        space = self._mw.sawyer_observation_space
        self.observation_space: spaces.Box = spaces.Box(space.low, space.high, dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self._renderer: OffscreenRenderer | None = None
        self._steps: int | None = None  # None until the first reset
        self._ever_success = False

    @property
    def metaworld_env(self) -> Any:
        """The wrapped Meta-World ``SawyerXYZEnv`` (for scripted policies and analysis)."""
        return self._mw

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode with fresh object and goal positions."""
        super().reset(seed=seed)
        # One generator drives everything: Meta-World's `seeded_rand_vec` draws from
        # `env.np_random`, which is ours (seeded as Meta-World's `env.seed(s)` would seed it).
        self._mw.np_random = self.np_random
        obs, _ = self._mw.reset()
        # Meta-World clips step observations to its space but not the reset one.
        np.clip(obs, self.observation_space.low, self.observation_space.high, out=obs)
        self._steps = 0
        self._ever_success = False
        info = {
            "memory": {
                "task": self.task,
                "goal": [float(x) for x in self._mw._target_pos],
                "object": [float(x) for x in obs[4:7]],
            }
        }
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance Meta-World one step; truncate after ``episode_length`` steps."""
        if self._steps is None:
            raise ResetNeeded("Call reset() before step().")
        action = check_box_action(action, self.action_space)
        obs, reward, _, _, info = self._mw.step(action)  # a fresh array and dict every step
        self._steps += 1
        if info["success"]:
            self._ever_success = True
        info["is_success"] = self._ever_success
        return obs, float(reward), False, self._steps >= self.episode_length, info

    def render(self) -> np.ndarray | str | None:  # type: ignore[override]
        """``rgb_array``: a MuJoCo frame; ``ansi``: one line of text; None without a mode."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; returning None.")
            return None
        if self._steps is None:
            raise ResetNeeded("Call reset() before render().")
        if self.render_mode == "ansi":
            hand = self._mw.get_endeff_pos()
            obj = self._mw._get_pos_objects()[:3]
            goal = self._mw._target_pos

            def xyz(v: np.ndarray) -> str:
                return f"({v[0]:+.3f}, {v[1]:+.3f}, {v[2]:+.3f})"

            return (
                f"{self.task} | step {self._steps}/{self.episode_length} | hand {xyz(hand)} | "
                f"object {xyz(obj)} | goal {xyz(goal)} | "
                f"success {'yes' if self._ever_success else 'no'}"
            )
        if self._renderer is None:
            self._renderer = OffscreenRenderer(self._mw.model, self.width, self.height)
        return self._renderer.render(self._mw.model, self._mw.data)

    def close(self) -> None:
        """Free the rendering contexts."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._mw.close()

    def __getstate__(self) -> dict[str, Any]:
        """Everything needed to continue the episode exactly, without MuJoCo or GL objects."""
        state = self.__dict__.copy()
        mw = state.pop("_mw")
        state["_renderer"] = None
        state["_metaworld_state"] = None if self._steps is None else save_state(mw)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the Meta-World env and put it back where it was."""
        saved = state.pop("_metaworld_state")
        self.__dict__.update(state)
        self._mw = make_protocol_env(self.task, width=self.width, height=self.height)
        if saved is not None:
            restore_state(self._mw, saved, self.np_random)
