"""HCAM's Ballet: watch dancers perform one by one, then walk to the one who did the named dance.

This module holds the single environment, :class:`BalletEnv`, and the pieces it shares with the
numpy-batched :class:`memrl.envs.ballet_vector.BatchedBalletEnv`: keyword validation, the episode
sampler (:func:`sample_episodes`), the episode tables both step from (:func:`build_layout`), the
``info["memory"]`` entries (:func:`memory_batch`) and rendering (:func:`render_frame`). Sharing
them is what keeps the two implementations identical draw by draw.

Cells of the 11x11 room are numbered ``row * 11 + col`` ("flat cells"); :data:`SCRATCH` (121)
stands for "no cell" in the move tables. A cell's value is a glyph-atlas code in image mode and,
in grid mode, the two grid channels packed as ``symbol | colour << 8``, so that the little-endian
bytes of an array of values are the grid observation. Floor, wall and agent have the same value in
both modes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from memrl.envs.actions import check_discrete_action
from memrl.envs.dances import (
    DANCE_LENGTH,
    DANCE_NAMES,
    DANCE_OFFSETS,
    DIRECTION_DELTAS,
    DIRECTIONS,
    NUM_DANCES,
)
from memrl.envs.glyphs import (
    AGENT,
    CELL_PIXELS,
    COLOUR_NAMES,
    FLOOR,
    SHAPES,
    WALL,
    dancer_code,
    glyph_atlas,
    render_cells,
)

# -- geometry ------------------------------------------------------------------------------------

ROOM_SIZE = 11
"""Side of the room in cells, walls included."""
ROOM_CELLS = ROOM_SIZE * ROOM_SIZE
SCRATCH = ROOM_CELLS
"""Stands for "no cell" in move tables (steps on which no dancer moves); never drawn."""
VIEW_SIZE = 11
"""Side of the egocentric view in cells; the agent is at its centre."""
VIEW_RADIUS = VIEW_SIZE // 2
IMAGE_SIZE = VIEW_SIZE * CELL_PIXELS  # 99
GRID_SHAPE = (VIEW_SIZE, VIEW_SIZE, 2)
"""Shape of the symbolic view; the ``grid`` observation is it flattened in C order."""

DANCER_SLOTS: tuple[tuple[int, int], ...] = (
    (2, 2), (2, 5), (2, 8), (5, 2), (5, 8), (8, 2), (8, 5), (8, 8),
)  # fmt: skip
"""Home cells (row, col) of the eight dancer slots."""
NUM_SLOTS = len(DANCER_SLOTS)
AGENT_START = (5, 5)
AGENT_START_CELL = AGENT_START[0] * ROOM_SIZE + AGENT_START[1]
NUM_ACTIONS = len(DIRECTION_DELTAS)
SLOT_ACTIONS = np.array(
    [[tuple(d) for d in DIRECTION_DELTAS.tolist()].index(
        (int(np.sign(r - AGENT_START[0])), int(np.sign(c - AGENT_START[1]))))
     for r, c in DANCER_SLOTS],
    dtype=np.int64,
)  # fmt: skip
"""Per slot, the action that walks the agent from its start straight onto it (3 moves, no other
slot in between): every slot lies on one of the eight directions from the centre. Ballet's
``info["answer"]`` is this action for the target's slot."""
STAY = NUM_ACTIONS
"""Pseudo-action used internally while actions are ignored."""

MAX_DANCERS = NUM_SLOTS
OBSERVATIONS = ("image", "grid")
RENDER_MODES = ("rgb_array", "ansi")
RENDER_SCALE = 4
"""Pixels per glyph pixel in ``rgb_array`` frames (396x396)."""

# Grid symbols (channel 0); channel 1 is the dancer's colour index + 1 (0 for everything else).
GRID_FLOOR, GRID_WALL, GRID_AGENT, GRID_FIRST_DANCER = 0, 1, 2, 3
GRID_HIGH = np.tile(
    np.array([GRID_FIRST_DANCER + len(SHAPES) - 1, len(COLOUR_NAMES)], dtype=np.uint8),
    VIEW_SIZE * VIEW_SIZE,
)
"""Upper bound of every entry of the flat grid observation: 17 for symbols, 19 for colours."""

INSTRUCTION_WATCH = 0
NUM_INSTRUCTIONS = NUM_DANCES + 1
INSTRUCTION_NAMES: tuple[str, ...] = ("watch", *DANCE_NAMES)
"""Name of every instruction token: 0 is "watch", ``k + 1`` is dance ``k``."""

# Uniform draws per episode: one per slot, dance, shape and colour (argsorted into random orders)
# and one for the target. A single ``rng.random(EPISODE_DRAWS)`` call per episode keeps the single
# and batched envs in lockstep and resets cheap.
_POOLS = (NUM_SLOTS, NUM_DANCES, len(SHAPES), len(COLOUR_NAMES))
_POOL_STARTS = tuple(int(s) for s in np.cumsum((0, *_POOLS))[:-1])
EPISODE_DRAWS = sum(_POOLS) + 1


