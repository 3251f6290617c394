"""Room Ballet batched with numpy: N episodes of :class:`~memrl.envs.room_ballet.RoomBalletEnv`.

Each sub-environment draws its episodes from its own generator exactly as the single env does
(``random(plan_size)`` per episode). Drawing ``M`` episodes' uniforms at once gives the same numbers
as ``M`` draws of one episode each, so every sub-environment pre-draws and pre-computes a buffer of
``EPISODES_PER_REFILL`` episodes with the shared sampler, vectorised; a reset is then a pointer
increment, and a step is a handful of gathers over the batch. The active variant writes its visits
into the buffer as the agent moves and poses the question when the observation phase ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memrl.envs.batched import BatchedEnv
from memrl.envs.dances import DANCE_NAMES
from memrl.envs.glyphs import COLOUR_NAMES, SHAPES
from memrl.envs.room_ballet import (
    NUM_COLOURS,
    NUM_SHAPES,
    PHASE_QUERY,
    PHASE_VISIT_END,
    PHASE_WATCH,
    QUESTION_TYPES,
    _validate,
    dance_frame,
    describe_rooms,
    move_table,
    plan_size,
    pose_questions,
    question_text,
    random_walk,
    render_rooms,
    room_ballet_spaces,
    sample_plans,
)

EPISODES_PER_REFILL = 32
"""Episodes each sub-environment pre-draws at a time."""

# Names of info["memory"] as object arrays, to be gathered for a batch by one fancy index.
_QUESTION_TYPE_NAMES = np.array(QUESTION_TYPES, dtype=object)
_DANCE_NAME_OBJECTS = np.array(DANCE_NAMES, dtype=object)
_DANCER_NAMES = np.empty((NUM_SHAPES, NUM_COLOURS), dtype=object)  # (shape name, colour name)
for _shape in range(NUM_SHAPES):
    for _colour in range(NUM_COLOURS):
        _DANCER_NAMES[_shape, _colour] = (SHAPES[_shape], COLOUR_NAMES[_colour])


class BatchedRoomBalletEnv(BatchedEnv):
    """Room Ballet, ``num_envs`` episodes stepped together; see ``RoomBalletEnv`` for the task.

    Equal to ``SyncVectorEnv`` over ``RoomBalletEnv`` seed by seed: observations, rewards,
    terminations and infos, laid out as ``SyncVectorEnv`` lays out the single env's (``_key``
    masks). ``reset`` and every step give ``question_type`` (int ``[num_envs]``, index into
    ``QUESTION_TYPES``, of each sub-environment's current episode, so after an autoreset the new
    episode's), ``answer`` (int, -1 while not yet known) and ``action_ignored`` (bool; True on
    autoreset steps, the reset info's value); steps give ``is_success`` (bool), masked off on
    autoreset steps; ``reset``, autoreset steps and final steps give ``memory``, the episode's
    plan. :meth:`episode_memory` returns the plan of one sub-environment's current
    episode at any time.

    Args:
        num_envs: Number of sub-environments.
        rooms: Rows and columns of rooms.
        num_events: Visits in the observation phase.
        stay_steps: Steps per visit.
        question: One of ``QUESTION_CHOICES``.
        movement: ``"passive"`` or ``"active"``.
        max_episode_steps: Truncate at this many steps (None: episodes end by themselves).
        render_mode: ``"rgb_array"``, ``"ansi"`` or None.
    """

    def __init__(
        self,
        num_envs: int,
        rooms: tuple[int, int] = (3, 3),
        num_events: int = 18,
        stay_steps: int = 2,
        question: str = "mixed",
        movement: str = "passive",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        rows, cols = _validate(rooms, num_events, stay_steps, question, movement)
        observation_space, action_space = room_ballet_spaces(rows * cols, int(num_events))
        super().__init__(num_envs, observation_space, action_space, max_episode_steps, render_mode)
        self.rows, self.cols = rows, cols
        self.num_rooms = rows * cols
        self.num_events = e = int(num_events)
        self.stay_steps = s = int(stay_steps)
        self.question = question
        self.movement = movement
        self.query_time = q = e * s
        self._plan_size = plan_size(self.num_rooms, e)
        # Tables indexed by the step t of an episode (0..query_time).
        t = np.arange(q + 1)
        self._event_of = t // s  # query step -> num_events (the all-zero view row)
        self._visit_of = np.minimum(t // s, e - 1)
        self._phase_of = np.where(t % s == s - 1, PHASE_VISIT_END, PHASE_WATCH)
        self._phase_of[q] = PHASE_QUERY
        self._moves_at = (t % s == s - 1) & (t // s + 1 < e)
        self._moves = move_table(rows, cols)

        # Episode buffers: EPISODES_PER_REFILL rows per sub-environment.
        m = EPISODES_PER_REFILL
        rows_total = self.num_envs * m
        r = self.num_rooms
        self._visits = np.zeros((rows_total, e), dtype=np.int64)
        self._dances = np.zeros((rows_total, e), dtype=np.int64)
        self._appearance = np.zeros((rows_total, r, 2), dtype=np.uint8)  # shape + 1, colour + 1
        self._views = np.zeros((rows_total, e + 1, 3), dtype=np.uint8)  # row e: the query step
        self._questions = np.zeros((rows_total, 2, 3), dtype=np.int64)  # [no question, question]
        self._answer = np.zeros(rows_total, dtype=np.int64)
        self._type = np.zeros(rows_total, dtype=np.int64)
        self._rank = np.zeros((rows_total, r))
        self._visit_uniform = np.zeros(rows_total)
        self._counts = np.zeros((rows_total, r), dtype=np.int64)
        self._slot = np.full(self.num_envs, m, dtype=np.int64)  # m: buffer empty
        self._row = np.arange(self.num_envs, dtype=np.int64) * m
        self._t = np.zeros(self.num_envs, dtype=np.int64)

    # -- buffers ---------------------------------------------------------------------------------

    def _reseeded(self, indices: np.ndarray) -> None:
        self._slot[indices] = EPISODES_PER_REFILL  # pre-drawn episodes of old seeds are void

    def _refill(self, env: int) -> None:
        """Draw and prepare the next ``EPISODES_PER_REFILL`` episodes of sub-environment ``env``."""
        m, e = EPISODES_PER_REFILL, self.num_events
        uniforms = self.rngs[env].random(m * self._plan_size).reshape(m, self._plan_size)
        plans = sample_plans(uniforms, self.num_rooms, e, self.question)
        rows = slice(env * m, (env + 1) * m)
        self._dances[rows] = plans.dances
        appearance = np.stack([plans.dancer_shape, plans.dancer_colour], axis=-1) + 1
        self._appearance[rows] = appearance
        self._type[rows] = plans.question_type
        self._rank[rows] = plans.room_rank
        self._visit_uniform[rows] = plans.visit_uniform
        views = self._views[rows]
        views[:, :e, 2] = plans.dances + 1
        if self.movement == "passive":
            visits = random_walk(plans.start_room, plans.walk_moves, self.rows, self.cols)
            self._visits[rows] = visits
            views[:, :e, :2] = appearance[np.arange(m)[:, None], visits]
            self._pose(np.arange(env * m, (env + 1) * m), visits_counts=None)
        else:
            self._visits[rows, 0] = plans.start_room
            views[:, 0, :2] = appearance[np.arange(m), plans.start_room]
            self._counts[rows] = 0
            self._counts[np.arange(env * m, (env + 1) * m), plans.start_room] = 1
        self._slot[env] = 0

    def _pose(self, rows: np.ndarray, visits_counts: np.ndarray | None) -> None:
        """Pose the questions of buffer rows ``rows`` from their visits."""
        room, visit, answer = pose_questions(
            self._visits[rows],
            self._dances[rows],
            self._type[rows],
            self._rank[rows],
            self._visit_uniform[rows],
            visits_counts,
        )
        self._answer[rows] = answer
        self._questions[rows, 1] = np.stack([self._type[rows] + 1, room + 1, visit], axis=1)

    # -- hooks -----------------------------------------------------------------------------------

    def _reset_envs(self, indices: np.ndarray) -> dict[str, Any]:
        self._slot[indices] += 1
        for env in indices[self._slot[indices] >= EPISODES_PER_REFILL]:
            self._refill(int(env))
        self._row[indices] = indices * EPISODES_PER_REFILL + self._slot[indices]
        self._t[indices] = 0
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[indices] = True
        known = self.movement == "passive"
        return {
            "memory": self._memory_info(indices, known=known),
            "_memory": mask,
            "question_type": np.where(mask, self._type[self._row], 0),
            "_question_type": mask,
            "answer": np.where(mask, self._answer[self._row] if known else -1, 0),
            "_answer": mask,
            "action_ignored": mask.copy(),
            "_action_ignored": mask,
        }

    def _step_envs(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        t, row = self._t, self._row
        answering = t == self.query_time
        success = answering & (actions == self._answer[row]) & active
        # Only the answer and, in the active variant, the moves take the action into account.
        ignored = ~answering
        if self.movement == "active":
            ignored &= ~self._moves_at[t]
            self._move(actions, active)
        t += active & ~answering
        if self.movement == "active":
            entering = active & (t == self.query_time)
            if entering.any():
                rows = row[entering]
                self._pose(rows, self._counts[rows])
        # As the single env: the answer is -1 until known (the active variant, before the query).
        answer = self._answer[row]
        if self.movement == "active":
            answer = np.where(t >= self.query_time, answer, -1)
        info: dict[str, Any] = {
            "is_success": success,
            "_is_success": active,
            "answer": np.where(active, answer, 0),
            "_answer": active,
            "question_type": np.where(active, self._type[row], 0),
            "_question_type": active,
            "action_ignored": ignored,
            "_action_ignored": active,
        }
        ended = answering & active
        if ended.any():
            info["memory"] = self._memory_info(np.flatnonzero(ended), known=True)
            info["_memory"] = ended
        return success.astype(np.float64), answering, info

    def _memory_info(self, indices: np.ndarray, known: bool) -> dict[str, np.ndarray]:
        """``info["memory"]`` of the episodes of ``indices``, laid out as ``SyncVectorEnv`` does.

        Each key of the single env's memory is an array over all sub-environments (int64 for
        integers, else an object array holding the single env's str, tuple, list or None), 0 or
        None outside ``indices``, with its ``_key`` mask. ``known``: the visits, question and
        answer are decided (always in the passive variant; at the end in the active one).
        """
        n = self.num_envs
        rows = self._row[indices]
        mask = np.zeros(n, dtype=bool)
        mask[indices] = True

        def objects(values: Any) -> np.ndarray:
            out = np.full(n, None, dtype=object)
            if isinstance(values, np.ndarray):
                out[indices] = values
            else:  # a list of lists or tuples: one per index, not broadcast by numpy
                for i, value in zip(indices.tolist(), values, strict=True):
                    out[i] = value
            return out

        def integers(values: np.ndarray) -> np.ndarray:
            out = np.zeros(n, dtype=np.int64)
            out[indices] = values
            return out

        appearance = self._appearance[rows].astype(np.int64) - 1  # [k, rooms, 2]
        question = self._questions[rows, 1]  # [k, 3]: type + 1, room + 1, visit
        k = len(indices)
        memory: dict[str, np.ndarray] = {
            "question_type": objects(_QUESTION_TYPE_NAMES[self._type[rows]]),
            "movement": objects(np.full(k, self.movement, dtype=object)),
            "rooms": objects([(self.rows, self.cols)] * k),
            "dancers": objects(_DANCER_NAMES[appearance[..., 0], appearance[..., 1]].tolist()),
            "start_room": integers(self._visits[rows, 0]),
            "dances": objects(self._dances[rows].tolist()),
        }
        if known:
            answer = self._answer[rows]
            memory |= {
                "visits": objects(self._visits[rows].tolist()),
                "queried_room": integers(question[:, 1] - 1),
                "queried_visit": integers(question[:, 2]),
                "answer": integers(answer),
                "answer_name": objects(_DANCE_NAME_OBJECTS[answer]),
            }
        else:
            undecided = np.full(k, -1, dtype=np.int64)
            memory |= {
                "visits": objects(np.full(k, None, dtype=object)),
                "queried_room": integers(undecided),
                "queried_visit": integers(undecided),
                "answer": integers(undecided),
                "answer_name": objects(np.full(k, None, dtype=object)),
            }
        memory |= {f"_{key}": mask for key in list(memory)}
        return memory

    def _move(self, actions: np.ndarray, active: np.ndarray) -> None:
        """Active variant: sub-environments at the last step of a visit move as commanded."""
        moving = active & self._moves_at[self._t]
        if not moving.any():
            return
        rows = self._row[moving]
        nxt = self._visit_of[self._t[moving]] + 1
        here = self._visits[rows, nxt - 1]
        there = self._moves[here, actions[moving]]
        self._visits[rows, nxt] = there
        self._views[rows, nxt, :2] = self._appearance[rows, there]
        self._counts[rows, there] += 1

    def _observe(self) -> dict[str, np.ndarray]:
        t, row = self._t, self._row
        phase = self._phase_of[t]
        return {
            "place": self._visits[row, self._visit_of[t]],
            "view": self._views[row, self._event_of[t]],
            "phase": phase,
            "question": self._questions[row, (phase == PHASE_QUERY).view(np.int8)],
        }

    # -- inspection ------------------------------------------------------------------------------

    def episode_memory(self, index: int) -> dict[str, Any]:
        """The plan of sub-environment ``index``'s current episode, as the single env's memory."""
        known = self.movement == "passive" or bool(self._t[index] >= self.query_time)
        batch = self._memory_info(np.array([index]), known)
        return {
            key: value.item() if isinstance(value, np.generic) else value
            for key, value in ((key, values[index]) for key, values in batch.items())
            if not key.startswith("_")
        }

    def _render_env(self, index: int) -> Any:
        row, t = int(self._row[index]), int(self._t[index])
        appearance = self._appearance[row].astype(np.int64) - 1
        place = int(self._visits[row, self._visit_of[t]])
        querying = t >= self.query_time
        event = int(self._visit_of[t])
        dance = None if querying else int(self._dances[row, event])
        question = self._questions[row, 1]
        if self.render_mode == "rgb_array":
            return render_rooms(
                self.rows,
                self.cols,
                appearance[:, 0],
                appearance[:, 1],
                place,
                dance,
                dance_frame(t, self.stay_steps),
                int(question[1]) - 1 if querying else None,
            )
        if querying:
            text = question_text(int(question[0]) - 1, int(question[1]) - 1, int(question[2]))
            status = f"query | {text}"
        else:
            status = f"watch | visit {event + 1}/{self.num_events}, step {t + 1}/{self.query_time}"
        return describe_rooms(
            self.rows, self.cols, appearance[:, 0], appearance[:, 1], place, dance, status
        )


__all__ = ["EPISODES_PER_REFILL", "BatchedRoomBalletEnv"]
