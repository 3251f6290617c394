"""CuedReach: Meta-World's reach task with the goal shown for the first few steps only.

Continuous-control memory: a Meta-World v3 task (``reach-v3`` by default) whose goal coordinates
are in the observation for the first ``cue_steps`` observations and zero afterwards, so the arm must
go to a place it saw a while ago. The task, the physics, the reward and the success test are
Meta-World's own (``metaworld==3.1.1``); this module adds the cue schedule, the Continual World
reset protocol (fresh goals from the env's own seeded generator at every reset, 200-step episodes),
finite observation bounds, pickling and headless rendering.

Meta-World and MuJoCo are imported when the first environment is built, not when this module (or
``memrl``) is imported.
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

TASKS: tuple[str, ...] = ("reach-v3", "push-v3", "pick-place-v3")
"""Meta-World v3 tasks the env accepts: one object, a goal position in ``obs[36:39]``."""

REWARD_TYPES: tuple[str, ...] = ("dense", "sparse")

SUCCESS_CRITERIA: tuple[str, ...] = ("ever", "final")
"""``ever``: Meta-World's success at any step so far (Continual World); ``final``: at this step."""

GOAL = slice(36, 39)
"""Where the goal sits in Meta-World's observation."""

_HAND_LOW, _HAND_HIGH = (-0.525, 0.348, -0.0525), (0.525, 1.025, 0.7)
"""Meta-World's bounds for the hand position (``SawyerXYZEnv._HAND_SPACE``); it clips to them."""

_OBJECT_LOW, _OBJECT_HIGH = (-0.7, 0.2, -0.1), (0.7, 1.0, 0.8)
"""Bounds for an object position: the table's retaining walls (x in +-0.69, y in 0.21..0.99)
enclose the object; the arm cannot lift it above 0.8 m. Positions are clipped to them, which only
matters if the simulation blows up (as Meta-World's own clip of the hand)."""

_GOAL_RGBA = (0.1, 0.9, 0.1, 1.0)
"""Colour of the goal marker in the render while the goal is cued (Meta-World draws it red)."""


def check_arguments(
    *,
    cue_steps: Any,
    task: Any,
    reward_type: Any,
    success: Any,
    episode_length: Any,
    hold_during_cue: Any,
    cue_flag: Any,
) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones.

    Args:
        cue_steps: Observations that show the goal; an integer in ``1 .. episode_length - 1``.
        task: One of ``TASKS``.
        reward_type: One of ``REWARD_TYPES``.
        success: One of ``SUCCESS_CRITERIA``.
        episode_length: Steps per episode; an integer >= 2.
        hold_during_cue: Whether actions are ignored while the goal is shown; a bool.
        cue_flag: Whether to append a cue-visible flag; a bool.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type must be one of {list(REWARD_TYPES)}, got {reward_type!r}")
    if success not in SUCCESS_CRITERIA:
        raise ValueError(f"success must be one of {list(SUCCESS_CRITERIA)}, got {success!r}")
    if isinstance(episode_length, bool) or not isinstance(episode_length, int | np.integer):
        raise ValueError(f"episode_length must be an integer >= 2, got {episode_length!r}")
    if episode_length < 2:
        raise ValueError(f"episode_length must be an integer >= 2, got {episode_length}")
    if (
        isinstance(cue_steps, bool)
        or not isinstance(cue_steps, int | np.integer)
        or not 1 <= cue_steps < episode_length
    ):
        raise ValueError(
            f"cue_steps must be an integer in 1..{episode_length - 1} "
            f"(below episode_length={episode_length}), got {cue_steps!r}"
        )
    for name, value in (("hold_during_cue", hold_during_cue), ("cue_flag", cue_flag)):
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name} must be True or False, got {value!r}")


class CuedReachEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Reach (or push, or pick-place to) a goal that is shown only for the first `cue_steps` steps.

    ## Description

    Meta-World's `reach-v3` (Yu et al. 2019, `metaworld==3.1.1`, MuJoCo 3): a Sawyer arm above a
    table must bring its gripper within 5 cm of a goal point. The goal position is part of the
    observation for the first `cue_steps` observations and is then replaced by zeros for the rest
    of the episode, so the agent must remember where the goal was. While the goal is shown the arm
    holds still (`hold_during_cue=True`), so nothing in the arm's own state carries the goal past
    the cue. With `task="push-v3"` or `task="pick-place-v3"` the arm must instead push, or grasp
    and carry, a puck to the goal.

    The env follows the Continual World protocol for Meta-World: 200-step episodes without early
    termination, goal and object positions re-sampled at every reset from the env's own seeded
    generator, and success if Meta-World's `info["success"]` is ever 1 during the episode.
    Physics, reward and the success test are Meta-World's, unmodified.

    ## Observation Space

    `Box(low, high, (39,), float64)`, or `(40,)` with `cue_flag=True`: Meta-World's observation
    with the goal hidden after the cue. Frame `t` is the current state, frame `t-1` the previous one
    (at reset both are the reset state). Every value is clipped to the bounds below (Meta-World's
    own space is unbounded for objects; the clip only acts if the simulation blows up).

    | Index   | Meaning                                                  | Bounds                 |
    |---------|----------------------------------------------------------|------------------------|
    | `0:3`   | hand (end-effector) position x, y, z, metres             | Meta-World's hand box  |
    | `3`     | gripper opening, 0 closed .. 1 open                      | `[0, 1]`               |
    | `4:7`   | puck position x, y, z                                    | inside the table walls |
    | `7:11`  | puck orientation quaternion (x, y, z, w)                 | `[-1, 1]`              |
    | `11:18` | second-object slot, unused by these tasks: always 0      | as `4:11`, and 0       |
    | `18:36` | indices `0:18` of the previous frame                     | as `0:18`              |
    | `36:39` | goal x, y, z in observations `0 .. cue_steps-1`, then 0  | goal box, and 0        |
    | `39`    | (`cue_flag=True` only) 1 while the goal is shown, else 0 | `[0, 1]`               |

    Observation `t` is the one returned after `t` steps: the reset observation is observation 0,
    so the goal is visible in exactly `cue_steps` observations (`t < cue_steps`). A goal is never 0
    (its y is at least 0.8), so zeros mark "hidden" unambiguously, as in Meta-World's goal-hidden
    environments: after the cue the observation is what those environments emit.

    ## Action Space

    `Box(-1, 1, (4,), float32)`, Meta-World's: the hand's displacement (x, y, z, 1 cm per unit)
    and the gripper effort (-1 open .. 1 closed). With `hold_during_cue=True` the actions taken on
    the cue observations (the first `cue_steps` calls to `step`) are replaced by zeros: the first
    action that moves the arm is the one taken on the first observation without the goal.
    Every action is checked, held or not: one of another shape, of a non-numeric dtype (bools
    included) or with a NaN or infinite entry raises `ValueError`; finite values outside
    `[-1, 1]` are clipped (by Meta-World, as Gymnasium allows an env to do).

    ## Rewards

    `reward_type="dense"` (default): Meta-World's v2 shaped reward, in `[0, 10]` (for reach-v3,
    10 times a long-tailed tolerance of the gripper-to-goal distance with a 5 cm bound).
    `reward_type="sparse"`: 1 on every step where Meta-World reports success, else 0.

    ## Starting State

    The arm at Meta-World's home pose (hand at (0, 0.6, 0.2)); puck and goal positions drawn
    uniformly by Meta-World from its task boxes (for reach-v3: puck x in [-0.1, 0.1],
    y in [0.6, 0.7]; goal x in [-0.1, 0.1], y in [0.8, 0.9], z in [0.05, 0.3]), redrawn until the
    goal is at least 15 cm from the puck in the plane. The draw uses the env's own generator
    (`self.np_random`, which Meta-World's `seeded_rand_vec` draws from): `reset(seed=s)` makes the
    whole episode reproducible and places puck and goal as Meta-World's `env.seed(s); env.reset()`.

    ## Episode End

    No termination (Meta-World's tasks never terminate). Truncation after `episode_length` steps
    (200, also registered as `max_episode_steps`; to change it pass both `episode_length` and
    `max_episode_steps` to `gymnasium.make`). `info["is_success"]` is on every step: with
    `success="final"` (default) whether Meta-World's `info["success"]` is 1 at this step, so that
    on the last step it says whether the episode *ends* at the goal; with `success="ever"`
    (Continual World's rule) whether it has been 1 at any step so far. Meta-World's own info
    keys (`success`, `near_object`, `obj_to_target`, ...) are passed through, plus
    `info["cue_visible"]` and `info["action_ignored"]`: True when the action passed to the
    `step` call that returns this info could not change anything (with `hold_during_cue`, the
    first `cue_steps` steps, whose actions are replaced by zeros), else False. `reset` reports
    `action_ignored` True (no action was taken), so that a vector env's autoreset step, whose
    info is the reset info, reports its ignored action too.

    ## Arguments

    - `cue_steps` (int in `1 .. episode_length-1`, default 10): observations that show the goal.
    - `task` (default `"reach-v3"`): one of `"reach-v3"`, `"push-v3"`, `"pick-place-v3"`.
    - `reward_type` (`"dense"` or `"sparse"`, default `"dense"`).
    - `success` (`"final"` or `"ever"`, default `"final"`): what `info["is_success"]` means;
      `"final"` because a goal-blind sweep satisfies `"ever"` (see Memory demand).
    - `episode_length` (int >= 2, default 200): steps per episode.
    - `hold_during_cue` (bool, default True): ignore actions while the goal is shown.
    - `cue_flag` (bool, default False): append a 1/0 "goal visible" flag to the observation.
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` is a MuJoCo offscreen render
      (`width` x `height`, default 480 x 480) from a fixed camera, the goal drawn as a green ball
      while it is cued and not drawn afterwards (a pixel-based agent must remember it too).
      Headless it uses EGL (Mesa's software EGL needs no GPU); `MUJOCO_GL` (`egl`, `osmesa`,
      `glfw`) overrides the choice. `ansi` is a line such as `step 12/200 | hand (+0.012, +0.645,
      +0.180) | goal hidden | distance 0.231 | success no`, where the distance is from the gripper
      (reach) or the puck (push, pick-place) to the goal.

    ## Memory demand

    Three real numbers, the goal position (for reach-v3 a 20 x 10 x 25 cm box, against a 5 cm
    success radius), seen for `cue_steps` steps and needed until the end of the episode, up to
    `episode_length - cue_steps` steps later; the distractors are the arm's own changing state.
    The puck stays visible and is independent of the goal, except that Meta-World redraws goals
    within 15 cm of it in the plane (a weak constraint).

    Measured on reach-v3 (20 seeded episodes each, `tests/envs/test_cued_reach.py`): Meta-World's
    scripted policy given the remembered goal succeeds in 100% of episodes; memory-free policies
    fail: heading for the centre of the goal box 20%, staying put 0%, the scripted policy on the
    bare observation 0%. Two loopholes are closed or measurable. Without `hold_during_cue`, a
    policy that heads for the goal during the cue and then keeps its velocity (the arm as an
    external memory) succeeds in 95%; with the hold, 0%. A goal-blind sweep through the whole goal
    box reaches the goal at some step in 95% of episodes but ends there in 5%: this is why success
    is judged at the end of the episode by default (`success="final"`), not at any step.

    `info["memory"]` (at reset): `{"goal": [x, y, z], "cue_steps": K, "task": name,
    "goal_box": [low, high]}` (the box the goal is drawn from, for analysis and baselines).

    ## Version History

    - v0: initial version (Meta-World 3.1.1 v3 tasks, MuJoCo 3.3.0); `info["action_ignored"]`
      added.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 80}

    def __init__(
        self,
        cue_steps: int = 10,
        task: str = "reach-v3",
        reward_type: str = "dense",
        success: str = "final",
        episode_length: int = EPISODE_LENGTH,
        hold_during_cue: bool = True,
        cue_flag: bool = False,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        check_arguments(
            cue_steps=cue_steps,
            task=task,
            reward_type=reward_type,
            success=success,
            episode_length=episode_length,
            hold_during_cue=hold_during_cue,
            cue_flag=cue_flag,
        )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.cue_steps = operator.index(cue_steps)
        self.task = task
        self.reward_type = reward_type
        self.success = success
        self.episode_length = operator.index(episode_length)
        self.hold_during_cue = bool(hold_during_cue)
        self.cue_flag = bool(cue_flag)
        self.render_mode = render_mode
        self.width = operator.index(width)
        self.height = operator.index(height)

        self._mw = self._make_metaworld_env()
        self.observation_space: spaces.Box = self._make_observation_space()
        self.action_space = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self._renderer: OffscreenRenderer | None = None
        self._steps: int | None = None  # None until the first reset
        self._ever_success = False
        self._success_now = False

    # -- Meta-World -----------------------------------------------------------------------------

    def _make_metaworld_env(self) -> Any:
        """A fresh Meta-World env set up for the Continual World reset protocol."""
        return make_protocol_env(self.task, width=self.width, height=self.height)

    def _make_observation_space(self) -> spaces.Box:
        goal_space = self._mw.goal_space
        # One frame [18]: hand, gripper, then two object slots (position, quaternion) of which
        # these tasks use the first; the second is always 0 but bounded as an object slot.
        object_low = np.concatenate([_OBJECT_LOW, -np.ones(4)])
        object_high = np.concatenate([_OBJECT_HIGH, np.ones(4)])
        unused_low, unused_high = np.minimum(object_low, 0.0), np.maximum(object_high, 0.0)
        frame_low = np.concatenate([_HAND_LOW, [0.0], object_low, unused_low])
        frame_high = np.concatenate([_HAND_HIGH, [1.0], object_high, unused_high])
        low = [frame_low, frame_low, np.minimum(goal_space.low, 0.0)]
        high = [frame_high, frame_high, np.maximum(goal_space.high, 0.0)]
        if self.cue_flag:
            low.append([0.0])
            high.append([1.0])
        return spaces.Box(np.concatenate(low), np.concatenate(high), dtype=np.float64)

    def _observe(self, metaworld_obs: np.ndarray) -> np.ndarray:
        """Our observation from Meta-World's: hide the goal after the cue, clip to the bounds."""
        visible = self._cue_visible()
        obs = np.array(metaworld_obs, dtype=np.float64)  # a copy: Meta-World keeps its own
        if self.cue_flag:
            obs = np.append(obs, 1.0 if visible else 0.0)
        if not visible:
            obs[GOAL] = 0.0
        np.clip(obs, self.observation_space.low, self.observation_space.high, out=obs)
        return obs

    def _cue_visible(self) -> bool:
        return self._steps is not None and self._steps < self.cue_steps

    @property
    def goal(self) -> np.ndarray:
        """The episode's goal position (hidden state, for oracles and analysis)."""
        if self._steps is None:
            raise ResetNeeded("Call reset() before reading the goal.")
        return np.array(self._mw._target_pos, dtype=np.float64)

    def _progress_position(self) -> np.ndarray:
        """What must reach the goal: the gripper for reach, the puck for push and pick-place."""
        if self.task == "reach-v3":
            return np.asarray(self._mw.tcp_center, dtype=np.float64)
        return np.asarray(self._mw._get_pos_objects(), dtype=np.float64)

    # -- Gymnasium API --------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode with fresh puck and goal positions; the goal is shown."""
        super().reset(seed=seed)
        # One generator drives everything: Meta-World's `seeded_rand_vec` draws from
        # `env.np_random`, which is ours (seeded here exactly as `metaworld env.seed(s)` would).
        self._mw.np_random = self.np_random
        metaworld_obs, _ = self._mw.reset()
        self._steps = 0
        self._ever_success = False
        self._success_now = False
        obs = self._observe(metaworld_obs)
        info = {"memory": self._memory(), "cue_visible": True, "action_ignored": True}
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move the hand; the goal disappears from the observation after `cue_steps` steps."""
        if self._steps is None:
            raise ResetNeeded("Call reset() before step().")
        action = check_box_action(action, self.action_space)
        held = self.hold_during_cue and self._steps < self.cue_steps
        if held:
            action = np.zeros(4, dtype=np.float32)  # the arm waits while the goal is shown
        metaworld_obs, reward, _, _, metaworld_info = self._mw.step(action)
        self._steps += 1
        success_now = bool(metaworld_info["success"])
        self._success_now = success_now
        self._ever_success = self._ever_success or success_now
        obs = self._observe(metaworld_obs)
        if self.reward_type == "sparse":
            reward = 1.0 if success_now else 0.0
        truncated = self._steps >= self.episode_length
        info = {
            **metaworld_info,
            "is_success": self._is_success(),
            "cue_visible": self._cue_visible(),
            "action_ignored": held,
        }
        return obs, float(reward), False, truncated, info

    def _is_success(self) -> bool:
        return self._ever_success if self.success == "ever" else self._success_now

    def _memory(self) -> dict[str, Any]:
        return {
            "goal": [float(x) for x in self.goal],
            "cue_steps": self.cue_steps,
            "task": self.task,
            "goal_box": [self._mw.goal_space.low.tolist(), self._mw.goal_space.high.tolist()],
        }

    def render(self) -> np.ndarray | str | None:  # type: ignore[override]
        """``rgb_array``: a MuJoCo frame; ``ansi``: one line of text; None without a mode."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; returning None.")
            return None
        if self._steps is None:
            raise ResetNeeded("Call reset() before render().")
        if self.render_mode == "ansi":
            return self._render_ansi()
        return self._render_rgb()

    def _render_ansi(self) -> str:
        hand = np.asarray(self._mw.get_endeff_pos(), dtype=np.float64)
        goal = self.goal
        distance = float(np.linalg.norm(self._progress_position() - goal))
        shown = (
            f"goal ({goal[0]:+.3f}, {goal[1]:+.3f}, {goal[2]:+.3f}) cued"
            if self._cue_visible()
            else "goal hidden"
        )
        return (
            f"step {self._steps}/{self.episode_length} | "
            f"hand ({hand[0]:+.3f}, {hand[1]:+.3f}, {hand[2]:+.3f}) | {shown} | "
            f"distance {distance:.3f} | success {'yes' if self._is_success() else 'no'}"
        )

    def _render_rgb(self) -> np.ndarray:
        model, data = self._mw.model, self._mw.data
        if self._renderer is None:
            self._renderer = OffscreenRenderer(model, self.width, self.height)
        goal_site = model.site("goal")
        saved_rgba = goal_site.rgba.copy()
        # Draw the goal only while the agent sees it: a pixel-based agent must remember it too.
        goal_site.rgba = _GOAL_RGBA if self._cue_visible() else (0.0, 0.0, 0.0, 0.0)
        try:
            return self._renderer.render(model, data)
        finally:
            goal_site.rgba = saved_rgba

    def close(self) -> None:
        """Free the rendering contexts."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._mw.close()

    # -- Pickling -------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Everything needed to continue the episode exactly, without MuJoCo or GL objects.

        The Meta-World env travels as :func:`memrl.envs.metaworld.save_state`; the generator is
        ours and pickles with us.
        """
        state = self.__dict__.copy()
        mw = state.pop("_mw")
        state["_renderer"] = None
        state["_metaworld_state"] = save_state(mw) if self._steps is not None else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the Meta-World env and put it back where it was."""
        saved = state.pop("_metaworld_state")
        self.__dict__.update(state)
        self._mw = self._make_metaworld_env()
        if saved is not None:  # never reset: a fresh env is the same env
            restore_state(self._mw, saved, self.np_random)
