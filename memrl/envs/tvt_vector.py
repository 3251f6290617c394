"""KeyToDoor and PassiveVisualMatch for N episodes at once: numpy-batched, like ``SyncVectorEnv``.

Episodes are drawn by the same task objects as the single environments (per sub-environment, from
``self.rngs[i]``); a step moves every agent with a few gathers over the ``[num_envs, 77]`` rooms and
the cell-code tables of :mod:`memrl.envs.tvt`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from memrl.envs.batched import BatchedEnv
from memrl.envs.tvt import (
    AFTER_ENTER,
    AGENT,
    APPLE,
    DISTRACTOR,
    ENDS_EPISODE,
    EXPLORE,
    FINAL,
    KEY,
    MOVES,
    NUM_ACTIONS,
    NUM_CELLS,
    NUM_CODES,
    PASSABLE,
    KeyToDoorTask,
    PassiveVisualMatchTask,
    ThreePhaseTask,
    render_ansi,
    render_rgb,
)


class BatchedThreePhaseGridEnv(BatchedEnv):
    """The batched stepping engine of both TVT tasks; see :class:`memrl.envs.tvt.KeyToDoorEnv`.

    Infos are laid out as ``SyncVectorEnv`` lays out the single env's: ``action_ignored`` (bool
    ``[N]``) from ``reset()`` and on every step for every sub-environment (True on an autoreset
    step, the reset info's value); ``is_success`` and ``memory`` where an episode ends,
    ``memory`` where one starts.

    Args:
        num_envs: Number of sub-environments.
        task: The task's rules, phase lengths and episode draw.
        max_episode_steps: Optional extra time limit (the registered ids use None).
        render_mode: ``"rgb_array"``, ``"ansi"`` or None.
    """

    def __init__(
        self,
        num_envs: int,
        task: ThreePhaseTask,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            spaces.Box(0, task.observation_high, (NUM_CELLS,), np.uint8),
            spaces.Discrete(NUM_ACTIONS),
            max_episode_steps=max_episode_steps,
            render_mode=render_mode,
        )
        self.task = task
        n = self.num_envs
        self._arange = np.arange(n)
        # Phase of the room the agent is in after each step count; the episode lasts at most
        # task.episode_steps, and a sub-environment is stepped at most once more before its reset.
        self._phase_after_step = np.full(task.episode_steps + 2, FINAL, dtype=np.int64)
        self._phase_after_step[: task.explore_steps] = EXPLORE
        self._phase_after_step[task.explore_steps : task.explore_steps + task.distractor_steps] = (
            DISTRACTOR
        )
        self._rooms = np.zeros((n, 3, NUM_CELLS), dtype=np.uint8)  # every room of the episode
        self._starts = np.zeros((n, 3), dtype=np.int64)
        self._grid = np.zeros((n, NUM_CELLS), dtype=np.uint8)  # current room without the agent
        self._pos = np.zeros(n, dtype=np.int64)
        self._step_count = np.zeros(n, dtype=np.int64)
        self._phase = np.zeros(n, dtype=np.int64)
        self._mode = np.zeros(n, dtype=np.int64)  # 2 * phase + has_key: the row of PASSABLE
        self._goal_code = np.zeros(n, dtype=np.uint8)
        self._reward_of_code = np.zeros((n, NUM_CODES), dtype=np.float64)
        self._memory: dict[str, np.ndarray] = {}  # info["memory"] of each episode, by key

    def _reset_envs(self, indices: np.ndarray) -> dict[str, Any]:
        for i in indices.tolist():
            episode = self.task.draw(self.rngs[i])
            if not self._memory:
                self._memory = {
                    key: np.zeros((self.num_envs, *np.shape(value)), np.asarray(value).dtype)
                    for key, value in episode.memory.items()
                }
            for key, value in episode.memory.items():
                self._memory[key][i] = value
            self._rooms[i] = episode.rooms
            self._starts[i] = episode.starts
            self._goal_code[i] = episode.goal_code
            self._reward_of_code[i] = 0.0
            self._reward_of_code[i, APPLE] = episode.apple_value
            self._reward_of_code[i, episode.goal_code] = 1.0
        self._grid[indices] = self._rooms[indices, EXPLORE]
        self._pos[indices] = self._starts[indices, EXPLORE]
        self._step_count[indices] = 0
        self._phase[indices] = EXPLORE
        self._mode[indices] = 2 * EXPLORE
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[indices] = True
        return {
            "memory": self._memory_info(mask),
            "_memory": mask,
            "action_ignored": mask.copy(),
            "_action_ignored": mask,
        }

    def _step_envs(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        arange = self._arange
        step_count = self._step_count + 1
        phase = self._phase_after_step[step_count]
        changed = phase != self._phase  # this step teleports the agent into the next room
        ignored = changed.copy()
        if np.count_nonzero(changed):  # ... where its move cannot pick anything up on the way
            reach = self._grid[arange[:, None], self._pos[:, None] + MOVES]  # [N, 4] codes
            apples_count = self._reward_of_code[:, APPLE] != 0.0
            pickup = (reach == KEY) | ((reach == APPLE) & apples_count[:, None])
            ignored &= ~pickup.any(axis=1)
        target = self._pos + MOVES[actions]
        code = self._grid[arange, target]
        can_enter = PASSABLE[self._mode, code]
        pos = np.where(can_enter, target, self._pos)
        self._pos = pos
        entered = code * can_enter  # the code entered, or floor (0) when blocked
        self._grid[arange, pos] = AFTER_ENTER[entered]
        self._mode |= entered == KEY  # picking up the key sets the has_key bit
        reward = self._reward_of_code[arange, entered]
        self._step_count = step_count
        terminated = ENDS_EPISODE[entered] | (step_count == self.task.episode_steps)
        if np.count_nonzero(changed):  # teleport into the next room
            indices = np.flatnonzero(changed)
            new_phase = phase[indices]
            self._grid[indices] = self._rooms[indices, new_phase]
            self._pos[indices] = self._starts[indices, new_phase]
            self._mode[indices] = 2 * new_phase + (self._mode[indices] & 1)
            self._phase = phase
        info: dict[str, Any] = {"action_ignored": ignored, "_action_ignored": active}
        ended = terminated & active
        if not np.count_nonzero(ended):
            return reward, terminated, info
        memory = self._memory_info(ended)
        if "has_key" in memory:
            memory["has_key"] = (self._mode & 1).astype(bool) & ended
        info |= {
            "is_success": (entered == self._goal_code) & ended,
            "_is_success": ended,
            "memory": memory,
            "_memory": ended,
        }
        return reward, terminated, info

    def _memory_info(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        """``info["memory"]`` as ``SyncVectorEnv`` lays it out: values (0 off ``mask``), masks."""
        info: dict[str, np.ndarray] = {}
        for key, values in self._memory.items():
            info[key] = values * (mask if values.ndim == 1 else mask[:, None])
            info[f"_{key}"] = mask
        return info

    def _observe(self) -> np.ndarray:
        obs = self._grid.copy()
        obs[self._arange, self._pos] = AGENT
        return obs

    def _render_env(self, index: int) -> np.ndarray | str:
        grid = self._grid[index].copy()
        grid[self._pos[index]] = AGENT
        if self.render_mode == "ansi":
            task = self.task
            phase = int(self._phase[index])
            phase_start = (0, task.explore_steps, task.explore_steps + task.distractor_steps)
            phase_steps = (task.explore_steps, task.distractor_steps, task.final_steps)
            step_in_phase = int(self._step_count[index]) - phase_start[phase]
            return render_ansi(grid, phase, step_in_phase, phase_steps[phase])
        return render_rgb(grid)


class BatchedKeyToDoorEnv(BatchedThreePhaseGridEnv):
    """``num_envs`` KeyToDoor episodes stepped together; see the single env's docs."""

    def __init__(
        self,
        num_envs: int = 1,
        explore_steps: int = 15,
        distractor_steps: int = 90,
        final_steps: int = 15,
        num_apples: int = 10,
        apple_reward: float | tuple[float, float] = (0.01, 0.05),
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        task = KeyToDoorTask(
            explore_steps=explore_steps,
            distractor_steps=distractor_steps,
            final_steps=final_steps,
            num_apples=num_apples,
            apple_reward=apple_reward,
        )
        super().__init__(num_envs, task, max_episode_steps, render_mode)


class BatchedPassiveVisualMatchEnv(BatchedThreePhaseGridEnv):
    """``num_envs`` PassiveVisualMatch episodes stepped together; see the single env's docs."""

    def __init__(
        self,
        num_envs: int = 1,
        explore_steps: int = 15,
        distractor_steps: int = 90,
        final_steps: int = 15,
        num_choices: int = 3,
        num_apples: int = 10,
        apple_reward: float | tuple[float, float] = (0.01, 0.05),
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        task = PassiveVisualMatchTask(
            explore_steps=explore_steps,
            distractor_steps=distractor_steps,
            final_steps=final_steps,
            num_apples=num_apples,
            apple_reward=apple_reward,
            num_choices=num_choices,
        )
        super().__init__(num_envs, task, max_episode_steps, render_mode)
