"""Ballet stepped for N episodes at once with numpy: the ``vector_entry_point`` of every Ballet id.

Same semantics as :class:`memrl.envs.ballet.BalletEnv` under ``SyncVectorEnv`` (seed ``s + i`` for
sub-environment i, ``NEXT_STEP`` autoreset, truncation at ``max_episode_steps``), checked seed by
seed by the registry tests. Episodes are sampled and laid out by the same functions as the single
env (:func:`~memrl.envs.ballet.sample_episodes`, :func:`~memrl.envs.ballet.build_layout`).

How a step stays cheap: each sub-environment keeps its room padded by 5 cells of floor on every
side (plus one hidden scratch row), as cell values (grid mode, ``[N, 22 * 21]`` uint16) or as
pixels (image mode, ``[N, 198, 189 * 3]`` uint8). A step writes at most four cells per
sub-environment (the dancer on stage leaves one cell and enters another, the agent does the same)
and the egocentric view is then a fixed-size window of the padded room: the grid view is 11 runs
of 11 cells, the image 99 runs of 297 bytes, gathered for the whole batch by one fancy index into
an overlapping strided view of the padded rooms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from memrl.envs.ballet import (
    AGENT_START_CELL,
    GRID_SHAPE,
    IMAGE_SIZE,
    NEXT_CELL,
    NUM_ACTIONS,
    OUTCOME_NONE,
    OUTCOME_OTHER,
    OUTCOME_TARGET,
    RENDER_MODES,
    ROOM_CELLS,
    ROOM_SIZE,
    ROOM_TEMPLATE,
    SCRATCH,
    SLOT_ACTIONS,
    VIEW_RADIUS,
    VIEW_SIZE,
    BalletEpisodes,
    build_layout,
    choice_step,
    make_observation_space,
    memory_batch,
    render_frame,
    sample_episodes,
    validate_kwargs,
)
from memrl.envs.batched import BatchedEnv
from memrl.envs.glyphs import AGENT, CELL_PIXELS, FLOOR, glyph_atlas, render_cells

# -- the padded room -----------------------------------------------------------------------------
# Padded cell p = row * 21 + col; room cell (r, c) is padded (r + 5, c + 5); row 21 is scratch.
_WIDTH = ROOM_SIZE + 2 * VIEW_RADIUS  # 21
_ROWS = _WIDTH + 1  # 22
_PADDED_CELLS = _ROWS * _WIDTH  # 462
_SCRATCH_CELL = _WIDTH * _WIDTH  # first cell of the scratch row, never in a view
_ROW_PIXELS = _WIDTH * CELL_PIXELS * 3  # 567 bytes per pixel row of the padded canvas
_CANVAS_ROWS = _ROWS * CELL_PIXELS  # 198


def _padded_of_room() -> np.ndarray:
    """Padded cell of every room-array index (``SCRATCH`` -> the scratch row)."""
    cells = np.arange(ROOM_CELLS)
    padded = np.full(SCRATCH + 1, _SCRATCH_CELL, dtype=np.intp)
    padded[:ROOM_CELLS] = (
        (cells // ROOM_SIZE + VIEW_RADIUS) * _WIDTH + cells % ROOM_SIZE + VIEW_RADIUS
    )
    return padded


_PADDED_OF_ROOM = _padded_of_room()
_ROOM_OF_PADDED = np.full(_PADDED_CELLS, -1, dtype=np.intp)
_ROOM_OF_PADDED[_PADDED_OF_ROOM[:ROOM_CELLS]] = np.arange(ROOM_CELLS)
_AGENT_START = int(_PADDED_OF_ROOM[AGENT_START_CELL])

# Agent moves as one flat table indexed by block + padded cell * 9 + action: block 0 maps every
# action to "stay" (actions are ignored until after choice_step), block _MOVE_BLOCK holds the moves.
_ACTIONS_PER_CELL = NUM_ACTIONS + 1
_MOVE_BLOCK = _PADDED_CELLS * _ACTIONS_PER_CELL


def _next_cells() -> np.ndarray:
    stay = np.repeat(np.arange(_PADDED_CELLS)[:, None], _ACTIONS_PER_CELL, axis=1)
    move = stay.copy()
    move[_PADDED_OF_ROOM[:ROOM_CELLS]] = _PADDED_OF_ROOM[NEXT_CELL]
    return np.concatenate([stay.ravel(), move.ravel()])


_NEXT_CELLS = _next_cells()

# Grid mode: the view of an agent at padded cell p starts at cell p - _GRID_VIEW_OFFSET and is
# 11 runs of 11 cells, one run per padded row.
_GRID_VIEW_OFFSET = VIEW_RADIUS * _WIDTH + VIEW_RADIUS
_GRID_RUNS = np.arange(VIEW_SIZE, dtype=np.intp) * _WIDTH
_GRID_RUN_BYTES = VIEW_SIZE * 2
_GRID_SIZE = int(np.prod(GRID_SHAPE))
_GRID_TEMPLATE = np.zeros(_PADDED_CELLS, dtype="<u2")
_GRID_TEMPLATE[_PADDED_OF_ROOM[:ROOM_CELLS]] = ROOM_TEMPLATE

# Image mode: the canvas is read and written in runs of 27 bytes (one glyph row, 9 pixels) that
# start at multiples of 27 bytes, so a pixel row of the canvas is 21 runs. Padded cell p's glyph
# row y is run _CELL_RUN[p] + 21 * y of its sub-environment's canvas.
_RUNS_PER_ENV = _CANVAS_ROWS * _WIDTH  # 4158
_GLYPH_RUN_BYTES = CELL_PIXELS * 3  # 27
_CELL_RUN = (
    np.arange(_PADDED_CELLS) // _WIDTH * CELL_PIXELS * _WIDTH + np.arange(_PADDED_CELLS) % _WIDTH
)
_GLYPH_ROW_RUNS = np.arange(CELL_PIXELS, dtype=np.intp) * _WIDTH  # [9]
_IMAGE_VIEW_OFFSET = VIEW_RADIUS * CELL_PIXELS * _WIDTH + VIEW_RADIUS
_IMAGE_RUNS = np.arange(IMAGE_SIZE, dtype=np.intp) * _WIDTH  # 99 pixel rows of 297 bytes
_IMAGE_RUN_BYTES = IMAGE_SIZE * 3
_GLYPH_ROWS = (  # glyph row y of code c is item c * 9 + y
    np.ascontiguousarray(glyph_atlas()).reshape(-1, _GLYPH_RUN_BYTES).view(f"V{_GLYPH_RUN_BYTES}")
).reshape(-1)
_FLOOR_ROWS = _GLYPH_ROWS[FLOOR * CELL_PIXELS : (FLOOR + 1) * CELL_PIXELS].copy()
_AGENT_ROWS = _GLYPH_ROWS[AGENT * CELL_PIXELS : (AGENT + 1) * CELL_PIXELS].copy()
_CANVAS_TEMPLATE = np.ascontiguousarray(
    render_cells(_GRID_TEMPLATE.reshape(_ROWS, _WIDTH).astype(np.intp)).reshape(
        _CANVAS_ROWS, _ROW_PIXELS
    )
)

# Columns of the per-env step tables (one row per step t = 0 .. choice_step + 1): where the dancer
# on stage leaves and enters (flat write positions in its sub-environment's padded room), the
# values written there, the instruction shown, and the action block of _NEXT_CELLS.
_FROM, _TO, _FLOOR, _VALUE, _INSTRUCTION, _ACTION_BLOCK = range(6)
_COLUMNS = 6

_AGENT_CODE = np.array([AGENT], dtype=np.uint16)
for _table in (_PADDED_OF_ROOM, _ROOM_OF_PADDED, _NEXT_CELLS, _GRID_TEMPLATE, _CANVAS_TEMPLATE):
    _table.flags.writeable = False


def _runs(buffer: np.ndarray, run_bytes: int, stride: int) -> np.ndarray:
    """An overlapping view of ``buffer``: item k is the ``run_bytes`` bytes at ``k * stride``."""
    count = (buffer.nbytes - run_bytes) // stride + 1
    return np.ndarray((count,), dtype=f"V{run_bytes}", buffer=buffer, strides=(stride,))


class BatchedBalletEnv(BatchedEnv):
    """``num_envs`` Ballet episodes stepped together; see :class:`memrl.envs.ballet.BalletEnv`.

    Observations are the single env's stacked along a leading axis (``instruction`` ``[N]`` int64,
    ``image`` ``[N, 99, 99, 3]`` or ``grid`` ``[N, 242]`` uint8). Infos are laid out as
    ``SyncVectorEnv`` lays out the single env's: ``is_success`` ``[N]`` bool with mask
    ``_is_success`` (False on autoreset steps); ``answer`` ``[N]`` int64 (the action from the start
    onto the target's slot, ``SLOT_ACTIONS``) and ``action_ignored`` ``[N]`` bool, from ``reset()``
    and on every step for every sub-environment (on an autoreset step, the new episode's answer and
    True, as the single env's reset info gives them); and, from ``reset()``, on steps where some
    sub-environments start a new episode and on steps where some terminate, ``memory``: each entry
    of the single env's ``info["memory"]`` as an array with a leading ``[N]`` axis (names as object
    arrays), masked by ``_memory`` and by ``memory["_<key>"]``.

    Args:
        num_envs: Number of sub-environments.
        num_dancers: Dancers per episode (1..8).
        dance_delay: Still steps after each dance (>= 0).
        observation: ``"image"`` or ``"grid"``.
        max_episode_steps: Truncate episodes at this many steps (None: never).
        render_mode: None, ``"rgb_array"`` or ``"ansi"`` (``render()`` returns one per env).
    """

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "render_fps": 8,
        "observation_shapes": {"grid": GRID_SHAPE},
    }

    def __init__(
        self,
        num_envs: int,
        num_dancers: int = 2,
        dance_delay: int = 16,
        observation: str = "image",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        validate_kwargs(num_dancers, dance_delay, observation, render_mode)
        assert tuple(self.metadata["render_modes"]) == RENDER_MODES
        super().__init__(
            num_envs,
            make_observation_space(observation),
            spaces.Discrete(NUM_ACTIONS),
            max_episode_steps=max_episode_steps,
            render_mode=render_mode,
        )
        self.num_dancers = int(num_dancers)
        self.dance_delay = int(dance_delay)
        self.observation_type = observation
        self.choice_step = choice_step(self.num_dancers, self.dance_delay)
        self._image = observation == "image"
        n, steps = self.num_envs, self.choice_step + 2
        every = np.arange(n, dtype=np.intp)
        # Offsets of each sub-environment in flattened per-env arrays.
        self._cell_base = every * _PADDED_CELLS  # padded cells (grid values, outcomes)
        self._run_base = every * _RUNS_PER_ENV  # 27-byte runs of the canvases
        self._table_base = every * steps
        self._table_last = self._table_base + steps - 1  # the row standing for all later steps
        # Per-step columns shared by every episode: the instruction shows from choice_step on,
        # and actions count after it.
        self._showing = (np.arange(steps) >= self.choice_step).astype(np.intp)
        # State; every array has a leading [N] axis.
        if self._image:
            self._canvas = np.zeros((n, _CANVAS_ROWS, _ROW_PIXELS), dtype=np.uint8)
        else:
            self._cells = np.zeros((n, _PADDED_CELLS), dtype="<u2")
        self._tables = np.zeros((n, steps, _COLUMNS), dtype=np.intp)
        self._tables[..., _ACTION_BLOCK] = np.where(
            np.arange(steps) > self.choice_step, _MOVE_BLOCK, 0
        )
        self._outcome = np.zeros((n, _PADDED_CELLS), dtype=np.int8)
        self._entry = self._table_base.copy()  # row of (env, min(step, choice_step + 1))
        self._instruction = np.zeros(n, dtype=np.int64)  # shown by the current observation
        self._agent = np.full(n, _AGENT_START, dtype=np.intp)  # padded cell
        self._episodes = BalletEpisodes(
            dancers=np.zeros((n, 4, self.num_dancers), np.int64), target=np.zeros(n, np.int64)
        )
        self._memory_mask_keys: tuple[str, ...] = ()

    # -- hooks ---------------------------------------------------------------------------------

    def _reset_envs(self, indices: np.ndarray) -> dict[str, Any]:
        episodes = sample_episodes([self.rngs[i] for i in indices], self.num_dancers)
        layout = build_layout(episodes, self.dance_delay, self.observation_type)
        homes = _PADDED_OF_ROOM[layout.homes]  # [B, n]
        starts = _PADDED_OF_ROOM[layout.start_cells]  # [B, n]
        moves = _PADDED_OF_ROOM[layout.move_cells]  # [B, T, 2]
        if self._image:
            moves = _CELL_RUN[moves]
            starts_runs = _CELL_RUN[starts]
        for b, i in enumerate(indices.tolist()):  # per env: plain views, few small writes
            table = self._tables[i]
            if self._image:
                self._canvas[i] = _CANVAS_TEMPLATE
                base = i * _RUNS_PER_ENV
                self._paint(base + starts_runs[b], layout.values[b])
                self._paint(base + _CELL_RUN[_AGENT_START : _AGENT_START + 1], _AGENT_CODE)
            else:
                cells = self._cells[i]
                cells[:] = _GRID_TEMPLATE
                cells[starts[b]] = layout.values[b]
                cells[_AGENT_START] = AGENT
                base = i * _PADDED_CELLS
            np.add(moves[b], base, out=table[:, _FROM : _TO + 1])
            table[:, _VALUE] = layout.move_values[b]
            np.multiply(self._showing, layout.instruction[b], out=table[:, _INSTRUCTION])
            outcome = self._outcome[i]
            outcome[:] = OUTCOME_NONE
            outcome[homes[b]] = OUTCOME_OTHER
            outcome[homes[b, episodes.target[b]]] = OUTCOME_TARGET
            self._entry[i] = self._table_base[i]
        self._instruction[indices] = 0
        self._agent[indices] = _AGENT_START
        self._episodes.dancers[indices] = episodes.dancers
        self._episodes.target[indices] = episodes.target
        info = self._memory_info(indices)
        mask = info["_memory"]
        # As the single env's reset info: the answer, and True for "action ignored".
        info["answer"] = np.where(mask, self._answers(), 0)
        info["_answer"] = mask
        info["action_ignored"] = mask.copy()
        info["_action_ignored"] = mask
        return info

    def _answers(self) -> np.ndarray:
        """``[N]`` each current episode's answer: the action from the start onto its target."""
        episodes = self._episodes
        return SLOT_ACTIONS[episodes.slots[np.arange(self.num_envs), episodes.target]]

    def _memory_info(self, indices: np.ndarray) -> dict[str, Any]:
        """``info["memory"]`` of the current episodes of ``indices``, as in ``SyncVectorEnv``."""
        episodes = BalletEpisodes(
            dancers=self._episodes.dancers[indices], target=self._episodes.target[indices]
        )
        memory = memory_batch(episodes, self.dance_delay, size=self.num_envs, rows=indices)
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[indices] = True
        if not self._memory_mask_keys:
            self._memory_mask_keys = tuple(f"_{key}" for key in memory)
        memory.update(dict.fromkeys(self._memory_mask_keys, mask))
        return {"memory": memory, "_memory": mask}

    def _paint(self, runs: np.ndarray, codes: np.ndarray) -> None:
        """Draw glyphs ``codes`` at canvas cells whose first run is ``runs`` (same shapes)."""
        self._canvas.reshape(-1).view(_GLYPH_ROWS.dtype).put(
            runs[..., None] + _GLYPH_ROW_RUNS,
            _GLYPH_ROWS.take(codes[..., None].astype(np.intp) * CELL_PIXELS + np.arange(9)),
        )

    def _step_envs(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        entry = self._entry
        entry += 1
        np.minimum(entry, self._table_last, out=entry)
        row = self._tables.reshape(-1, _COLUMNS).take(entry, axis=0)  # [N, _COLUMNS]
        self._instruction = row[:, _INSTRUCTION]
        ignored = row[:, _ACTION_BLOCK] == 0  # watching: every action maps to "stay"
        # Choosing: the agent moves (walls block); before, every action maps to "stay".
        here = self._agent
        there = _NEXT_CELLS.take(row[:, _ACTION_BLOCK] + here * _ACTIONS_PER_CELL + actions)
        self._agent = there
        # Watching: the dancer on stage (if any) leaves one cell and enters the next (steps
        # without a move write into the scratch row). Then the agent, drawn over any dancer.
        if self._image:
            glyph_runs = self._canvas.reshape(-1).view(_GLYPH_ROWS.dtype)
            leave = np.stack([row[:, _FROM], self._run_base + _CELL_RUN.take(here)], axis=1)
            glyph_runs.put(leave[..., None] + _GLYPH_ROW_RUNS, _FLOOR_ROWS)
            glyph_runs.put(
                row[:, _TO, None] + _GLYPH_ROW_RUNS,
                _GLYPH_ROWS.take(row[:, _VALUE, None] * CELL_PIXELS + np.arange(9)),
            )
            glyph_runs.put(
                (self._run_base + _CELL_RUN.take(there))[:, None] + _GLYPH_ROW_RUNS, _AGENT_ROWS
            )
        else:
            cells = self._cells.reshape(-1)
            cells.put(row[:, _FROM : _TO + 1], row[:, _FLOOR : _VALUE + 1])
            cells[self._cell_base + here] = FLOOR
            cells[self._cell_base + there] = AGENT
        outcome = self._outcome.reshape(-1).take(self._cell_base + there)
        terminated = outcome != OUTCOME_NONE
        success = outcome == OUTCOME_TARGET
        success &= active
        info: dict[str, Any] = {
            "is_success": success,
            "_is_success": active,
            "answer": self._answers(),
            "_answer": active,
            "action_ignored": ignored,
            "_action_ignored": active,
        }
        ended = terminated & active
        if ended.any():  # the single env repeats its memory on the terminating step
            info |= self._memory_info(np.flatnonzero(ended))
        return success.astype(np.float64), terminated, info

    def _observe(self) -> dict[str, np.ndarray]:
        instruction = self._instruction.copy()
        n = self.num_envs
        if self._image:
            runs = _runs(self._canvas, _IMAGE_RUN_BYTES, _GLYPH_RUN_BYTES)
            first = self._run_base + _CELL_RUN.take(self._agent) - _IMAGE_VIEW_OFFSET
            image = runs[first[:, None] + _IMAGE_RUNS]  # [N, 99] runs of 99 pixels
            return {
                "image": image.view(np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE, 3),
                "instruction": instruction,
            }
        runs = _runs(self._cells, _GRID_RUN_BYTES, 2)
        first = self._cell_base + self._agent - _GRID_VIEW_OFFSET
        grid = runs[first[:, None] + _GRID_RUNS]  # [N, 11] runs of 11 cells
        return {"grid": grid.view(np.uint8).reshape(n, _GRID_SIZE), "instruction": instruction}

    def _render_env(self, index: int) -> np.ndarray | str:
        assert self.render_mode is not None
        return render_frame(
            self.render_mode,
            self._episodes,
            index,
            int(self._elapsed_steps[index]),  # BatchedEnv's count of this episode's steps
            int(_ROOM_OF_PADDED[self._agent[index]]),
            self.dance_delay,
        )
