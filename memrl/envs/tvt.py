"""TVT's credit-assignment tasks (Hung et al. 2019) as small symbolic grid worlds.

Both tasks have three phases, each in its own room, with the lengths of DeepMind's pycolab versions
by default (15, 90 and 15 steps):

1. *explore*: KeyToDoor has a key to pick up; PassiveVisualMatch shows a colour on the wall;
2. *distractor*: a room of apples, each worth a small reward;
3. *final*: KeyToDoor has a door that opens only with the key; PassiveVisualMatch has coloured
   squares, one of which matches the colour of phase 1.

The module holds the rules and room layouts (a *task* draws an :class:`Episode`), the stepping
engine of one environment, and the two environments. The batched engine in
:mod:`memrl.envs.tvt_vector` draws its episodes with the same task objects, so both consume
randomness identically.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from memrl.envs.actions import check_discrete_action

# -- grid, cell codes, actions -----------------------------------------------------------------

ROWS, COLS = 7, 11
"""Every room is drawn on the same 7x11 canvas (the size of the pycolab art); cells outside the
room are wall."""

NUM_CELLS = ROWS * COLS
CELL_PIXELS = 16

FLOOR, WALL, AGENT, KEY, DOOR, APPLE = 0, 1, 2, 3, 4, 5
FIRST_COLOUR = 6
"""Cell codes: floor, wall, agent, key, door, apple, then one code per colour of :data:`COLOURS`."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 75),
    "blue": (0, 90, 255),
    "yellow": (255, 225, 25),
    "magenta": (240, 50, 230),
    "cyan": (70, 240, 240),
    "orange": (245, 130, 48),
    "purple": (145, 30, 180),
    "teal": (0, 128, 128),
}
"""PassiveVisualMatch's palette: the colour codes are ``FIRST_COLOUR + index``."""

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
NUM_CODES = FIRST_COLOUR + len(COLOURS)

PALETTE = np.array(
    [(170, 170, 170), (70, 70, 70), (255, 255, 255), (160, 82, 45), (135, 206, 235), (140, 178, 0)]
    + list(COLOURS.values()),
    dtype=np.uint8,
)
"""RGB of every cell code, ``[NUM_CODES, 3]``."""

GLYPHS = ".#@kda" + "".join(name[0].upper() for name in COLOURS)
"""Character of every cell code in the ``ansi`` render (colours by initial)."""

NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3
MOVES = np.array([-COLS, 1, COLS, -1], dtype=np.int64)
"""Flat-index offset of each action."""
NUM_ACTIONS = len(MOVES)

EXPLORE, DISTRACTOR, FINAL = 0, 1, 2
PHASE_NAMES: tuple[str, ...] = ("explore", "distractor", "final")


def _passable_table() -> np.ndarray:
    """Which codes the agent may enter, by ``2 * phase + has_key``: bool ``[6, NUM_CODES]``.

    Floor, key and apples are always passable; the colours only in the final phase (in the explore
    phase the colour is painted on the wall); the door only in the final phase with the key.
    """
    table = np.zeros((6, NUM_CODES), dtype=bool)
    table[:, [FLOOR, KEY, APPLE]] = True
    table[2 * FINAL :, FIRST_COLOUR:] = True
    table[2 * FINAL + 1, DOOR] = True
    return table


PASSABLE = _passable_table()
AFTER_ENTER = np.arange(NUM_CODES, dtype=np.uint8)
AFTER_ENTER[[KEY, APPLE]] = FLOOR
"""What a cell holds after the agent entered it: key and apples are picked up."""
ENDS_EPISODE = np.zeros(NUM_CODES, dtype=bool)
ENDS_EPISODE[DOOR] = True
ENDS_EPISODE[FIRST_COLOUR:] = True
"""Entering the (open) door or a coloured square ends the episode."""


def _room(art: tuple[str, ...]) -> np.ndarray:
    """Flat uint8 room of an ASCII drawing (``#`` and blanks wall, everything else floor)."""
    assert len(art) == ROWS and all(len(row) == COLS for row in art)
    return np.array([WALL if c in "# " else FLOOR for row in art for c in row], dtype=np.uint8)


