"""DelayedMatch: see a cue, sit through ``delay`` distractor steps, then name the cue.

The recall-vs-delay diagnostic of memrl, in the spirit of bsuite's ``memory_len`` and POPGym's
``RepeatFirst``: one of ``num_symbols`` symbols is shown at the first step, ``delay`` steps of
random symbols follow (marked as distractors), then a query asks which symbol was the cue. Nothing
after the first observation carries information about the cue, so success above chance measures
memory.

The module holds the single environment and the pieces the batched implementation
(:mod:`memrl.envs.delayed_match_vector`) shares with it: argument checks, the observation table and
the per-episode draw, so that both consume randomness identically.
"""

from __future__ import annotations

import colorsys
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from memrl.envs.actions import check_discrete_action

CUE, DISTRACTOR, QUERY = 0, 1, 2
"""Phase indices; the phase flag of the observation sits at ``num_symbols + phase``."""

PHASE_NAMES: tuple[str, ...] = ("cue", "distractor", "query")

CELL_PIXELS = 16
"""Side of one symbol slot in the ``rgb_array`` render."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def delay_bounds(delay: Any) -> tuple[int, int]:
    """``(low, high)`` of a ``delay`` argument: an integer, or a ``[low, high]`` pair.

    Raises:
        ValueError: naming the bad value and the allowed forms.
    """
    allowed = "an integer >= 0 or a [low, high] pair of integers with 0 <= low <= high"
    if _is_int(delay):
        low = high = int(delay)
    elif isinstance(delay, list | tuple) and len(delay) == 2 and all(_is_int(d) for d in delay):
        low, high = int(delay[0]), int(delay[1])
    else:
        raise ValueError(f"delay must be {allowed}, got {delay!r}")
    if not 0 <= low <= high:
        raise ValueError(f"delay must be {allowed}, got {delay!r}")
    return low, high


def check_arguments(num_symbols: Any, delay: Any, distractors: Any) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones.

    Args:
        num_symbols: Size of the symbol set; an integer >= 2.
        delay: Steps between the cue and the query: an integer >= 0, or a ``[low, high]`` pair
            from which every episode draws its delay uniformly.
        distractors: Whether the delay steps show random symbols; a bool.
    """
    if not _is_int(num_symbols):
        raise ValueError(f"num_symbols must be an integer >= 2, got {num_symbols!r}")
    if num_symbols < 2:
        raise ValueError(f"num_symbols must be an integer >= 2, got {num_symbols}")
    delay_bounds(delay)
    if not isinstance(distractors, bool | np.bool_):
        raise ValueError(f"distractors must be True or False, got {distractors!r}")


