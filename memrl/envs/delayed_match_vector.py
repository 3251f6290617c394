"""DelayedMatch for N episodes at once: numpy-batched, identical to ``SyncVectorEnv``.

Each sub-environment keeps the view code of every observation of its episode (drawn at reset with
the same function as the single env), so a step is a handful of array operations and one gather
from the observation table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from memrl.envs.batched import BatchedEnv
from memrl.envs.delayed_match import (
    check_arguments,
    decode_view,
    delay_bounds,
    draw_episode,
    observation_table,
    render_ansi,
    render_rgb,
)


class BatchedDelayedMatchEnv(BatchedEnv):
    """``num_envs`` DelayedMatch episodes stepped together; see :class:`DelayedMatchEnv`.

    Infos are laid out as ``SyncVectorEnv`` lays out the single env's: ``answer`` (the cue,
    int64 ``[N]``) and ``action_ignored`` (bool ``[N]``) from ``reset()`` and on every step for
    every sub-environment (an autoreset step gives the reset info's: the new cue and True);
    ``is_success`` and ``memory`` where an episode ends, ``memory`` where one starts.

    Args:
        num_envs: Number of sub-environments.
        num_symbols: Number of symbols (>= 2).
        delay: Steps between the cue and the query (>= 0), or a ``[low, high]`` pair from which
            each episode draws its delay uniformly.
        distractors: Whether delay steps show random symbols.
        max_episode_steps: Optional extra time limit (the registered ids use None).
        render_mode: ``"rgb_array"``, ``"ansi"`` or None.
    """

    def __init__(
        self,
        num_envs: int = 1,
        num_symbols: int = 4,
        delay: int | tuple[int, int] | list[int] = 32,
        distractors: bool = True,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        check_arguments(num_symbols, delay, distractors)
        self.num_symbols = int(num_symbols)
        self.delay_range = delay_bounds(delay)
        self.distractors = bool(distractors)
        super().__init__(
            num_envs,
            spaces.Box(0.0, 1.0, (self.num_symbols + 3,), np.float32),
            spaces.Discrete(self.num_symbols),
            max_episode_steps=max_episode_steps,
            render_mode=render_mode,
        )
        self._table = observation_table(self.num_symbols)  # [view codes, obs dim]
        self._query_view = 2 * self.num_symbols + 1
        self._arange = np.arange(self.num_envs)
        self._step_count = np.zeros(self.num_envs, dtype=np.int64)
        self._cue = np.zeros(self.num_envs, dtype=np.int64)
        self.delay = np.full(self.num_envs, self.delay_range[0], dtype=np.int64)
        """Delay of each sub-environment's current episode."""
        # View code of every observation of each episode: cue, delay steps, query (padded with
        # the query view beyond a shorter episode's end).
        self._views = np.full(
            (self.num_envs, self.delay_range[1] + 2), self._query_view, dtype=np.int64
        )

    def _reset_envs(self, indices: np.ndarray) -> dict[str, Any]:
        for i in indices.tolist():
            cue, delay_views = draw_episode(
                self.rngs[i], self.num_symbols, self.delay_range, self.distractors
            )
            delay = len(delay_views)
            self._cue[i] = cue
            self.delay[i] = delay
            self._views[i, 0] = cue
            self._views[i, 1 : delay + 1] = delay_views
            self._views[i, delay + 1 :] = self._query_view
        self._step_count[indices] = 0
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[indices] = True
        return {
            "memory": self._memory_info(mask),
            "_memory": mask,
            "answer": np.where(mask, self._cue, 0),
            "_answer": mask,
            "action_ignored": mask.copy(),
            "_action_ignored": mask,
        }

    def _step_envs(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        step_count = self._step_count + 1
        self._step_count = step_count
        answered = step_count > self.delay + 1
        correct = answered & (actions == self._cue)
        info: dict[str, Any] = {
            "answer": self._cue.copy(),
            "_answer": active,
            "action_ignored": ~answered,
            "_action_ignored": active,
        }
        ended = answered & active
        if ended.any():
            info |= {
                "is_success": correct & ended,
                "_is_success": ended,
                "memory": self._memory_info(ended),
                "_memory": ended,
            }
        return correct.astype(np.float64), answered, info

    def _observe(self) -> np.ndarray:
        step = np.minimum(self._step_count, self.delay + 1)
        return self._table[self._views[self._arange, step]]

    def _render_env(self, index: int) -> np.ndarray | str:
        step = int(self._step_count[index])
        delay = int(self.delay[index])
        view = int(self._views[index, min(step, delay + 1)])
        phase, symbol = decode_view(view, self.num_symbols)
        if self.render_mode == "ansi":
            return render_ansi(self.num_symbols, phase, symbol, step, delay)
        return render_rgb(self.num_symbols, phase, symbol)

    def _memory_info(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        """``info["memory"]`` in ``SyncVectorEnv``'s layout: values and ``_key`` masks."""
        return {
            "cue": np.where(mask, self._cue, 0),
            "_cue": mask,
            "delay": np.where(mask, self.delay, 0),
            "_delay": mask,
            "num_symbols": np.where(mask, self.num_symbols, 0),
            "_num_symbols": mask,
        }