def _room_template() -> np.ndarray:
    room = np.full(ROOM_CELLS, FLOOR, dtype="<u2")
    grid = room.reshape(ROOM_SIZE, ROOM_SIZE)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = WALL
    return room


ROOM_TEMPLATE = _room_template()
"""``[ROOM_CELLS]``: values of the empty room (walls and floor), the same in both modes."""
ROOM_TEMPLATE.flags.writeable = False

SLOT_CELLS = np.array([r * ROOM_SIZE + c for r, c in DANCER_SLOTS], dtype=np.intp)
DANCE_CELL_OFFSETS = DANCE_OFFSETS[..., 0] * ROOM_SIZE + DANCE_OFFSETS[..., 1]
"""``[13, 16]``: flat-cell offset from home after each move of each dance."""
_DANCE_CELL_OFFSETS_BEFORE = np.concatenate(
    [np.zeros((NUM_DANCES, 1), dtype=np.int64), DANCE_CELL_OFFSETS[:, :-1]], axis=1
)


def _next_cell_table() -> np.ndarray:
    """``[ROOM_CELLS, NUM_ACTIONS + 1]``: the agent's cell after each action (last: stay)."""
    table = np.repeat(np.arange(ROOM_CELLS, dtype=np.intp)[:, None], NUM_ACTIONS + 1, axis=1)
    for cell in range(ROOM_CELLS):
        row, col = divmod(cell, ROOM_SIZE)
        for action, (d_row, d_col) in enumerate(DIRECTION_DELTAS.tolist()):
            r, c = row + d_row, col + d_col
            if 1 <= r <= ROOM_SIZE - 2 and 1 <= c <= ROOM_SIZE - 2:  # walls block
                table[cell, action] = r * ROOM_SIZE + c
    return table


NEXT_CELL = _next_cell_table()
NEXT_CELL.flags.writeable = False


# -- keywords ------------------------------------------------------------------------------------