def _cells(art: tuple[str, ...], marker: str) -> np.ndarray:
    """Flat indices of the cells of ``art`` that hold ``marker``, row-major."""
    return np.array([i for i, c in enumerate("".join(art)) if c == marker], dtype=np.int64)


def cell_position(cell: int) -> np.ndarray:
    """``[row, col]`` of a flat cell index, int64."""
    return np.array(divmod(int(cell), COLS), dtype=np.int64)


# Key-to-door's explore room (after the pycolab art): the key in the top half, the agent starts
# in the bottom half, a three-cell gap between them.
KEY_ROOM_ART = (
    "  #######  ",
    "  #kkkkk#  ",
    "  #kkkkk#  ",
    "  ##...##  ",
    "  #sssss#  ",
    "  #sssss#  ",
    "  #######  ",
)
KEY_ROOM = _room(KEY_ROOM_ART)
KEY_CELLS = _cells(KEY_ROOM_ART, "k")
KEY_ROOM_STARTS = _cells(KEY_ROOM_ART, "s")

# Passive visual match's explore room: the colour is painted on the top wall (c).
PAINTING_ROOM_ART = (
    "  #ccccc#  ",
    "  #.....#  ",
    "  #.....#  ",
    "  #.....#  ",
    "  #.....#  ",
    "  #..s..#  ",
    "  #######  ",
)
PAINTING_ROOM = _room(PAINTING_ROOM_ART)
PAINTING_CELLS = _cells(PAINTING_ROOM_ART, "c")
PAINTING_ROOM_START = int(_cells(PAINTING_ROOM_ART, "s")[0])

# The distractor room (pycolab's apple room, 9x5 inside); also passive visual match's final room.
APPLE_ROOM_ART = (
    "###########",
    "#.........#",
    "#.........#",
    "#.........#",
    "#.........#",
    "#....s....#",
    "###########",
)
APPLE_ROOM = _room(APPLE_ROOM_ART)
APPLE_ROOM_START = int(_cells(APPLE_ROOM_ART, "s")[0])
APPLE_CELLS = np.array(
    [i for i in np.flatnonzero(APPLE_ROOM == FLOOR) if i != APPLE_ROOM_START], dtype=np.int64
)
"""The 44 cells apples can occupy (the apple room's floor but the agent's start)."""

# Key-to-door's final room (pycolab's "SR" art): the door in the top wall.
DOOR_ROOM_ART = (
    "           ",
    "   ##d##   ",
    "   #...#   ",
    "   #.s.#   ",
    "   #...#   ",
    "   #####   ",
    "           ",
)
DOOR_ROOM = _room(DOOR_ROOM_ART)
DOOR_CELL = int(_cells(DOOR_ROOM_ART, "d")[0])
DOOR_ROOM[DOOR_CELL] = DOOR
DOOR_ROOM_START = int(_cells(DOOR_ROOM_ART, "s")[0])

CHOICE_ROW = 2
MAX_CHOICES = 5

KEY_TO_DOOR_ROOMS = np.stack([KEY_ROOM, APPLE_ROOM, DOOR_ROOM])
VISUAL_MATCH_ROOMS = np.stack([PAINTING_ROOM, APPLE_ROOM, APPLE_ROOM])
"""The three rooms of each task before the episode's draw, ``[3, NUM_CELLS]``."""


@functools.cache
def choice_cells(num_choices: int) -> np.ndarray:
    """Cells of the coloured squares of the final room: row 2, two columns apart, centred.

    Cached: the returned array is shared, do not modify it.
    """
    cols = COLS // 2 + 2 * np.arange(num_choices) - (num_choices - 1)
    return CHOICE_ROW * COLS + cols


# -- arguments ---------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as int, or raise ``ValueError`` naming it and the allowed range."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def _check_apple_reward(value: Any) -> tuple[float, float]:
    """``apple_reward`` as ``(low, high)``; a single number means a fixed reward."""
    pair = (value, value) if isinstance(value, Real) and not isinstance(value, bool) else value
    try:
        low, high = (float(v) for v in pair)
        valid = all(isinstance(v, Real) and not isinstance(v, bool) for v in pair)
    except (TypeError, ValueError):
        valid = False
    if not valid or not (np.isfinite(low) and np.isfinite(high) and 0.0 <= low <= high):
        raise ValueError(
            "apple_reward must be a number >= 0 or a pair (low, high) with 0 <= low <= high, "
            f"got {value!r}"
        )
    return low, high