def check_render_mode(render_mode: Any, allowed: list[str]) -> None:
    """Raise ``ValueError`` unless ``render_mode`` is None or one of ``allowed``."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"render_mode must be one of {allowed} or None, got {render_mode!r}")


def observation_table(num_symbols: int) -> np.ndarray:
    """Every possible observation, one per row, indexed by a *view code*.

    View codes: ``s`` the cue ``s``; ``num_symbols + s`` the distractor ``s``;
    ``2 * num_symbols`` a delay step without a symbol (``distractors=False``);
    ``2 * num_symbols + 1`` the query.

    Returns:
        float32 array ``[2 * num_symbols + 2, num_symbols + 3]``.
    """
    n = num_symbols
    table = np.zeros((2 * n + 2, n + 3), dtype=np.float32)
    symbols = np.arange(n)
    table[symbols, symbols] = 1.0
    table[symbols, n + CUE] = 1.0
    table[n + symbols, symbols] = 1.0
    table[n + symbols, n + DISTRACTOR] = 1.0
    table[2 * n, n + DISTRACTOR] = 1.0
    table[2 * n + 1, n + QUERY] = 1.0
    return table


def draw_episode(
    rng: np.random.Generator, num_symbols: int, delay: tuple[int, int], distractors: bool
) -> tuple[int, np.ndarray]:
    """Draw one episode: the cue, then the view code of every delay step.

    With ``low < high`` the episode's delay is drawn first, uniformly from ``low .. high``; a fixed
    delay (``low == high``) draws nothing for it. Distractors are drawn uniformly from *all*
    symbols, the cue included: excluding the cue would leak it (after enough steps, the one symbol
    never shown as a distractor is the cue).

    Args:
        rng: The episode's generator.
        num_symbols: Size of the symbol set.
        delay: ``(low, high)`` bounds of the delay (see :func:`delay_bounds`).
        distractors: Whether delay steps show random symbols.

    Returns:
        ``(cue, delay_views)`` with ``delay_views`` an int64 array whose length is the delay.
    """
    low, high = delay
    length = low if low == high else int(rng.integers(low, high + 1))
    cue = int(rng.integers(num_symbols))
    if distractors:
        delay_views = num_symbols + rng.integers(num_symbols, size=length)
    else:
        delay_views = np.full(length, 2 * num_symbols, dtype=np.int64)
    return cue, delay_views


def decode_view(view: int, num_symbols: int) -> tuple[int, int | None]:
    """Phase and shown symbol (None if no symbol is shown) of a view code."""
    if view < num_symbols:
        return CUE, view
    if view < 2 * num_symbols:
        return DISTRACTOR, view - num_symbols
    return (DISTRACTOR, None) if view == 2 * num_symbols else (QUERY, None)


def symbol_colours(num_symbols: int) -> np.ndarray:
    """Distinct bright colours, one per symbol (evenly spaced hues), uint8 ``[num_symbols, 3]``."""
    colours = [colorsys.hsv_to_rgb(k / num_symbols, 0.85, 1.0) for k in range(num_symbols)]
    return np.round(np.array(colours) * 255).astype(np.uint8)


def render_rgb(num_symbols: int, phase: int, symbol: int | None) -> np.ndarray:
    """Picture of one observation: a row of symbol slots over a phase bar.

    The shown symbol's slot is filled with its colour, the others are dark; the bar below is white
    for the cue, grey for a delay step and yellow for the query.

    Returns:
        uint8 array ``[CELL_PIXELS + CELL_PIXELS // 2, num_symbols * CELL_PIXELS, 3]``.
    """
    slots = np.full((num_symbols, 3), 30, dtype=np.uint8)
    if symbol is not None:
        slots[symbol] = symbol_colours(num_symbols)[symbol]
    row = np.repeat(slots, CELL_PIXELS, axis=0)  # [num_symbols * CELL_PIXELS, 3]
    frame = np.zeros((CELL_PIXELS + CELL_PIXELS // 2, len(row), 3), dtype=np.uint8)
    frame[1 : CELL_PIXELS - 1] = row
    frame[:, ::CELL_PIXELS] = 0  # slot separators
    bar = ((255, 255, 255), (110, 110, 110), (255, 220, 0))[phase]
    frame[CELL_PIXELS:] = bar
    return frame


def render_ansi(num_symbols: int, phase: int, symbol: int | None, step: int, delay: int) -> str:
    """Text drawing of one observation, e.g. ``step 3/34 distractor [. . 2 .]``."""
    slots = ["." if symbol != k else str(k) for k in range(num_symbols)]
    return f"step {step}/{delay + 2} {PHASE_NAMES[phase]:<10} [{' '.join(slots)}]"


class DelayedMatchEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Remember a cue across ``delay`` distractor steps, then pick it.

    ## Description

    One of `num_symbols` symbols, the *cue*, is shown in the first observation (the one `reset`
    returns). Then `delay` steps follow; with `distractors=True` each shows a symbol drawn uniformly
    from all `num_symbols` symbols (the cue included), flagged as a distractor, so that a memory
    which keeps only the latest symbol answers at chance. Then a *query* observation, which carries
    no information about the cue, asks for an answer: the action taken on it ends the episode.
    In the spirit of bsuite's `memory_len` and POPGym's `RepeatFirst`.

    ## Observation Space

    `Box(0, 1, (num_symbols + 3,), float32)`: a one-hot of the shown symbol followed by a one-hot
    of the phase.

    | Index                | Meaning                                              |
    |----------------------|------------------------------------------------------|
    | `0 .. num_symbols-1` | 1 at the shown symbol (cue or distractor), else 0    |
    | `num_symbols`        | 1 on the cue step (step 0)                           |
    | `num_symbols + 1`    | 1 on a delay step (symbol part all 0 without distractors) |
    | `num_symbols + 2`    | 1 on the query step (symbol part all 0)              |

    ## Action Space

    `Discrete(num_symbols)`: the symbol the agent names. Actions are ignored until the query
    observation; the action taken on it is the answer. An action is an integer (a Python or
    numpy int, or a 0-d integer array); anything else (out of range, negative, a float such as
    `cue + 0.5`, a bool) raises `ValueError`, on every step.

    ## Rewards

    1 if the answer equals the cue, else 0; every other step gives 0. Returns lie in {0, 1}.

    ## Starting State

    A cue drawn uniformly from the `num_symbols` symbols; with distractors, all `delay` distractor
    symbols are drawn at reset too (independently and uniformly from all symbols).

    ## Episode End

    The episode terminates on the answer, i.e. after exactly `delay + 2` steps (one action on the
    cue, `delay` on the delay steps, one on the query). There is no truncation:
    `max_episode_steps` is None, since `delay` is meant to be varied (a fixed limit would cut
    longer episodes before the question); for wrappers that need it (`TimeAwareObservation`)
    pass `max_episode_steps=delay + 2` to `gymnasium.make`. `info["is_success"]` (answer == cue)
    is set on that last step.

    `reset` and every `step` also return `info["answer"]`, the cue (the right answer, the label
    of a supervised probe; also `info["memory"]["cue"]`), and `info["action_ignored"]`: True when
    the action passed to the `step` call that returns this info could not change anything (the
    first `delay + 1` steps, whose actions are taken on the cue and delay observations), False
    on the answering step. `reset` reports True (no action was taken), so that a vector env's
    autoreset step, whose info is the reset info, reports its ignored action too.

    ## Arguments

    - `num_symbols` (int >= 2, default 4): number of symbols; chance is `1 / num_symbols`.
    - `delay` (int >= 0, default 32): steps between the cue and the query. Works for any delay
      (recall-vs-delay curves run 10..4096 and beyond); a reset draws `delay` symbols. A
      `[low, high]` pair makes every episode draw its delay uniformly from `low .. high` (a
      training mixture, so that a memory learns to recall both recent and distant cues); the
      episode's delay is in `info["memory"]["delay"]`.
    - `distractors` (bool, default True): show random symbols during the delay (else a blank
      delay observation).
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): `rgb_array` draws a row of symbol slots
      (16 px each, the shown symbol in its colour) over a phase bar (white cue, grey delay,
      yellow query); `ansi` a line such as `step 3/34 distractor [. . 2 .]`.

    Registered tiers (`memrl/DelayedMatch-v0` is 4 symbols, delay 32):

    | id | symbols | delay | why |
    |----|---------|-------|-----|
    | `-Easy-v0` | 4 | 16 | within a frame stack of 16+ or one truncated-BPTT window of 32 |
    | `-Medium-v0` | 8 | 128 | beyond usual BPTT windows and one 128-step PPO rollout; chance 1/8 |
    | `-Hard-v0` | 16 | 1024 | beyond typical transformer contexts (<= 512); chance 1/16 |

    ## Memory demand

    One symbol out of `num_symbols` (log2(num_symbols) bits), held for `delay + 1` steps, against
    `delay` distractor symbols presented in the same input channels. The query carries no trace of
    the cue, and the distractor statistics are independent of it.

    `info["memory"]` (at reset and on the last step): `{"cue", "delay", "num_symbols"}`.

    ## Version History

    - v0: initial version; `info["answer"]` and `info["action_ignored"]` added.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
        num_symbols: int = 4,
        delay: int | tuple[int, int] | list[int] = 32,
        distractors: bool = True,
        render_mode: str | None = None,
    ) -> None:
        check_arguments(num_symbols, delay, distractors)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.num_symbols = int(num_symbols)
        self.delay_range = delay_bounds(delay)
        self.delay = self.delay_range[0]
        """Delay of the current episode (the fixed delay, or the last one drawn from a range)."""
        self.distractors = bool(distractors)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (self.num_symbols + 3,), np.float32)
        self.action_space = spaces.Discrete(self.num_symbols)
        # One read-only row per view code; observations are fresh copies of these.
        self._rows = list(observation_table(self.num_symbols))
        self._query_view = 2 * self.num_symbols + 1
        self._cue = 0
        self._views: list[int] = []
        self._step = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: draw the cue and the distractors; return the cue observation."""
        super().reset(seed=seed)
        self._cue, delay_views = draw_episode(
            self.np_random, self.num_symbols, self.delay_range, self.distractors
        )
        self.delay = len(delay_views)
        # View code of each observation in the episode: cue, delay steps, query.
        self._views = [self._cue, *delay_views.tolist(), self._query_view]
        self._step = 0
        info = {"memory": self._memory(), "answer": self._cue, "action_ignored": True}
        return self._rows[self._cue].copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Show the next observation; on the query observation, ``action`` is the answer."""
        action = check_discrete_action(action, self.num_symbols)
        step = self._step + 1
        self._step = step
        if step <= self.delay + 1:
            info: dict[str, Any] = {"answer": self._cue, "action_ignored": True}
            return self._rows[self._views[step]].copy(), 0.0, False, False, info
        correct = action == self._cue
        info = {
            "is_success": correct,
            "memory": self._memory(),
            "answer": self._cue,
            "action_ignored": False,
        }
        return self._rows[self._query_view].copy(), float(correct), True, False, info

    def render(self) -> np.ndarray | str | None:
        """Draw the current observation (``rgb_array``: uint8 HxWx3; ``ansi``: one line)."""
        if self.render_mode is None:
            return None
        step = min(self._step, self.delay + 1)
        view = self._views[step] if self._views else self._query_view
        phase, symbol = decode_view(view, self.num_symbols)
        if self.render_mode == "ansi":
            return render_ansi(self.num_symbols, phase, symbol, self._step, self.delay)
        return render_rgb(self.num_symbols, phase, symbol)

    def _memory(self) -> dict[str, int]:
        return {"cue": self._cue, "delay": self.delay, "num_symbols": self.num_symbols}