def validate_kwargs(
    num_dancers: int, dance_delay: int, observation: str, render_mode: str | None
) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones."""
    if isinstance(num_dancers, bool) or not isinstance(num_dancers, int | np.integer):
        raise ValueError(f"num_dancers must be an integer in 1..{MAX_DANCERS}, got {num_dancers!r}")
    if not 1 <= num_dancers <= MAX_DANCERS:
        raise ValueError(f"num_dancers must be 1..{MAX_DANCERS}, got {num_dancers}")
    if (
        isinstance(dance_delay, bool)
        or not isinstance(dance_delay, int | np.integer)
        or dance_delay < 1
    ):
        raise ValueError(f"dance_delay must be an integer >= 1, got {dance_delay!r}")
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")


def dance_period(dance_delay: int) -> int:
    """Steps from one dancer's first move to the next dancer's: ``15 + dance_delay``.

    As in DeepMind's pycolab Ballet: ``dance_delay`` steps after a dancer's 16th move, the next
    dancer makes its first move (or, after the last dancer, the instruction shows).
    """
    return DANCE_LENGTH - 1 + dance_delay


def choice_step(num_dancers: int, dance_delay: int) -> int:
    """The step whose observation first carries the instruction: ``n * (15 + delay)``.

    Counted in ``step`` calls after ``reset``: 62, 124, 248 for 2, 4, 8 dancers at delay 16 and
    126, 252, 504 at delay 48, as in DeepMind's pycolab Ballet.
    """
    return num_dancers * dance_period(dance_delay)


def hint_probability(seen: int, curriculum: int) -> float:
    """A curriculum's chance that an episode shows the dance names while they are performed.

    The chance falls linearly from 1 to 0 over the first ``curriculum`` units (labels or env
    steps) of a run, ``seen`` of them in; 0 without a curriculum (``curriculum`` 0). Used by
    ``scripts/ballet_probe.py`` and ``scripts/ballet_diagnostics.py``.
    """
    return max(0.0, 1.0 - seen / curriculum) if curriculum else 0.0


def make_observation_space(observation: str) -> spaces.Dict:
    """The observation space of one env in ``observation`` mode ("image" or "grid")."""
    if observation == "image":
        view: spaces.Box = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    else:
        view = spaces.Box(np.zeros_like(GRID_HIGH), GRID_HIGH.copy(), GRID_HIGH.shape, np.uint8)
    return spaces.Dict({observation: view, "instruction": spaces.Discrete(NUM_INSTRUCTIONS)})


# -- episodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BalletEpisodes:
    """A batch of sampled episodes; every per-dancer array is in performing order.

    Attributes:
        dancers: ``[B, 4, n]`` int64: per dancer its slot index (into :data:`DANCER_SLOTS`),
            dance index (into ``DANCE_NAMES``), shape index (into ``glyphs.SHAPES``) and colour
            index (into ``glyphs.COLOUR_NAMES``); read them through the properties.
        target: ``[B]`` index (in performing order) of the dancer the instruction names.
    """

    dancers: np.ndarray
    target: np.ndarray

    @property
    def num_dancers(self) -> int:
        """Dancers per episode."""
        return self.dancers.shape[2]

    @property
    def slots(self) -> np.ndarray:
        """``[B, n]`` slot index of each dancer."""
        return self.dancers[:, 0]

    @property
    def dances(self) -> np.ndarray:
        """``[B, n]`` dance index of each dancer."""
        return self.dancers[:, 1]

    @property
    def shapes(self) -> np.ndarray:
        """``[B, n]`` shape index of each dancer."""
        return self.dancers[:, 2]

    @property
    def colours(self) -> np.ndarray:
        """``[B, n]`` colour index of each dancer."""
        return self.dancers[:, 3]

    def target_dance(self) -> np.ndarray:
        """``[B]`` dance index of the target dancer."""
        return self.dances[np.arange(len(self.target)), self.target]


# [4, 19]: where each pool's keys sit among an episode's draws; EPISODE_DRAWS pads short pools
# with a key (2.0) that sorts after every real one.
_POOL_KEYS = np.full((len(_POOLS), max(_POOLS)), EPISODE_DRAWS, dtype=np.intp)
for _pool, (_start, _size) in enumerate(zip(_POOL_STARTS, _POOLS, strict=True)):
    _POOL_KEYS[_pool, :_size] = np.arange(_start, _start + _size)


def sample_episodes(rngs: Sequence[np.random.Generator], num_dancers: int) -> BalletEpisodes:
    """Sample one episode from each generator (the single env passes ``[self.np_random]``).

    Each generator is advanced by exactly one ``random(EPISODE_DRAWS)`` call; slots, dances,
    shapes and colours are the first ``num_dancers`` entries of uniformly random orders of their
    pools (so distinct within an episode), and the target is uniform among the dancers.
    """
    draws = np.empty((len(rngs), EPISODE_DRAWS + 1))  # [B, 57]
    draws[:, EPISODE_DRAWS] = 2.0
    for row, rng in zip(draws, rngs, strict=True):
        rng.random(out=row[:EPISODE_DRAWS])
    order = np.argsort(draws[:, _POOL_KEYS], axis=2)  # [B, 4, 19]
    target = (draws[:, EPISODE_DRAWS - 1] * num_dancers).astype(np.int64)
    np.minimum(target, num_dancers - 1, out=target)
    return BalletEpisodes(dancers=order[:, :, :num_dancers].astype(np.int64), target=target)


# [15, 19]: room-array value of a dancer of each (shape, colour), per observation mode.
_DANCER_VALUES = {
    "image": np.asarray(
        dancer_code(np.arange(len(SHAPES))[:, None], np.arange(len(COLOUR_NAMES))[None, :]),
        dtype=np.uint16,
    ),
    "grid": (
        (GRID_FIRST_DANCER + np.arange(len(SHAPES)))[:, None]
        | (np.arange(len(COLOUR_NAMES)) + 1)[None, :] << 8
    ).astype(np.uint16),
}


def dancer_values(episodes: BalletEpisodes, observation: str) -> np.ndarray:
    """``[B, n]`` room-array value of each dancer (atlas code, or packed grid symbol/colour)."""
    return _DANCER_VALUES[observation][episodes.shapes, episodes.colours]


@functools.cache
def timeline(num_dancers: int, dance_delay: int) -> np.ndarray:
    """``[num_dancers, 16]``: the step on which dancer k (performing order) makes move j.

    Step 0 is ``reset`` and step t the t-th ``step`` call. Dancer k makes its 16 moves on steps
    ``k * (15 + delay)`` to ``k * (15 + delay) + 15`` and is home again after the last one;
    nobody moves on other steps. This is DeepMind's pycolab Ballet frame by frame: its first
    frame (``its_showtime``, our reset) already shows the first dancer's first move, and each
    later dancer starts ``delay`` steps after the previous one's last move.
    """
    steps = np.arange(num_dancers)[:, None] * dance_period(dance_delay) + np.arange(DANCE_LENGTH)
    steps.flags.writeable = False
    return steps


# [13, 16, 2]: flat-cell offset from home before and after each move of each dance.
_DANCE_MOVE_OFFSETS = np.stack([_DANCE_CELL_OFFSETS_BEFORE, DANCE_CELL_OFFSETS], axis=-1)


@dataclass(frozen=True)
class BalletLayout:
    """Per-episode tables that both envs step from (T = choice_step + 2 steps).

    At reset the agent is at :data:`AGENT_START` and every dancer at ``start_cells``: home,
    except the first dancer, who has made its first move (see :func:`timeline`); on step t >= 1 the
    dancer on stage (if any) leaves ``move_cells[:, t, 0]`` (which becomes floor) and enters
    ``move_cells[:, t, 1]``.

    Attributes:
        homes: ``[B, n]`` room cell (flat) of each dancer's home.
        start_cells: ``[B, n]`` room cell (flat) of each dancer at reset.
        values: ``[B, n]`` uint16 room-array value of each dancer (see :func:`dancer_values`).
        move_cells: ``[B, T, 2]`` room-array indices (from, to) of the dancer moving on step t;
            both :data:`SCRATCH` on steps without a move and on row 0 (reset: its move is in
            ``start_cells``); the last row stands for every later step.
        move_values: ``[B, T]`` uint16 value written at ``to`` (floor on steps without a move).
        instruction: ``[B]`` instruction token of the choice phase (target dance + 1).
    """

    homes: np.ndarray
    start_cells: np.ndarray
    values: np.ndarray
    move_cells: np.ndarray
    move_values: np.ndarray
    instruction: np.ndarray


OUTCOME_NONE, OUTCOME_OTHER, OUTCOME_TARGET = 0, 1, 2
"""What stepping onto a cell does: nothing, end the episode (reward 0), end it with reward 1."""


def build_layout(episodes: BalletEpisodes, dance_delay: int, observation: str) -> BalletLayout:
    """Turn sampled episodes into the tables of :class:`BalletLayout` (see :func:`timeline`)."""
    batch, num_dancers = episodes.target.shape[0], episodes.num_dancers
    homes = SLOT_CELLS[episodes.slots]  # [B, n]
    values = dancer_values(episodes, observation)  # [B, n]
    num_steps = choice_step(num_dancers, dance_delay) + 2
    # Every move in order: [n * 16] steps, [B, n * 16, 2] cells (from, to). The first move is
    # made at reset (step 0), so it goes into start_cells, not into the move table.
    on_stage = timeline(num_dancers, dance_delay).ravel()
    moves = (homes[:, :, None, None] + _DANCE_MOVE_OFFSETS[episodes.dances]).reshape(
        batch, num_dancers * DANCE_LENGTH, 2
    )
    start_cells = homes.copy()
    start_cells[:, 0] = moves[:, 0, 1]
    move_cells = np.full((batch, num_steps, 2), SCRATCH, dtype=np.intp)
    move_cells[:, on_stage[1:]] = moves[:, 1:]
    move_values = np.zeros((batch, num_steps), dtype=np.uint16)
    move_values[:, on_stage[1:]] = np.repeat(values, DANCE_LENGTH, axis=1)[:, 1:]
    return BalletLayout(
        homes=homes,
        start_cells=start_cells,
        values=values,
        move_cells=move_cells,
        move_values=move_values,
        instruction=episodes.target_dance() + 1,
    )


_SLOT_ROW_COL = np.array(DANCER_SLOTS, dtype=np.int64)
_DANCE_NAME_OBJECTS = np.array(DANCE_NAMES, dtype=object)


def memory_batch(
    episodes: BalletEpisodes,
    dance_delay: int,
    size: int | None = None,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The ``info["memory"]`` entries of a batch of episodes, as arrays with a leading batch axis.

    Keys: ``num_dancers``, ``dance_delay``, ``choice_step``; ``target`` (performing-order index
    of the target dancer), ``target_slot`` ``[B, 2]`` (its home row, col), ``target_dance`` (the
    instructed dance's name, object array) and ``target_dance_index``; and per dancer in
    performing order, ``[B, n]``: ``slots`` ``[B, n, 2]`` (home row, col), ``dances``, ``shapes``,
    ``colours`` (indices into ``DANCE_NAMES``, ``glyphs.SHAPES``, ``glyphs.COLOUR_NAMES``).

    Args:
        episodes: The sampled episodes.
        dance_delay: Their delay.
        size: If given, return arrays of this length with the episodes at ``rows`` and zeros
            (None for names) elsewhere, as a vectorised env lays out infos.
        rows: Positions of the episodes when ``size`` is given.
    """
    batch, n = episodes.target.shape[0], episodes.num_dancers
    slots = _SLOT_ROW_COL[episodes.slots]  # [B, n, 2]
    target_dance = episodes.target_dance()
    # All integers side by side: [3 constants, target, target dance, target slot (2),
    # slots (2n), dances (n), shapes (n), colours (n)].
    columns = 7 + 5 * n
    numbers = np.empty((batch, columns), dtype=np.int64)
    numbers[:, :3] = (n, dance_delay, choice_step(n, dance_delay))
    numbers[:, 3] = episodes.target
    numbers[:, 4] = target_dance
    numbers[:, 5:7] = slots[np.arange(batch), episodes.target]
    numbers[:, 7 : 7 + 2 * n] = slots.reshape(batch, 2 * n)
    numbers[:, 7 + 2 * n :] = episodes.dancers[:, 1:].reshape(batch, 3 * n)
    names = _DANCE_NAME_OBJECTS[target_dance]
    if size is not None:
        numbers, numbers_rows = np.zeros((size, columns), dtype=np.int64), numbers
        numbers[rows] = numbers_rows
        names, names_rows = np.full(size, None, dtype=object), names
        names[rows] = names_rows
        batch = size
    return {
        "num_dancers": numbers[:, 0],
        "dance_delay": numbers[:, 1],
        "choice_step": numbers[:, 2],
        "target": numbers[:, 3],
        "target_slot": numbers[:, 5:7],
        "target_dance": names,
        "target_dance_index": numbers[:, 4],
        "slots": numbers[:, 7 : 7 + 2 * n].reshape(batch, n, 2),
        "dances": numbers[:, 7 + 2 * n : 7 + 3 * n],
        "shapes": numbers[:, 7 + 3 * n : 7 + 4 * n],
        "colours": numbers[:, 7 + 4 * n :],
    }


