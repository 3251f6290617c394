"""Dancer appearances: 15 shapes x 19 colours drawn as 9x9-pixel glyphs, and the glyph atlas.

The shapes and colours are those of DeepMind's pycolab Ballet. Rendering indexes a precomputed
atlas with a grid of cell codes, so an image costs one fancy-indexing call.
"""

from __future__ import annotations

import functools

import numpy as np

CELL_PIXELS = 9

SHAPES: tuple[str, ...] = (
    "triangle", "empty_square", "plus", "inverse_plus", "ex", "inverse_ex", "circle",
    "empty_circle", "tee", "upside_down_tee", "h", "u", "upside_down_u", "vertical_stripes",
    "horizontal_stripes",
)  # fmt: skip

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "brown": (128, 64, 0),
    "pink": (255, 64, 255),
    "cyan": (0, 255, 255),
    "dark_green": (0, 100, 0),
    "dark_red": (100, 0, 0),
    "dark_blue": (0, 0, 100),
    "olive": (100, 100, 0),
    "teal": (0, 100, 100),
    "lavender": (215, 200, 255),
    "peach": (255, 210, 170),
    "rose": (255, 205, 230),
    "light_green": (200, 255, 200),
    "light_yellow": (255, 255, 200),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

FLOOR_RGB = (0, 0, 0)
WALL_RGB = (40, 40, 40)
AGENT_RGB = (255, 255, 255)

# Cell codes of the atlas: 0 floor, 1 wall, 2 agent, then one code per (shape, colour).
FLOOR, WALL, AGENT = 0, 1, 2
FIRST_DANCER_CODE = 3
NUM_CELL_CODES = FIRST_DANCER_CODE + len(SHAPES) * len(COLOURS)


def dancer_code(shape: int | np.ndarray, colour: int | np.ndarray) -> int | np.ndarray:
    """Atlas code of a dancer with shape index ``shape`` and colour index ``colour``."""
    return FIRST_DANCER_CODE + shape * len(COLOURS) + colour


def shape_mask(shape: str) -> np.ndarray:
    """The 9x9 boolean mask of a named shape."""
    n = CELL_PIXELS
    half = n // 2
    i, j = np.mgrid[0:n, 0:n]
    mask = np.zeros((n, n), dtype=bool)
    bar = slice(half - 1, half + 2)
    if shape == "triangle":
        mask = np.where(j <= half, i >= 2 * (half - j), i >= 2 * (j - half))
    elif shape == "empty_square":
        mask[:2, :] = mask[-2:, :] = mask[:, :2] = mask[:, -2:] = True
    elif shape in ("plus", "inverse_plus"):
        mask[:, bar] = mask[bar, :] = True
        mask = ~mask if shape == "inverse_plus" else mask
    elif shape in ("ex", "inverse_ex"):
        mask = (np.abs(i - j) <= 1) | (np.abs(n - 1 - i - j) <= 1)
        mask = ~mask if shape == "inverse_ex" else mask
    elif shape == "circle":
        mask = (i - half) ** 2 + (j - half) ** 2 <= half**2
    elif shape == "empty_circle":
        mask = np.abs((i - half) ** 2 + (j - half) ** 2 - half**2) < 6
    elif shape in ("tee", "upside_down_tee"):
        mask[:, bar] = True
        mask[(slice(0, 3) if shape == "tee" else slice(-3, None)), :] = True
    elif shape in ("h", "u", "upside_down_u"):
        mask[:, :3] = mask[:, -3:] = True
        rows = {"h": bar, "u": slice(-3, None), "upside_down_u": slice(0, 3)}[shape]
        mask[rows, :] = True
    elif shape == "vertical_stripes":
        mask[:, ::2] = True
    elif shape == "horizontal_stripes":
        mask[::2, :] = True
    else:
        raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(SHAPES)}")
    return mask


@functools.cache
def glyph_atlas() -> np.ndarray:
    """``[NUM_CELL_CODES, 9, 9, 3]`` uint8: the picture of every cell code (read-only)."""
    atlas = np.zeros((NUM_CELL_CODES, CELL_PIXELS, CELL_PIXELS, 3), dtype=np.uint8)
    atlas[FLOOR] = FLOOR_RGB
    atlas[WALL] = WALL_RGB
    atlas[AGENT] = AGENT_RGB
    for s, shape in enumerate(SHAPES):
        mask = shape_mask(shape)
        for c, rgb in enumerate(COLOURS.values()):
            atlas[dancer_code(s, c)][mask] = rgb
    atlas.flags.writeable = False
    return atlas


def render_cells(cells: np.ndarray) -> np.ndarray:
    """Draw a grid of cell codes ``[..., H, W]`` as pixels ``[..., H*9, W*9, 3]`` uint8."""
    tiles = glyph_atlas()[cells]  # [..., H, W, 9, 9, 3]
    *lead, h, w = cells.shape
    tiles = np.swapaxes(tiles, -4, -3)  # [..., H, 9, W, 9, 3]
    return tiles.reshape(*lead, h * CELL_PIXELS, w * CELL_PIXELS, 3)
