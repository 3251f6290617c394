"""Room Ballet: a place-centric Ballet over a grid of rooms (Spatially-Aware Transformer).

The module holds the single environment, :class:`RoomBalletEnv`, and the episode sampler it shares
with the numpy-batched implementation in :mod:`memrl.envs.room_ballet_vector`. An episode is drawn
from one call ``np_random.random(plan_size(...))``; :func:`sample_plans` turns those uniforms into
the episode plan, :func:`random_walk` into the passive visit sequence and :func:`pose_questions`
into the question. All three work on a leading batch axis, so the single env (a batch of one) and
the batched env compute exactly the same episodes from the same generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from memrl.envs.actions import check_discrete_action
from memrl.envs.dances import DANCE_LENGTH, DANCE_NAMES, DANCE_OFFSETS, NUM_DANCES
from memrl.envs.glyphs import (
    AGENT,
    CELL_PIXELS,
    COLOUR_NAMES,
    FLOOR,
    SHAPES,
    WALL,
    WALL_RGB,
    dancer_code,
    render_cells,
)

QUESTION_TYPES: tuple[str, ...] = ("first_seen", "last_seen", "most_visited", "least_visited")
"""Question types; the ``question`` observation shows type ``k`` as ``k + 1`` (0: no question)."""

QUESTION_CHOICES: tuple[str, ...] = (*QUESTION_TYPES, "mixed")
"""Allowed values of the ``question`` keyword."""

MOVEMENTS: tuple[str, ...] = ("passive", "active")
"""Allowed values of the ``movement`` keyword."""

MOVE_NAMES: tuple[str, ...] = ("N", "E", "S", "W")
"""Moves of actions 0-3 in the observation phase; every other action stays."""

MOVE_DELTAS = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)
"""Row/column step of each move, N E S W."""

PHASE_WATCH, PHASE_VISIT_END, PHASE_QUERY = 0, 1, 2
MAX_ROOMS_PER_SIDE = 8
NUM_SHAPES, NUM_COLOURS = len(SHAPES), len(COLOUR_NAMES)
NUM_ACTIONS = max(len(MOVE_NAMES) + 1, NUM_DANCES)

# Layout of the uniforms that make one episode (see ``plan_size``).
_DANCER_KEYS = NUM_SHAPES + NUM_COLOURS


def plan_size(num_rooms: int, num_events: int) -> int:
    """Number of uniforms ``np_random.random`` draws for one episode.

    Layout: 15 shape keys, 19 colour keys, the start room, one dance per event, one passive move
    per transition, one tie-break rank per room, the question type, the visit ordinal.
    """
    return _DANCER_KEYS + 1 + num_events + (num_events - 1) + num_rooms + 2


@dataclass
class EpisodePlans:
    """Everything drawn at reset, for a batch of ``n`` episodes (arrays lead with ``n``).

    Attributes:
        dancer_shape: ``[n, rooms]`` shape index of each room's dancer.
        dancer_colour: ``[n, rooms]`` colour index of each room's dancer.
        start_room: ``[n]`` the room of the first visit.
        dances: ``[n, events]`` the dance performed at each visit.
        walk_moves: ``[n, events - 1]`` passive variant: the move (0-3, N E S W) after each visit.
        room_rank: ``[n, rooms]`` uniforms that break ties between rooms (lowest rank wins).
        question_type: ``[n]`` index into ``QUESTION_TYPES``.
        visit_uniform: ``[n]`` uniform that picks the asked visit of the most/least-visited room.
    """

    dancer_shape: np.ndarray
    dancer_colour: np.ndarray
    start_room: np.ndarray
    dances: np.ndarray
    walk_moves: np.ndarray
    room_rank: np.ndarray
    question_type: np.ndarray
    visit_uniform: np.ndarray


def sample_plans(
    uniforms: np.ndarray, num_rooms: int, num_events: int, question: str
) -> EpisodePlans:
    """Turn ``[n, plan_size]`` uniforms in [0, 1) into ``n`` episode plans.

    Dancers: the shapes and the colours are each put in a random order (argsort of random keys);
    room ``j`` gets shape ``shape_order[j % 15]`` and colour ``colour_order[j % 19]``. As 15 and 19
    are coprime, the 285 possible rooms all get distinct (shape, colour) pairs, and up to 15 rooms
    also get distinct shapes and distinct colours.

    Args:
        uniforms: ``[n, plan_size(num_rooms, num_events)]`` float64 in [0, 1).
        num_rooms: Number of rooms.
        num_events: Number of visits in the observation phase.
        question: One of ``QUESTION_CHOICES``.

    Returns:
        The plans.
    """
    n = uniforms.shape[0]
    rooms = np.arange(num_rooms)
    shape_order = np.argsort(uniforms[:, :NUM_SHAPES], axis=1)
    colour_order = np.argsort(uniforms[:, NUM_SHAPES:_DANCER_KEYS], axis=1)
    col = _DANCER_KEYS
    start_room = (uniforms[:, col] * num_rooms).astype(np.int64)
    col += 1
    dances = (uniforms[:, col : col + num_events] * NUM_DANCES).astype(np.int64)
    col += num_events
    walk_moves = (uniforms[:, col : col + num_events - 1] * len(MOVE_NAMES)).astype(np.int64)
    col += num_events - 1
    room_rank = uniforms[:, col : col + num_rooms]
    col += num_rooms
    if question == "mixed":
        question_type = (uniforms[:, col] * len(QUESTION_TYPES)).astype(np.int64)
    else:
        question_type = np.full(n, QUESTION_TYPES.index(question), dtype=np.int64)
    return EpisodePlans(
        dancer_shape=shape_order[:, rooms % NUM_SHAPES],
        dancer_colour=colour_order[:, rooms % NUM_COLOURS],
        start_room=start_room,
        dances=dances,
        walk_moves=walk_moves,
        room_rank=room_rank,
        question_type=question_type,
        visit_uniform=uniforms[:, col + 1],
    )


def _fold(x: np.ndarray, size: int) -> np.ndarray:
    """Fold unbounded coordinates onto ``0..size-1`` so that a step past a wall stays put."""
    y = np.mod(x, 2 * size)
    return np.where(y < size, y, 2 * size - 1 - y)


def random_walk(start_room: np.ndarray, walk_moves: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The passive visit sequence: ``[n, events]`` room ids.

    Each move is N, E, S or W with probability 1/4; a move into the outer wall leaves the agent in
    its room. Computed without a loop: the walk runs unbounded (a cumulative sum) and is folded
    back at the walls, which is the same random process (a folded step is a bijection of the four
    moves that turns a step through a wall into a stay).

    Args:
        start_room: ``[n]`` room of the first visit.
        walk_moves: ``[n, events - 1]`` move indices 0-3 (N E S W).
        rows: Rows of rooms.
        cols: Columns of rooms.
    """
    steps = MOVE_DELTAS[walk_moves]  # [n, events - 1, 2]
    start = np.stack([start_room // cols, start_room % cols], axis=-1)[:, None, :]  # [n, 1, 2]
    path = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)  # [n, events, 2]
    return _fold(path[..., 0], rows) * cols + _fold(path[..., 1], cols)


def visit_counts(visits: np.ndarray, num_rooms: int) -> np.ndarray:
    """``[n, rooms]`` number of visits to each room, from ``[n, events]`` visits."""
    return (visits[:, :, None] == np.arange(num_rooms)).sum(axis=1)


def pose_questions(
    visits: np.ndarray,
    dances: np.ndarray,
    question_type: np.ndarray,
    room_rank: np.ndarray,
    visit_uniform: np.ndarray,
    counts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queried room, the asked visit (1-based ordinal among that room's visits), the answer.

    The room minimises ``key[type, visits to the room] + room_rank`` (ranks are in [0, 1), so they
    only break ties): for ``first_seen``/``last_seen`` the key is 0 for rooms visited at least
    twice, 1 for rooms visited once, 2 for unvisited rooms; for ``most_visited`` it is
    ``events - visits``; for ``least_visited`` it is the number of visits (unvisited: ``events +
    1``).

    Args:
        visits: ``[n, events]`` room of each visit.
        dances: ``[n, events]`` dance of each visit.
        question_type: ``[n]`` index into ``QUESTION_TYPES``.
        room_rank: ``[n, rooms]`` tie-break uniforms.
        visit_uniform: ``[n]`` uniform that picks the visit for most/least_visited.
        counts: ``[n, rooms]`` visits per room, if already known.

    Returns:
        ``(room, visit, answer)``, each ``[n]`` int64.
    """
    n, num_events = visits.shape
    rows = np.arange(n)
    if counts is None:
        counts = visit_counts(visits, room_rank.shape[1])
    c = np.arange(num_events + 1)
    key_table = np.stack(
        [
            2 - np.minimum(c, 2),
            2 - np.minimum(c, 2),
            num_events - c,
            np.where(c > 0, c, num_events + 1),
        ]
    )  # [types, events + 1]
    room = np.argmin(key_table[question_type[:, None], counts] + room_rank, axis=1)
    room_visits = counts[rows, room]
    drawn = (visit_uniform * room_visits).astype(np.int64) + 1
    visit = np.where(question_type == 0, 1, np.where(question_type == 1, room_visits, drawn))
    mask = visits == room[:, None]  # [n, events]
    asked = mask & (np.cumsum(mask, axis=1) == visit[:, None])
    answer = dances[rows, np.argmax(asked, axis=1)]
    return room, visit, answer


def _validate(
    rooms: tuple[int, int], num_events: int, stay_steps: int, question: str, movement: str
) -> tuple[int, int]:
    """Check the keyword arguments; return ``rooms`` as a pair of ints."""
    if (
        not isinstance(rooms, tuple | list)
        or len(rooms) != 2
        or not all(isinstance(r, int | np.integer) and not isinstance(r, bool) for r in rooms)
        or not all(1 <= r <= MAX_ROOMS_PER_SIDE for r in rooms)
        or rooms[0] * rooms[1] < 2
    ):
        raise ValueError(
            f"rooms must be a (rows, cols) pair of integers in 1..{MAX_ROOMS_PER_SIDE} with at "
            f"least 2 rooms in all, got {rooms!r}"
        )
    if not isinstance(num_events, int | np.integer) or not 2 <= num_events <= 1000:
        raise ValueError(f"num_events must be an integer in 2..1000, got {num_events!r}")
    if not isinstance(stay_steps, int | np.integer) or not 1 <= stay_steps <= 64:
        raise ValueError(f"stay_steps must be an integer in 1..64, got {stay_steps!r}")
    if question not in QUESTION_CHOICES:
        raise ValueError(f"question must be one of {', '.join(QUESTION_CHOICES)}; got {question!r}")
    if movement not in MOVEMENTS:
        raise ValueError(f"movement must be one of {', '.join(MOVEMENTS)}; got {movement!r}")
    return int(rooms[0]), int(rooms[1])


def room_ballet_spaces(num_rooms: int, num_events: int) -> tuple[spaces.Dict, spaces.Discrete]:
    """The observation and action spaces of one Room Ballet env."""
    observation_space = spaces.Dict(
        {
            "place": spaces.Discrete(num_rooms),
            "view": spaces.Box(
                low=0,
                high=np.array([NUM_SHAPES, NUM_COLOURS, NUM_DANCES], dtype=np.uint8),
                shape=(3,),
                dtype=np.uint8,
            ),
            "phase": spaces.Discrete(3),
            "question": spaces.MultiDiscrete(
                [len(QUESTION_TYPES) + 1, num_rooms + 1, num_events + 1]
            ),
        }
    )
    return observation_space, spaces.Discrete(NUM_ACTIONS)


def move_table(rows: int, cols: int) -> np.ndarray:
    """``[rooms, NUM_ACTIONS]`` the room reached from each room by each action (walls block)."""
    table = np.repeat(np.arange(rows * cols)[:, None], NUM_ACTIONS, axis=1)
    r, c = np.divmod(np.arange(rows * cols), cols)
    for a, (dr, dc) in enumerate(MOVE_DELTAS):
        nr, nc = r + dr, c + dc
        inside = (nr >= 0) & (nr < rows) & (nc >= 0) & (nc < cols)
        table[inside, a] = (nr * cols + nc)[inside]
    return table


def action_names() -> tuple[str, ...]:
    """Name of each action: its move in the observation phase, then its dance in the query phase."""
    moves = (*MOVE_NAMES, *(("stay",) * (NUM_ACTIONS - len(MOVE_NAMES))))
    return tuple(f"{m}|{d}" for m, d in zip(moves, DANCE_NAMES, strict=True))


# -- pictures ------------------------------------------------------------------------------------

_ROOM_CELLS = 5  # interior cells per room side; the dancer's home is the centre
_HIGHLIGHT_RGB = np.array([40, 40, 110], dtype=np.uint8)
_QUERY_WALL_RGB = np.array([255, 215, 0], dtype=np.uint8)


def render_rooms(
    rows: int,
    cols: int,
    dancer_shape: np.ndarray,
    dancer_colour: np.ndarray,
    place: int,
    dance: int | None,
    dance_step: int,
    queried_room: int | None,
) -> np.ndarray:
    """Draw the grid of rooms: ``[H, W, 3]`` uint8.

    Every room is a 5x5-cell tile inside walls with doors to its neighbours; its dancer stands at
    the centre. The agent's room has a blue floor and shows the agent (a white cell below the
    dancer) and, during a visit, the dancer at step ``dance_step`` of its dance. In the query
    phase the queried room's walls are gold.

    Args:
        rows: Rows of rooms.
        cols: Columns of rooms.
        dancer_shape: ``[rooms]`` shape index of each dancer.
        dancer_colour: ``[rooms]`` colour index of each dancer.
        place: The agent's room.
        dance: The dance being performed in the agent's room, or None (query phase).
        dance_step: Moves of the dance performed so far (0..16).
        queried_room: The queried room in the query phase, else None.
    """
    span = _ROOM_CELLS + 1
    cells = np.full((rows * span + 1, cols * span + 1), FLOOR, dtype=np.int64)
    cells[::span, :] = WALL
    cells[:, ::span] = WALL
    mid = 1 + _ROOM_CELLS // 2
    cells[span : rows * span : span, mid::span] = FLOOR  # doors between rows of rooms
    cells[mid::span, span : cols * span : span] = FLOOR  # doors between columns of rooms
    codes = np.asarray(dancer_code(np.asarray(dancer_shape), np.asarray(dancer_colour)))
    for room in range(rows * cols):
        r0, c0 = (room // cols) * span + mid, (room % cols) * span + mid
        dr, dc = 0, 0
        if room == place and dance is not None and dance_step > 0:
            dr, dc = DANCE_OFFSETS[dance, min(dance_step, DANCE_LENGTH) - 1]
        cells[r0 + dr, c0 + dc] = codes[room]
        if room == place:
            cells[r0 + 2, c0] = AGENT
    image = render_cells(cells).copy()

    def tile(room: int, border: int) -> tuple[slice, slice]:
        r, c = (room // cols) * span * CELL_PIXELS, (room % cols) * span * CELL_PIXELS
        size = (span + 1) * CELL_PIXELS
        return (
            slice(r + (1 - border) * CELL_PIXELS, r + size - (1 - border) * CELL_PIXELS),
            slice(c + (1 - border) * CELL_PIXELS, c + size - (1 - border) * CELL_PIXELS),
        )

    inner = image[tile(place, 0)]
    inner[(inner == 0).all(axis=-1)] = _HIGHLIGHT_RGB
    if queried_room is not None:
        frame = image[tile(queried_room, 1)]
        walls = (frame == np.array(WALL_RGB, dtype=np.uint8)).all(axis=-1)
        frame[walls] = _QUERY_WALL_RGB
    return image


def dance_frame(t: int, stay_steps: int) -> int:
    """Moves of the dance drawn at episode step ``t``: a visit's steps spread over the dance."""
    return (t % stay_steps + 1) * DANCE_LENGTH // (stay_steps + 1)


def describe_rooms(
    rows: int,
    cols: int,
    dancer_shape: np.ndarray,
    dancer_colour: np.ndarray,
    place: int,
    dance: int | None,
    status: str,
) -> str:
    """A text drawing of the rooms (``*`` marks the agent's room) and a status line."""
    width = 26
    line = "+" + "+".join(["-" * width] * cols) + "+"
    out = [status, line]
    for r in range(rows):
        for part in range(2):
            cells = []
            for c in range(cols):
                room = r * cols + c
                here = room == place
                if part == 0:
                    text = f"{'*' if here else ' '}{room:>2} {SHAPES[dancer_shape[room]]}"
                else:
                    text = f"    {COLOUR_NAMES[dancer_colour[room]]}"
                    if here and dance is not None:
                        text += f": {DANCE_NAMES[dance]}"
                cells.append(text[:width].ljust(width))
            out.append("|" + "|".join(cells) + "|")
        out.append(line)
    return "\n".join(out)


def question_text(question_type: int, room: int, visit: int) -> str:
    """The query as a sentence."""
    name = QUESTION_TYPES[question_type]
    return f"{name}: what was danced on visit {visit} to room {room}?"


# -- the environment -----------------------------------------------------------------------------


class RoomBalletEnv(gymnasium.Env):
    """Room Ballet: remember what was danced where, then answer a question about one room.

    ## Description

    A place-centric version of HCAM's Ballet, after the Room Ballet of the Spatially-Aware
    Transformer (Cho, Yoon & Ahn, ICLR 2024). A ``rows x cols`` grid of rooms; each room holds one
    dancer with its own appearance (a shape and a colour, distinct per room). In the
    **observation phase** the agent makes ``num_events`` visits, one room at a time, each lasting
    ``stay_steps`` steps. On every visit the room's dancer performs one of the 13 Ballet dances,
    drawn afresh (uniformly, with replacement) for each visit, so that two visits to one room
    usually show different dances and "the first time" differs from "the last time". Between
    visits the agent moves N, E, S or W to an adjacent room; a move into the outer wall, or a
    stay, makes the next visit one to the same room.

    - ``movement="passive"`` (SAT's setting): the agent is moved on a seeded random walk, each
      move N/E/S/W with probability 1/4, walls blocking; its actions are ignored.
    - ``movement="active"``: the action taken on the last step of a visit is the move.

    Then one **query step**: the observation names a question type, a room ``r`` and a visit
    ordinal ``k``; the agent answers with the dance performed on its ``k``-th visit to ``r``.
    With ``n_r`` the number of visits to room ``r``, the four question types are:

    - ``first_seen``: ``r`` uniform among the rooms visited at least twice (among all visited
      rooms if none was), ``k = 1``. Favours LIFO eviction (keep the earliest visits).
    - ``last_seen``: ``r`` drawn as for ``first_seen``, ``k = n_r``. Designed for FIFO eviction
      (keep the latest visits); most-visited-first-out keeps it better still (Memory demand).
    - ``most_visited``: ``r`` a room with the largest ``n_r``, ``k`` uniform in ``1..n_r``.
      Favours least-visited-first-out (keep the most visited rooms).
    - ``least_visited``: ``r`` a room with the smallest ``n_r >= 1``, ``k`` uniform in
      ``1..n_r``. Favours most-visited-first-out (keep the least visited rooms).

    Ties between rooms are broken uniformly at random (by a random rank per room drawn at reset).
    ``question="mixed"`` draws the type uniformly per episode. The episode's type is in
    ``info["question_type"]`` (its index in ``QUESTION_TYPES``) at reset and on every step, and
    in ``info["memory"]["question_type"]`` (its name): that is where a memory allocator that picks
    an eviction strategy per episode reads it (the observation shows it only in the query).

    ## Observation Space

    A ``Dict``; ``view`` and ``question`` use 0 for "nothing":

    | key | space | content |
    |---|---|---|
    | ``place`` | ``Discrete(rooms)`` | the agent's room, ``row * cols + col`` |
    | ``view`` | ``Box(0, [15, 19, 13], (3,), uint8)`` | dancer shape + 1, colour + 1, dance + 1 |
    | ``phase`` | ``Discrete(3)`` | 0 watching, 1 last step of a visit, 2 query |
    | ``question`` | ``MultiDiscrete([5, rooms + 1, num_events + 1])`` | type + 1, r + 1, k |

    In the observation phase ``question`` is all 0; in the query step ``view`` is all 0 and
    ``place`` is the room of the last visit. Types are numbered as in ``QUESTION_TYPES``
    (first_seen, last_seen, most_visited, least_visited), dances as in ``DANCE_NAMES``, shapes
    and colours as in ``memrl.envs.glyphs``.

    ## Action Space

    ``Discrete(13)``, one space for both phases (``action_names`` names each action). In the
    observation phase actions 0-3 move N, E, S, W and 4-12 stay; in the active variant the
    action of a phase-1 step (the last step of a visit, every step when ``stay_steps=1``) moves
    the agent, except after the final visit; all other observation-phase actions are ignored. In
    the query step the action is the answer: dance ``DANCE_NAMES[action]``. An action is an
    integer (a Python or numpy int, or a 0-d integer array); anything else (out of range,
    negative, a float, a bool) raises ``ValueError``, on every step.

    ## Rewards

    1 for the right dance in the query step, else 0; every other step gives 0. Chance is 1/13.

    ## Starting State

    The dancers' appearances, the start room (uniform), every visit's dance, the passive walk,
    the question type and the tie-breaking draws are drawn at reset, by one call of
    ``np_random.random``, so ``info["memory"]`` holds the whole episode: the dancers, the visit
    sequence, the dance of every visit, the question type, the queried room and visit, and the
    answer. In the active variant the visits, the queried room and visit and the answer depend
    on the agent's moves: at reset ``visits`` and ``answer_name`` are None and ``queried_room``,
    ``queried_visit`` and ``answer`` are -1; the final step's ``info["memory"]`` fills them in.

    ## Episode End

    The episode terminates after the answer, at step ``num_events * stay_steps + 1``. That is also
    the registered ``max_episode_steps`` (37 for the 3x3 variants, 51 for ``-ShortStay``), so
    Gymnasium's ``TimeLimit`` marks the last step ``truncated`` as well; to lengthen episodes with
    ``num_events`` or ``stay_steps``, pass ``max_episode_steps`` to ``gymnasium.make`` too.
    ``info["is_success"]`` is on every step, True only after a right answer;
    ``info["answer"]`` is on every step and at reset: the index of the right answer, -1 while
    it is not yet known (the active variant, before the query). It is the label of SAT's
    supervised protocol (memory PPO's ``objective="supervised"``). ``info["question_type"]``
    (int) is on every step and at reset. The final step's info also repeats ``memory``.
    ``info["action_ignored"]`` is on every step and at reset: True when the action passed to
    the ``step`` call that returns this info could not change anything (every observation-phase
    step in the passive variant; in the active variant every one but the moves, the phase-1
    steps before the final visit), False on the query step and on the active variant's moves.
    ``reset`` reports True (no action was taken), so that a vector env's autoreset step, whose
    info is the reset info, reports its ignored action too.

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | ``rooms`` | ``(3, 3)`` | rows and columns of rooms, each 1..8, at least 2 rooms |
    | ``num_events`` | ``18`` | visits in the observation phase, 2..1000 |
    | ``stay_steps`` | ``2`` | steps per visit, 1..64 |
    | ``question`` | ``"mixed"`` | one of ``QUESTION_TYPES``, or ``"mixed"`` |
    | ``movement`` | ``"passive"`` | ``"passive"`` (random walk) or ``"active"`` (the agent moves) |
    | ``render_mode`` | None | ``"rgb_array"`` (the grid of rooms) or ``"ansi"`` (text) |

    ## Memory demand

    The dance of one of ``num_events`` visits, up to ``num_events * stay_steps`` steps back,
    among the distractors of every other visit, including other visits to the same room. The
    place is the natural retrieval key and the question type decides which visit matters, so
    when a memory holds fewer visits than were made, the eviction strategy decides the score.
    With room for half the visits (SAT's setting) and SAT's four strategies under its official
    rules (``memrl.memory.eviction``: FIFO keeps the latest visits, LIFO the earliest;
    least-visited-first-out (most-visited-first-out) drops the oldest entry of the room that holds
    the fewest (most) entries now, ties to the lowest room id, before the incoming visit is
    written), the share of episodes whose asked visit is still in memory is
    (``RoomBallet-v0``'s setting, 4,000 episodes per type, memrl's ``choose_victim`` applied
    visit by visit as ``tests/envs/test_room_ballet.py`` does):

    | question | FIFO | LIFO | least-visited-first-out | most-visited-first-out |
    |---|---|---|---|---|
    | ``first_seen`` | 0.21 | **0.79** | 0.33 | 0.16 |
    | ``last_seen`` | 0.79 | 0.21 | 0.60 | **1.00** |
    | ``most_visited`` | 0.49 | 0.51 | **0.74** | 0.29 |
    | ``least_visited`` | 0.49 | 0.51 | 0.16 | **0.96** |

    Each type's intended strategy beats its opposite by a wide margin and is the best of the four,
    except on ``last_seen``: there most-visited-first-out keeps every asked visit, because a room's
    newest entry is never the oldest of a room that holds two or more, so FIFO (0.79) is second.
    (Counting visits made in the episode instead of entries held, as memrl did before it followed
    the official code, gave FIFO 0.79 and most-visited-first-out 0.75 there.)

    ## Version History

    - v0: first version (memrl 0.1); ``info["question_type"]`` added to the reset and step infos
      (as the batched env reports it); in the active variant's reset memory, the undecided
      ``queried_room``, ``queried_visit`` and ``answer`` are -1 instead of None (None next to an
      int crashed ``SyncVectorEnv`` when episodes ended and started on one step);
      ``info["action_ignored"]`` added, and ``info["answer"]`` to the reset info.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
        rooms: tuple[int, int] = (3, 3),
        num_events: int = 18,
        stay_steps: int = 2,
        question: str = "mixed",
        movement: str = "passive",
        render_mode: str | None = None,
    ) -> None:
        self.rows, self.cols = _validate(rooms, num_events, stay_steps, question, movement)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.num_rooms = self.rows * self.cols
        self.num_events = int(num_events)
        self.stay_steps = int(stay_steps)
        self.question = question
        self.movement = movement
        self.render_mode = render_mode
        self.observation_space, self.action_space = room_ballet_spaces(
            self.num_rooms, self.num_events
        )
        self.action_names = action_names()
        self.query_time = self.num_events * self.stay_steps
        self._moves = move_table(self.rows, self.cols)
        self._no_question = np.zeros(3, dtype=np.int64)
        self._no_view = np.zeros(3, dtype=np.uint8)
        self._query: tuple[int, int] | None = None
        self._answer: int | None = None
        self._t = 0
        self._done = True

    # -- episode ---------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw a new episode; ``info["memory"]`` holds its plan."""
        super().reset(seed=seed)
        uniforms = self.np_random.random(plan_size(self.num_rooms, self.num_events))
        plan = sample_plans(uniforms[None], self.num_rooms, self.num_events, self.question)
        self._shape = plan.dancer_shape[0]
        self._colour = plan.dancer_colour[0]
        self._dances = plan.dances[0]
        self._rank = plan.room_rank
        self._visit_uniform = plan.visit_uniform
        self._type = int(plan.question_type[0])
        self._visits = np.zeros(self.num_events, dtype=np.int64)
        if self.movement == "passive":
            self._visits[:] = random_walk(plan.start_room, plan.walk_moves, self.rows, self.cols)[0]
            self._pose_question()
        else:
            self._visits[0] = plan.start_room[0]
            self._query = self._answer = None
        self._t = 0
        self._done = False
        self._place = int(self._visits[0])
        info = {
            "memory": self._memory(),
            "question_type": self._type,
            "answer": -1 if self._answer is None else self._answer,
            "action_ignored": True,
        }
        return self._observe(), info

    def _pose_question(self) -> None:
        room, visit, answer = pose_questions(
            self._visits[None],
            self._dances[None],
            np.array([self._type]),
            self._rank,
            self._visit_uniform,
        )
        self._query = (int(room[0]), int(visit[0]))
        self._answer = int(answer[0])
        self._question_row = np.array(
            [self._type + 1, self._query[0] + 1, self._query[1]], dtype=np.int64
        )

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Advance one step; in the query step ``action`` is the answer."""
        if self._done:
            raise gymnasium.error.ResetNeeded("the episode is over; call reset()")
        action = check_discrete_action(action, NUM_ACTIONS)
        t = self._t
        if t == self.query_time:
            success = action == self._answer
            self._done = True
            info = {
                "is_success": success,
                "answer": self._answer,
                "memory": self._memory(),
                "question_type": self._type,
                "action_ignored": False,
            }
            return self._observe(), float(success), True, False, info
        event = t // self.stay_steps
        moving = t % self.stay_steps == self.stay_steps - 1 and event + 1 < self.num_events
        if moving:
            if self.movement == "active":
                self._visits[event + 1] = self._moves[self._place, action]
            self._place = int(self._visits[event + 1])
        self._t = t = t + 1
        if t == self.query_time and self.movement == "active":
            self._pose_question()
        answer = -1 if self._answer is None else self._answer
        info = {
            "is_success": False,
            "answer": answer,
            "question_type": self._type,
            "action_ignored": not (moving and self.movement == "active"),
        }
        return self._observe(), 0.0, False, False, info

    def _observe(self) -> dict[str, Any]:
        t = self._t
        if t == self.query_time:
            return {
                "place": np.int64(self._place),
                "view": self._no_view.copy(),
                "phase": np.int64(PHASE_QUERY),
                "question": self._question_row.copy(),
            }
        event = t // self.stay_steps
        place = self._place
        return {
            "place": np.int64(place),
            "view": np.array(
                [self._shape[place] + 1, self._colour[place] + 1, self._dances[event] + 1],
                dtype=np.uint8,
            ),
            "phase": np.int64(
                PHASE_VISIT_END if t % self.stay_steps == self.stay_steps - 1 else PHASE_WATCH
            ),
            "question": self._no_question.copy(),
        }

    def _memory(self) -> dict[str, Any]:
        """The episode's plan, for analysis and oracles (None or -1: not decided yet)."""
        known = self.movement == "passive" or self._t >= self.query_time
        query = self._query if known else None
        return {
            "question_type": QUESTION_TYPES[self._type],
            "movement": self.movement,
            "rooms": (self.rows, self.cols),
            "dancers": [
                (SHAPES[s], COLOUR_NAMES[c]) for s, c in zip(self._shape, self._colour, strict=True)
            ],
            "start_room": int(self._visits[0]),
            "visits": self._visits.tolist() if known else None,
            "dances": self._dances.tolist(),
            # Integers stay integers (-1: not decided yet), so that a vector env can batch a
            # reset's memory and a final step's memory in one int array.
            "queried_room": query[0] if query else -1,
            "queried_visit": query[1] if query else -1,
            "answer": self._answer if known and self._answer is not None else -1,
            "answer_name": DANCE_NAMES[self._answer]
            if known and self._answer is not None
            else None,
        }

    # -- pictures --------------------------------------------------------------------------------

    def render(self) -> np.ndarray | str | None:
        """The grid of rooms (``rgb_array``) or its text drawing with a status line (``ansi``)."""
        if self.render_mode is None:
            return None
        t = self._t
        querying = t >= self.query_time
        event = min(t // self.stay_steps, self.num_events - 1)
        dance = None if querying else int(self._dances[event])
        query = self._query if querying else None
        if self.render_mode == "rgb_array":
            return render_rooms(
                self.rows,
                self.cols,
                self._shape,
                self._colour,
                self._place,
                dance,
                dance_frame(t, self.stay_steps),
                query[0] if query else None,
            )
        if query:
            status = f"query | {question_text(self._type, *query)}"
        else:
            status = f"watch | visit {event + 1}/{self.num_events}, step {t + 1}/{self.query_time}"
        return describe_rooms(
            self.rows, self.cols, self._shape, self._colour, self._place, dance, status
        )