def check_render_mode(render_mode: Any, allowed: list[str]) -> None:
    """Raise ``ValueError`` unless ``render_mode`` is None or one of ``allowed``."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"render_mode must be one of {allowed} or None, got {render_mode!r}")


# -- tasks: the rules, and what an episode draws -----------------------------------------------


@dataclass
class Episode:
    """Everything an episode drew at reset.

    Attributes:
        rooms: The three rooms without the agent, uint8 ``[3, NUM_CELLS]`` (explore, distractor,
            final).
        starts: The agent's start cell in each room, ``[3]``.
        goal_code: The cell code whose entry is a success (the door, or the matching colour).
        apple_value: Reward of one apple in this episode.
        memory: ``info["memory"]`` at reset.
    """

    rooms: np.ndarray
    starts: np.ndarray
    goal_code: int
    apple_value: float
    memory: dict[str, Any] = field(default_factory=dict)


@dataclass
class ThreePhaseTask:
    """Phase lengths and the distractor room, shared by both TVT tasks."""

    explore_steps: int = 15
    distractor_steps: int = 90
    final_steps: int = 15
    num_apples: int = 10
    apple_reward: float | tuple[float, float] = (0.01, 0.05)
    apple_reward_range: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.explore_steps = _check_int("explore_steps", self.explore_steps, 1)
        self.distractor_steps = _check_int("distractor_steps", self.distractor_steps, 0)
        self.final_steps = _check_int("final_steps", self.final_steps, 1)
        self.num_apples = _check_int("num_apples", self.num_apples, 0, len(APPLE_CELLS))
        self.apple_reward_range = _check_apple_reward(self.apple_reward)

    @property
    def episode_steps(self) -> int:
        """Length of an episode that does not end early: the sum of the phase lengths."""
        return self.explore_steps + self.distractor_steps + self.final_steps

    @property
    def observation_high(self) -> int:
        """Largest cell code an observation can hold."""
        return APPLE

    def draw(self, rng: np.random.Generator) -> Episode:
        """Draw an episode: the task's explore and final rooms first, then the apples."""
        episode = self._draw_task_rooms(rng)
        apple_value = float(rng.uniform(*self.apple_reward_range))
        apples = APPLE_CELLS[rng.permutation(len(APPLE_CELLS))[: self.num_apples]]
        episode.rooms[DISTRACTOR, apples] = APPLE
        episode.apple_value = apple_value
        episode.memory.update(
            explore_steps=self.explore_steps,
            distractor_steps=self.distractor_steps,
            final_steps=self.final_steps,
            apple_reward=apple_value,
        )
        return episode

    def memory(self, episode: Episode, has_key: bool) -> dict[str, Any]:
        """``info["memory"]`` on the last step (a fresh dict)."""
        return dict(episode.memory)

    def _draw_task_rooms(self, rng: np.random.Generator) -> Episode:
        raise NotImplementedError


@dataclass
class KeyToDoorTask(ThreePhaseTask):
    """Key-to-door: pick up the key in phase 1 to open the door in phase 3."""

    def _draw_task_rooms(self, rng: np.random.Generator) -> Episode:
        key_cell = int(KEY_CELLS[rng.integers(len(KEY_CELLS))])
        start = int(KEY_ROOM_STARTS[rng.integers(len(KEY_ROOM_STARTS))])
        rooms = KEY_TO_DOOR_ROOMS.copy()
        rooms[EXPLORE, key_cell] = KEY
        memory = {"key_position": cell_position(key_cell), "has_key": False}
        return Episode(
            rooms=rooms,
            starts=np.array([start, APPLE_ROOM_START, DOOR_ROOM_START], dtype=np.int64),
            goal_code=DOOR,
            apple_value=0.0,
            memory=memory,
        )

    def memory(self, episode: Episode, has_key: bool) -> dict[str, Any]:
        """``info["memory"]`` on the last step: whether the key was collected."""
        return {**episode.memory, "has_key": bool(has_key)}


