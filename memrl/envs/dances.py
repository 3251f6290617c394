"""The thirteen Ballet dances (HCAM paper; DeepMind's pycolab Ballet is the reference behaviour).

A dance is 16 moves of one cell in one of eight compass directions. Every dance stays inside the
3x3 block centred on the dancer's home cell and ends back home, so dancers never meet walls, the
agent or each other.
"""

from __future__ import annotations

import numpy as np

# Row/column step of each compass direction; the index is also the agent's action.
DIRECTIONS: tuple[str, ...] = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
DIRECTION_DELTAS = np.array(
    [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)], dtype=np.int64
)

DANCE_LENGTH = 16

_DANCE_MOVES: dict[str, str] = {
    "circle_cw": "N E S S W W N N E E S S W W N E",
    "circle_ccw": "N W S S E E N N W W S S E E N W",
    "up_and_down": "N S S N N S S N N S S N N S S N",
    "left_and_right": "E W W E E W W E E W W E E W W E",
    "diagonal_uldr": "NW SE SE NW NW SE SE NW NW SE SE NW NW SE SE NW",
    "diagonal_urdl": "NE SW SW NE NE SW SW NE NE SW SW NE NE SW SW NE",
    "plus_cw": "N S E W S N W E N S E W S N W E",
    "plus_ccw": "N S W E S N E W N S W E S N E W",
    "times_cw": "NE SW SE NW SW NE NW SE NE SW SE NW SW NE NW SE",
    "times_ccw": "NW SE SW NE SE NW NE SW NW SE SW NE SE NW NE SW",
    "zee": "NE W W E E SW NE SW SW E E W W NE SW NE",
    "chevron_down": "NW S SE NE N SW NE SW NE S SW NW N SE NW SE",
    "chevron_up": "SE N NW SW S NE SW NE SW N NE SE S NW SE NW",
}

DANCE_NAMES: tuple[str, ...] = tuple(_DANCE_MOVES)
"""Dance names; the instruction token of dance ``k`` is ``k + 1`` (0 means "watch")."""

NUM_DANCES = len(DANCE_NAMES)


def _offsets() -> np.ndarray:
    moves = np.array(
        [[DIRECTIONS.index(m) for m in _DANCE_MOVES[name].split()] for name in DANCE_NAMES]
    )
    assert moves.shape == (NUM_DANCES, DANCE_LENGTH)
    return np.cumsum(DIRECTION_DELTAS[moves], axis=1)


DANCE_OFFSETS: np.ndarray = _offsets()
"""``[13, 16, 2]`` int64: the dancer's (row, col) offset from home after each move of each dance."""