def memory_of(batch: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    """The memory dict of one episode of a batch (fresh: Python ints and str, array copies)."""
    memory: dict[str, Any] = {}
    for key, value in batch.items():
        item = value[index]
        if isinstance(item, np.ndarray):
            item = item.copy()
        elif isinstance(item, np.integer):
            item = int(item)
        memory[key] = item
    return memory


def grid_to_cells(grid: np.ndarray) -> np.ndarray:
    """Glyph-atlas codes ``[..., 11, 11]`` of grid observations (flat ``[..., 242]`` or 3-D)."""
    grid = np.asarray(grid)
    if grid.shape[-1] != 2:
        grid = grid.reshape(*grid.shape[:-1], *GRID_SHAPE)
    symbol = grid[..., 0].astype(np.int64)
    colour = grid[..., 1].astype(np.int64)
    dancer = dancer_code(np.maximum(symbol - GRID_FIRST_DANCER, 0), np.maximum(colour - 1, 0))
    return np.where(symbol >= GRID_FIRST_DANCER, dancer, symbol)


# -- rendering (not on the hot path) -------------------------------------------------------------


def room_codes(
    episodes: BalletEpisodes, index: int, step: int, agent_cell: int, dance_delay: int
) -> np.ndarray:
    """``[11, 11]`` glyph-atlas codes of the whole room at ``step`` (allocentric)."""
    cells = ROOM_TEMPLATE.astype(np.int64)
    period = dance_period(dance_delay)
    for k in range(episodes.num_dancers):
        cell = int(SLOT_CELLS[episodes.slots[index, k]])
        move = step - k * period  # the move dancer k made on this step, if any
        if 0 <= move < DANCE_LENGTH:
            cell += int(DANCE_CELL_OFFSETS[episodes.dances[index, k], move])
        cells[cell] = dancer_code(int(episodes.shapes[index, k]), int(episodes.colours[index, k]))
    cells[agent_cell] = AGENT  # drawn over a dancer it has just stepped on
    return cells.reshape(ROOM_SIZE, ROOM_SIZE)


def render_frame(
    render_mode: str,
    episodes: BalletEpisodes,
    index: int,
    step: int,
    agent_cell: int,
    dance_delay: int,
) -> np.ndarray | str:
    """Render episode ``index`` of a batch at ``step``: an RGB frame or a text drawing.

    ``rgb_array``: the whole room (allocentric) at 4x scale, 396x396x3 uint8; a band across the top
    wall is blue with a white progress bar while the dancers perform and green once the agent
    must choose. ``ansi``: walls ``#``, floor ``.``, agent ``A``, dancers ``a``, ``b``, ... in
    performing order, then a status line and a legend (which names a dance only while it is
    performed).
    """
    codes = room_codes(episodes, index, step, agent_cell, dance_delay)
    num_dancers = episodes.num_dancers
    last = choice_step(num_dancers, dance_delay)
    choosing = step >= last
    if render_mode == "rgb_array":
        frame = render_cells(codes).repeat(RENDER_SCALE, axis=0).repeat(RENDER_SCALE, axis=1)
        cell = CELL_PIXELS * RENDER_SCALE
        band = frame[cell // 3 : 2 * cell // 3, cell:-cell]
        if choosing:
            band[:] = (60, 200, 60)
        else:
            band[:] = (60, 90, 220)
            band[:, : int(band.shape[1] * step / last)] = (230, 230, 230)
        return frame
    letters = {
        dancer_code(int(episodes.shapes[index, k]), int(episodes.colours[index, k])): chr(97 + k)
        for k in range(num_dancers)
    }
    symbols = {FLOOR: ".", WALL: "#", AGENT: "A"}
    lines = ["".join(symbols.get(c, letters.get(c, "?")) for c in row) for row in codes.tolist()]
    if choosing:
        dance = int(episodes.target_dance()[index])
        lines.append(f"step {step}: choose -- instruction {INSTRUCTION_NAMES[dance + 1]!r}")
    else:
        lines.append(f"step {step}/{last}: watch")
    period = dance_period(dance_delay)
    for k in range(num_dancers):
        shape = SHAPES[int(episodes.shapes[index, k])]
        colour = COLOUR_NAMES[int(episodes.colours[index, k])]
        # A dance is named only while it is performed: remembering it is the task.
        dancing = 0 <= step - k * period < DANCE_LENGTH
        doing = f" -- dancing {DANCE_NAMES[episodes.dances[index, k]]}" if dancing else ""
        lines.append(f"  {chr(97 + k)}: {colour} {shape}{doing}")
    return "\n".join(lines) + "\n"


# -- the single environment ----------------------------------------------------------------------

_ATLAS = glyph_atlas()
_PAD = VIEW_RADIUS  # padding around the room so that every egocentric view is a plain slice
_PADDED = ROOM_SIZE + 2 * _PAD  # 21
# Per flat cell: index into the padded flat grid, top-left pixel in the padded canvas, view slices.
_PADDED_INDEX = tuple(
    (cell // ROOM_SIZE + _PAD) * _PADDED + cell % ROOM_SIZE + _PAD for cell in range(ROOM_CELLS)
)
_CANVAS_ORIGIN = tuple(
    ((cell // ROOM_SIZE + _PAD) * CELL_PIXELS, (cell % ROOM_SIZE + _PAD) * CELL_PIXELS)
    for cell in range(ROOM_CELLS)
)
_GRID_VIEW = tuple(
    (slice(cell // ROOM_SIZE, cell // ROOM_SIZE + VIEW_SIZE),
     slice(cell % ROOM_SIZE, cell % ROOM_SIZE + VIEW_SIZE))
    for cell in range(ROOM_CELLS)
)  # fmt: skip
_IMAGE_VIEW = tuple(
    (slice(rows.start * CELL_PIXELS, rows.stop * CELL_PIXELS),
     slice(cols.start * CELL_PIXELS, cols.stop * CELL_PIXELS))
    for rows, cols in _GRID_VIEW
)  # fmt: skip
_NEXT_CELL_LISTS = tuple(tuple(row) for row in NEXT_CELL[:, :NUM_ACTIONS].tolist())


class BalletEnv(gymnasium.Env[dict[str, Any], np.int64]):
    """HCAM's Ballet: remember which dancer performed which dance, then go to the named one.

    ## Description

    The agent stands in the middle of an 11x11 room (walls included). ``num_dancers`` dancers
    stand at distinct slots among eight, (2,2) (2,5) (2,8) (5,2) (5,8) (8,2) (8,5) (8,8); each
    has a distinct shape (of 15) and colour (of 19) and a distinct dance (of 13, see
    ``memrl.envs.dances``). The dancers perform one at a time, 16 moves each inside the 3x3 block
    around their home, each starting ``dance_delay`` steps after the previous one's last move,
    while the agent cannot move. Then the instruction names one of the dances and the agent must
    walk onto the dancer that performed it. Lampinen et al. (2021), "Towards mental time
    travel", after DeepMind's pycolab Ballet.

    Timeline, equal frame by frame to DeepMind's pycolab Ballet (step 0 is ``reset``, the
    reference's first frame; step t the t-th ``step`` call): dancer k (0-based, performing
    order) makes its moves on steps ``start_k = k * (15 + dance_delay)`` to ``start_k + 15``,
    its position after step t being ``home + DANCE_OFFSETS[dance, t - start_k]``, and is home
    after its 16th move; so the reset observation already shows the first dancer's first move.
    The instruction is 0 ("watch") until step ``choice_step = num_dancers * (15 + dance_delay)``
    (62 / 124 / 248 for 2 / 4 / 8 dancers at delay 16, 126 / 252 / 504 at delay 48), whose
    observation first carries it, ``dance_delay`` steps after the last dancer's last move.
    Actions of steps 1 to ``choice_step`` are ignored; the action of step ``choice_step + 1`` is
    the first to move the agent.

    ## Observation Space

    A ``Dict``; the view is egocentric (11x11 cells centred on the agent; cells beyond the walls
    are floor).

    | key | space | shown when |
    |-----|-------|------------|
    | ``image`` | ``Box(0, 255, (99, 99, 3), uint8)`` | ``observation="image"`` |
    | ``grid`` | ``Box(0, GRID_HIGH, (242,), uint8)`` | ``observation="grid"`` |
    | ``instruction`` | ``Discrete(14)`` | always |

    - ``image``: 9x9 pixels per cell: floor black, wall (40,40,40), agent white, each dancer its
      glyph (shape in colour, ``memrl.envs.glyphs``).
    - ``grid``: the 11x11x2 symbolic view flattened in C order (``.reshape(11, 11, 2)``):
      channel 0 = 0 floor, 1 wall, 2 agent, 3 + shape index for a dancer (high 17); channel 1 =
      colour index + 1 for a dancer, else 0 (high 19).
    - ``instruction``: 0 = "watch"; ``k + 1`` = dance ``k`` of ``DANCE_NAMES`` (the target's).

    The grid is flat because Stable-Baselines3's ``check_env`` treats every 3-D ``Box`` as an
    image (and warns that 11x11 is too small for its CNN); ``grid_to_cells`` turns it into glyph
    codes, and ``render_cells(grid_to_cells(grid))`` equals the image of the same state.
    ``metadata["observation_shapes"]`` gives its 3-D layout, ``{"grid": (11, 11, 2)}``, for
    agents that read it spatially (memory PPO's grid encoder does).

    ## Action Space

    ``Discrete(8)``: move one cell N, NE, E, SE, S, SW, W, NW (``DIRECTION_DELTAS``). A move into
    a wall leaves the agent in place. Actions are ignored until the choice phase (steps 1 to
    ``choice_step``; ``info["action_ignored"]``). An action is an integer (a Python or numpy
    int, or a 0-d integer array); anything else (out of range, negative, a float, a bool)
    raises ``ValueError``, on every step.

    ## Rewards

    1.0 for stepping onto the dancer that performed the instructed dance, 0 otherwise.

    ## Starting State

    Agent at (5,5), every dancer home; slots, dances, shapes, colours (distinct within an
    episode), performing order and target (uniform) drawn from ``self.np_random``.

    ## Episode End

    Termination: the agent steps onto any dancer (reward 1.0 for the target, 0.0 otherwise).
    Truncation: the registered time limit, 320 steps for delay 16 and 1024 for delay 48 (the env
    itself never truncates).

    ## Arguments

    ```python
    gymnasium.make("memrl/Ballet-4-delay16-v0")        # or BalletGrid-..., or:
    BalletEnv(num_dancers=4, dance_delay=16, observation="image", render_mode=None)
    ```

    - ``num_dancers`` (1..8): dancers per episode; chance level is ``1 / num_dancers``.
    - ``dance_delay`` (>= 1): steps from a dancer's last move to the next dancer's first move
      (or to the instruction). 0 is refused: the reference never ends its dance phase with it,
      and here two dancers would move on one step.
    - ``observation``: ``"image"`` or ``"grid"``.
    - ``render_mode``: None, ``"rgb_array"`` (the whole room at 4x, 396x396x3, with a phase band)
      or ``"ansi"``.

    Info: ``reset`` returns ``info["memory"]``, what the episode asks the agent to remember (an
    oracle can read the answer there): ``target`` (performing-order index), ``target_slot``
    (row, col), ``target_dance`` (name), ``target_dance_index``, and per dancer in performing
    order ``slots`` (home row, col), ``dances``, ``shapes``, ``colours`` (indices); also
    ``num_dancers``, ``dance_delay``, ``choice_step`` (see :func:`memory_batch`). Every ``step``
    returns ``info["is_success"]``, True only on the step that reaches the target; the step that
    terminates the episode (the agent reaches a dancer) repeats ``info["memory"]``, as the other
    memrl envs do on their last step. A truncation comes from Gymnasium's ``TimeLimit`` wrapper,
    which the env does not see: that step has no ``memory`` (the reset info had it).

    ``reset`` and every ``step`` also return:

    - ``info["answer"]`` (int): the target dancer, named by where it stands: the action (0..7,
      ``DIRECTION_DELTAS``) that walks the agent from its start straight onto the target's slot
      (``SLOT_ACTIONS``), so the right first move of the choice phase. It is the label of a
      supervised probe or of ``--objective supervised --answer-step choice``. Not the
      performing order: a memory of what was seen holds where each dance was danced, but no
      clock to count dancers by. It is fixed at reset, so it is given from reset on, before the
      instruction shows.
    - ``info["action_ignored"]`` (bool): True when the action passed to the ``step`` call that
      returns this info could not change anything (steps 1 to ``choice_step``), False in the
      choice phase, where it moves the agent (or bumps into a wall). ``reset`` reports True
      (no action was taken), so that a vector env's autoreset step, whose info is the reset
      info, reports its ignored action too.

    ## Memory demand

    Bind each dance to the dancer (shape, colour, place) that performed it, for every dancer,
    because the question is asked only after all have performed: the target's dance ends between
    ``dance_delay`` and ``num_dancers * (15 + dance_delay) - 15`` steps before the instruction,
    with the other dances (and still steps) as distractors in between.

    ## Version History

    - v0: first version (memrl 0.1); ``info["memory"]`` added to the terminating step's info;
      the timeline made the reference's (dancers every ``15 + dance_delay`` steps, the first
      one moving at reset: the instruction shows at ``n * (15 + delay)``, not ``n * (16 +
      delay)``, and ``dance_delay`` must be >= 1); ``info["answer"]`` and
      ``info["action_ignored"]`` added; ``info["answer"]`` names the target by its slot's
      action (it was the performing-order index, which no clock-free memory can decode).
    """

    metadata = {
        "render_modes": list(RENDER_MODES),
        "render_fps": 8,
        "observation_shapes": {"grid": GRID_SHAPE},
    }

    def __init__(
        self,
        num_dancers: int = 2,
        dance_delay: int = 16,
        observation: str = "image",
        render_mode: str | None = None,
    ) -> None:
        validate_kwargs(num_dancers, dance_delay, observation, render_mode)
        self.num_dancers = int(num_dancers)
        self.dance_delay = int(dance_delay)
        self.observation_type = observation
        self.render_mode = render_mode
        self.choice_step = choice_step(self.num_dancers, self.dance_delay)
        self.observation_space = make_observation_space(observation)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.action_names = DIRECTIONS  # for `memrl play`
        self._image = observation == "image"
        self._step = 0
        self._agent_cell = AGENT_START_CELL
        self._instruction = np.int64(INSTRUCTION_WATCH)
        self._target_instruction = np.int64(INSTRUCTION_WATCH)
        self._episodes: BalletEpisodes | None = None
        self._move_from: list[int] = []
        self._move_to: list[int] = []
        self._move_value: list[int] = []
        self._outcome: dict[int, float] = {}
        self._answer = 0
        self._canvas = np.zeros((_PADDED * CELL_PIXELS, _PADDED * CELL_PIXELS, 3), np.uint8)
        self._padded = np.zeros(_PADDED * _PADDED, dtype="<u2")  # flat padded room values
        self._padded_bytes = self._padded.view(np.uint8).reshape(_PADDED, _PADDED, 2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode; ``info["memory"]`` says what it asks the agent to remember."""
        super().reset(seed=seed)
        episodes = sample_episodes([self.np_random], self.num_dancers)
        layout = build_layout(episodes, self.dance_delay, self.observation_type)
        self._episodes = episodes
        self._move_from = layout.move_cells[0, :, 0].tolist()
        self._move_to = layout.move_cells[0, :, 1].tolist()
        self._move_value = layout.move_values[0].tolist()
        homes = layout.homes[0].tolist()
        target = int(episodes.target[0])
        self._outcome = {cell: float(k == target) for k, cell in enumerate(homes)}
        self._step = 0
        self._agent_cell = AGENT_START_CELL
        self._instruction = np.int64(INSTRUCTION_WATCH)
        self._target_instruction = np.int64(layout.instruction[0])
        room = ROOM_TEMPLATE.copy()
        room[layout.start_cells[0]] = layout.values[0]
        room[AGENT_START_CELL] = AGENT
        padded = np.zeros((_PADDED, _PADDED), dtype="<u2")
        padded[_PAD:-_PAD, _PAD:-_PAD] = room.reshape(ROOM_SIZE, ROOM_SIZE)
        if self._image:
            self._canvas = render_cells(padded.astype(np.intp))
        else:
            self._padded = padded.reshape(-1)
            self._padded_bytes = self._padded.view(np.uint8).reshape(_PADDED, _PADDED, 2)
        memory = memory_of(memory_batch(episodes, self.dance_delay), 0)
        self._answer = int(SLOT_ACTIONS[episodes.slots[0, target]])
        return self._observe(), {"memory": memory, "answer": self._answer, "action_ignored": True}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Advance one step; ``action`` is ignored until the choice phase."""
        action = check_discrete_action(action, NUM_ACTIONS)
        t = self._step + 1
        self._step = t
        reward = 0.0
        terminated = False
        watching = t <= self.choice_step
        if watching:  # the dancer on stage (if any) makes one move
            source = self._move_from[t]
            if source != SCRATCH:
                self._paint(source, FLOOR)
                self._paint(self._move_to[t], self._move_value[t])
            if t == self.choice_step:
                self._instruction = self._target_instruction
        else:  # choosing
            here = self._agent_cell
            there = _NEXT_CELL_LISTS[here][action]
            if there != here:
                self._paint(here, FLOOR)
                self._paint(there, AGENT)
                self._agent_cell = there
                outcome = self._outcome.get(there)
                if outcome is not None:
                    terminated = True
                    reward = outcome
        info: dict[str, Any] = {
            "is_success": reward > 0.0,
            "answer": self._answer,
            "action_ignored": watching,
        }
        if terminated:
            assert self._episodes is not None
            info["memory"] = memory_of(memory_batch(self._episodes, self.dance_delay), 0)
        return self._observe(), reward, terminated, False, info

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_padded_bytes"]  # a view of _padded; pickle would copy it apart
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._padded_bytes = self._padded.view(np.uint8).reshape(_PADDED, _PADDED, 2)

    def _paint(self, cell: int, value: int) -> None:
        """Write one room cell (flat index) with a room-array value."""
        if self._image:
            y, x = _CANVAS_ORIGIN[cell]
            self._canvas[y : y + CELL_PIXELS, x : x + CELL_PIXELS] = _ATLAS[value]
        else:
            self._padded[_PADDED_INDEX[cell]] = value

    def _observe(self) -> dict[str, Any]:
        if self._image:
            return {
                "image": self._canvas[_IMAGE_VIEW[self._agent_cell]].copy(),
                "instruction": self._instruction,
            }
        return {
            "grid": self._padded_bytes[_GRID_VIEW[self._agent_cell]].flatten(),
            "instruction": self._instruction,
        }

    def render(self) -> np.ndarray | str | None:  # type: ignore[override]
        """Render the whole room (``rgb_array``: 396x396x3 uint8; ``ansi``: text)."""
        if self.render_mode is None:
            return None
        if self._episodes is None:
            raise gymnasium.error.ResetNeeded("call reset() before render()")
        return render_frame(
            self.render_mode,
            self._episodes,
            0,
            self._step,
            self._agent_cell,
            self.dance_delay,
        )