@dataclass
class PassiveVisualMatchTask(ThreePhaseTask):
    """Passive visual match: choose, in phase 3, the colour shown in phase 1."""

    num_choices: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        self.num_choices = _check_int("num_choices", self.num_choices, 2, MAX_CHOICES)

    @property
    def observation_high(self) -> int:
        """Largest cell code an observation can hold."""
        return NUM_CODES - 1

    def _draw_task_rooms(self, rng: np.random.Generator) -> Episode:
        colours = rng.permutation(len(COLOURS))[: self.num_choices]
        target_slot = int(rng.integers(self.num_choices))
        target = int(colours[target_slot])
        cells = choice_cells(self.num_choices)
        rooms = VISUAL_MATCH_ROOMS.copy()
        rooms[EXPLORE, PAINTING_CELLS] = FIRST_COLOUR + target
        rooms[FINAL, cells] = FIRST_COLOUR + colours
        memory = {
            "colour": target,
            "choice_colours": colours.astype(np.int64),
            "target_position": cell_position(cells[target_slot]),
        }
        return Episode(
            rooms=rooms,
            starts=np.array(
                [PAINTING_ROOM_START, APPLE_ROOM_START, APPLE_ROOM_START], dtype=np.int64
            ),
            goal_code=FIRST_COLOUR + target,
            apple_value=0.0,
            memory=memory,
        )


# -- rendering ---------------------------------------------------------------------------------


def render_rgb(grid: np.ndarray) -> np.ndarray:
    """Picture of a room with the agent, ``CELL_PIXELS`` per cell: uint8 ``[112, 176, 3]``."""
    image = PALETTE[grid.reshape(ROWS, COLS)]
    image = np.repeat(np.repeat(image, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
    image[::CELL_PIXELS] //= 2  # faint grid lines
    image[:, ::CELL_PIXELS] //= 2
    return image


def render_ansi(grid: np.ndarray, phase: int, step_in_phase: int, phase_steps: int) -> str:
    """Text drawing of a room with the agent, under a header line."""
    rows = ("".join(GLYPHS[c] for c in grid[r * COLS : (r + 1) * COLS]) for r in range(ROWS))
    return f"{PHASE_NAMES[phase]} {step_in_phase}/{phase_steps}\n" + "\n".join(rows)


# -- environments ------------------------------------------------------------------------------


class ThreePhaseGridEnv(gymnasium.Env[np.ndarray, np.int64]):
    """The stepping engine of both TVT tasks; see :class:`KeyToDoorEnv`.

    Args:
        task: The task's rules, phase lengths and episode draw.
        render_mode: ``"rgb_array"``, ``"ansi"`` or None.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(self, task: ThreePhaseTask, render_mode: str | None = None) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.task = task
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, task.observation_high, (NUM_CELLS,), np.uint8)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.action_names = ("N", "E", "S", "W")  # for `memrl play`
        self._distractor_start = task.explore_steps
        self._final_start = task.explore_steps + task.distractor_steps
        self._teleport_steps = (self._distractor_start, self._final_start)
        self._episode_steps = task.episode_steps
        self._moves = MOVES.tolist()
        self._passable = [row.tolist() for row in PASSABLE]  # by 2 * phase + has_key
        self._episode: Episode  # drawn by reset()
        self._grid = np.zeros(NUM_CELLS, dtype=np.uint8)  # current room without the agent
        self._cells: list[int] = []  # the same, as Python ints for the step logic
        self._pos = 0
        self._step = 0
        self._phase = EXPLORE
        self._has_key = False
        self._can_enter: list[bool] = self._passable[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode in the explore room."""
        super().reset(seed=seed)
        self._episode = self.task.draw(self.np_random)
        self._step = 0
        self._has_key = False
        self._enter_phase(EXPLORE)
        return self._observe(), {"memory": dict(self._episode.memory), "action_ignored": True}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move one cell (walls block); pick up, eat, open or choose what the agent walks onto."""
        action = check_discrete_action(action, NUM_ACTIONS)
        # The last step of a phase teleports the agent: its move matters only if it can pick
        # up something (the key, or an apple worth a reward) on the way out.
        ignored = self._step + 1 in self._teleport_steps and not self._pickup_within_reach()
        target = self._pos + self._moves[action]
        code = self._cells[target]
        reward = 0.0
        ended = success = False
        if self._can_enter[code]:
            self._pos = target
            if code == APPLE:
                reward = self._episode.apple_value
                self._clear(target)
            elif code == KEY:
                self._has_key = True
                self._clear(target)
                self._can_enter = self._passable[2 * self._phase + 1]
            elif code != FLOOR:  # the door or a coloured square
                ended = True
                success = code == self._episode.goal_code
                reward = float(success)
        step = self._step + 1
        self._step = step
        if not ended:
            if step == self._final_start:
                self._enter_phase(FINAL)
            elif step == self._distractor_start:
                self._enter_phase(DISTRACTOR)
            elif step == self._episode_steps:
                ended = True
        if ended:
            info = {
                "is_success": success,
                "memory": self.task.memory(self._episode, self._has_key),
                "action_ignored": ignored,
            }
            return self._observe(), reward, True, False, info
        return self._observe(), reward, False, False, {"action_ignored": ignored}

    def _pickup_within_reach(self) -> bool:
        """Whether one move takes the agent onto the key or onto an apple worth a reward."""
        apples_count = self._episode.apple_value != 0.0
        for move in self._moves:
            code = self._cells[self._pos + move]
            if code == KEY or (code == APPLE and apples_count):
                return True
        return False

    def render(self) -> np.ndarray | str | None:
        """Draw the current room (``rgb_array``: 16 px per cell; ``ansi``: text)."""
        if self.render_mode is None:
            return None
        grid = self._observe()
        if self.render_mode == "ansi":
            phase_start = (0, self._distractor_start, self._final_start)[self._phase]
            phase_steps = (
                self.task.explore_steps,
                self.task.distractor_steps,
                self.task.final_steps,
            )[self._phase]
            return render_ansi(grid, self._phase, self._step - phase_start, phase_steps)
        return render_rgb(grid)

    def _enter_phase(self, phase: int) -> None:
        """Teleport the agent to the start of ``phase``'s room."""
        self._phase = phase
        self._grid = self._episode.rooms[phase].copy()
        self._cells = self._grid.tolist()
        self._pos = int(self._episode.starts[phase])
        self._can_enter = self._passable[2 * phase + self._has_key]

    def _clear(self, cell: int) -> None:
        self._grid[cell] = FLOOR
        self._cells[cell] = FLOOR

    def _observe(self) -> np.ndarray:
        obs = self._grid.copy()
        obs[self._pos] = AGENT
        return obs


class KeyToDoorEnv(ThreePhaseGridEnv):
    """Pick up a key, eat apples for a while, then open a door with the key.

    ## Description

    TVT's key-to-door task (Hung et al. 2019, "Optimizing agent behavior over long time scales by
    transporting value") as a small symbolic grid world, after DeepMind's pycolab version. Three
    phases, each in its own room; at a phase change the agent is teleported to the next room.

    1. *Explore* (`explore_steps`, default 15): a 5x5 room split by a wall with a three-cell gap;
       a key lies at a random cell of the top half, the agent starts at a random cell of the
       bottom half (at most 8 steps from the key). Walking onto the key picks it up.
    2. *Distractor* (`distractor_steps`, default 90): a 9x5 room with `num_apples` apples at
       random cells; walking onto an apple eats it for a small reward (apples do not respawn).
    3. *Final* (`final_steps`, default 15): a 3x3 room with a door in its top wall, two steps from
       the agent. With the key, walking into the door opens it: reward 1, episode over. Without
       the key, the door is a wall.

    ## Observation Space

    `Box(0, 5, (77,), uint8)`: the current room on a 7x11 canvas, flattened row-major
    (`obs.reshape(7, 11)`), one cell code per cell. Cells outside the room are wall. The room's
    shape tells the phase; the agent's cell its position.

    | Code | Cell  |
    |------|-------|
    | 0    | floor |
    | 1    | wall  |
    | 2    | agent |
    | 3    | key   |
    | 4    | door  |
    | 5    | apple |

    ## Action Space

    `Discrete(4)`: 0 north, 1 east, 2 south, 3 west; the agent moves one cell, walls block. No
    no-op, as in the pycolab version (bumping into a wall stands still). An action is an integer
    (a Python or numpy int, or a 0-d integer array); anything else (out of range, negative such
    as -1, a float, a bool) raises `ValueError`.

    ## Rewards

    - Apple: a reward drawn once per episode uniformly from `apple_reward` (default
      [0.01, 0.05]). TVT draws apple rewards from [1, 10] against a door of 10; memrl scales the
      door to 1 (POPGym's habit of returns near 1) and keeps all apples together (at most
      `num_apples * 0.05 = 0.5` by default) well under the door, so the return is at most 1.5.
      Pass `apple_reward=(0.1, 1.0)` for TVT's original ratio.
    - Door opened: 1. Everything else: 0.

    ## Starting State

    In order from the episode's generator: the key's cell (uniform over the 10 cells of the top
    half), the agent's start (uniform over the 10 cells of the bottom half), the apple reward,
    then the apples' cells (uniform without replacement over the apple room's 44 free cells).

    ## Episode End

    Terminated when the door opens (success) or when the final phase has lasted `final_steps`
    steps, i.e. after `explore_steps + distractor_steps + final_steps` steps (120 by default;
    the task is over). 120 is also the registered `max_episode_steps`, so a 120-step episode's
    last step is `truncated` as well; to lengthen episodes with the phase lengths, pass
    `max_episode_steps` to `gymnasium.make` too. `info["is_success"]` (the door opened) is set
    on the last step.

    `reset` and every `step` return `info["action_ignored"]`: True when the action passed to the
    `step` call that returns this info could not change anything. That is the last step of the
    explore and of the distractor phase (the agent is teleported to the next room whatever it
    does) unless one move from where it stands picks up the key or eats an apple worth a
    reward; False on every other step. `reset` reports True (no action was taken), so that a
    vector env's autoreset step, whose info is the reset info, reports its ignored action too.

    ## Arguments

    - `explore_steps` (int >= 1, default 15), `distractor_steps` (int >= 0, default 90),
      `final_steps` (int >= 1, default 15): phase lengths; each phase lasts exactly its length
      (the final one may end early).
    - `num_apples` (int 0..44, default 10): apples in the distractor room.
    - `apple_reward` (number or pair `(low, high)`, 0 <= low <= high, default (0.01, 0.05)).
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` draws the room, 16 px per cell
      (uint8 112x176x3); `ansi` draws it with `.#@kda` under a header line.

    ## Memory demand

    One bit, *did I pick up the key?*, carried across the `distractor_steps` (default 90) steps
    of the apple room, whose rewards are unrelated to the door. The key does not show in later
    rooms. It is also TVT's credit-assignment problem: the door's reward must be credited to a
    pickup about `distractor_steps + 2` steps earlier.

    `info["memory"]`: at reset `{"key_position": [row, col], "has_key": False,
    "explore_steps", "distractor_steps", "final_steps", "apple_reward"}`; on the last step the
    same with `has_key` telling whether the key was collected.

    ## Version History

    - v0: initial version; `info["action_ignored"]` added.
    """

    def __init__(
        self,
        explore_steps: int = 15,
        distractor_steps: int = 90,
        final_steps: int = 15,
        num_apples: int = 10,
        apple_reward: float | tuple[float, float] = (0.01, 0.05),
        render_mode: str | None = None,
    ) -> None:
        task = KeyToDoorTask(
            explore_steps=explore_steps,
            distractor_steps=distractor_steps,
            final_steps=final_steps,
            num_apples=num_apples,
            apple_reward=apple_reward,
        )
        super().__init__(task, render_mode=render_mode)


class PassiveVisualMatchEnv(ThreePhaseGridEnv):
    """See a colour, eat apples for a while, then walk onto the square of that colour.

    ## Description

    TVT's passive visual match task (Hung et al. 2019) as a small symbolic grid world, after
    DeepMind's pycolab version. Three phases, each in its own room; at a phase change the agent
    is teleported to the next room.

    1. *Explore* (`explore_steps`, default 15): a 5x5 room whose top wall is painted with the
       target colour; the agent starts at the bottom centre and has nothing useful to do.
    2. *Distractor* (`distractor_steps`, default 90): a 9x5 room with `num_apples` apples at
       random cells; walking onto an apple eats it for a small reward (apples do not respawn).
    3. *Final* (`final_steps`, default 15): the same 9x5 room, empty but for `num_choices`
       squares of distinct colours in row 2 (two columns apart, centred), one of them the target
       colour. Walking onto a square ends the episode: reward 1 if it is the target, else 0.

    ## Observation Space

    `Box(0, 13, (77,), uint8)`: the current room on a 7x11 canvas, flattened row-major
    (`obs.reshape(7, 11)`), one cell code per cell. Cells outside the room are wall. The room's
    shape and contents tell the phase; the agent's cell its position.

    | Code  | Cell                                                                  |
    |-------|-----------------------------------------------------------------------|
    | 0     | floor                                                                 |
    | 1     | wall                                                                  |
    | 2     | agent                                                                 |
    | 5     | apple                                                                 |
    | 6..13 | red, blue, yellow, magenta, cyan, orange, purple, teal: the painted   |
    |       | wall in phase 1, the squares in phase 3                               |

    ## Action Space

    `Discrete(4)`: 0 north, 1 east, 2 south, 3 west; the agent moves one cell, walls (and the
    painted wall) block. No no-op, as in the pycolab version. Anything but an integer in range
    raises `ValueError`, as in KeyToDoor.

    ## Rewards

    - Apple: a reward drawn once per episode uniformly from `apple_reward` (default
      [0.01, 0.05]); all apples together stay well under the match reward (see KeyToDoor).
    - The matching square: 1. A wrong square, and everything else: 0.

    ## Starting State

    In order from the episode's generator: the `num_choices` colours of the squares (without
    replacement from 8; their order is their left-to-right order), the target's slot among them
    (uniform), the apple reward, then the apples' cells (uniform without replacement over the
    apple room's 44 free cells). The agent starts at the bottom centre of every room.

    ## Episode End

    Terminated when the agent walks onto a square (success if it matches) or when the final phase
    has lasted `final_steps` steps, i.e. after `explore_steps + distractor_steps + final_steps`
    steps (120 by default; the task is over). 120 is also the registered `max_episode_steps`, as
    in KeyToDoor. `info["is_success"]` (the matching square was chosen) is set on the last step.
    `info["action_ignored"]` is on every step and at reset, as in KeyToDoor: True on the last
    step of the explore phase (nothing to pick up there) and on the last step of the distractor
    phase unless an apple worth a reward is one move away.

    ## Arguments

    - `explore_steps` (int >= 1, default 15), `distractor_steps` (int >= 0, default 90),
      `final_steps` (int >= 1, default 15): phase lengths; each phase lasts exactly its length
      (the final one may end early).
    - `num_choices` (int 2..5, default 3): coloured squares in the final room; chance is
      `1 / num_choices`.
    - `num_apples` (int 0..44, default 10): apples in the distractor room.
    - `apple_reward` (number or pair `(low, high)`, 0 <= low <= high, default (0.01, 0.05)).
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` draws the room, 16 px per cell
      (uint8 112x176x3); `ansi` draws it with `.#@a` and colour initials under a header line.

    ## Memory demand

    One colour out of 8 (in effect one of `num_choices`), seen passively during the explore phase
    and needed `distractor_steps` (default 90) steps later, across a room of apples whose rewards
    are unrelated to it.

    `info["memory"]` (at reset and on the last step): `{"colour": palette index,
    "choice_colours": palette index of each square left to right, "target_position": [row, col],
    "explore_steps", "distractor_steps", "final_steps", "apple_reward"}`.

    ## Version History

    - v0: initial version; `info["action_ignored"]` added.
    """

    def __init__(
        self,
        explore_steps: int = 15,
        distractor_steps: int = 90,
        final_steps: int = 15,
        num_choices: int = 3,
        num_apples: int = 10,
        apple_reward: float | tuple[float, float] = (0.01, 0.05),
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
        super().__init__(task, render_mode=render_mode)
