"""Scripted policies for every memory env: an oracle and a memory-free baseline per family.

An **oracle** is told at reset, through ``info["memory"]``, what the episode will ask (or, where
that is not known in advance, remembers everything it observes), so it shows the upper bound a
perfect memory reaches. A **memory-free** policy acts on the current observation only; the gap
between the two is what memory is worth on that env. Both act on single (unbatched) envs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any

import numpy as np


class ScriptedPolicy(ABC):
    """A policy that plans from the reset info and the observations of one episode.

    Args:
        seed: Seed of the policy's own random choices.
        oracle: Play as the family's oracle; otherwise as its memory-free baseline.
    """

    description: str = ""

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.oracle = oracle

    @abstractmethod
    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Start an episode from its first observation and reset info."""

    @abstractmethod
    def act(self, observation: Any) -> Any:
        """Choose the action for ``observation``."""


# -- Ballet --------------------------------------------------------------------------------------


class BalletWalker(ScriptedPolicy):
    """Waits for the choice phase, then walks straight to one dancer (diagonally first).

    Args:
        seed: Seed of the choice of dancer.
        oracle: Walk to the target named in ``info["memory"]``; otherwise to a uniformly random
            dancer, which needs no memory (dancers are always visible).
    """

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        super().__init__(seed, oracle)
        self.description = "walks to the target" if oracle else "walks to a random dancer"
        self._path: list[int] = []

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Plan the walk from the start cell to the chosen dancer."""
        from memrl.envs.ballet import AGENT_START
        from memrl.envs.dances import DIRECTION_DELTAS

        memory = info["memory"]
        slots = np.asarray(memory["slots"])
        goal = (
            np.asarray(memory["target_slot"])
            if self.oracle
            else slots[self.rng.integers(len(slots))]
        )
        position, path = np.array(AGENT_START), []
        while (position != goal).any():
            delta = np.sign(goal - position)
            path.append(int(np.flatnonzero((delta == DIRECTION_DELTAS).all(axis=1))[0]))
            position = position + delta
        self._path = path[::-1]  # popped from the end

    def act(self, observation: Any) -> int:
        """Any action while watching (it is ignored); the next move once the instruction shows."""
        if observation["instruction"] == 0 or not self._path:
            return 0
        return self._path.pop()


# -- RoomBallet ----------------------------------------------------------------------------------


class RoomBalletAnswerer(ScriptedPolicy):
    """Answers RoomBallet's question: from a memory of every visit, or at random.

    Args:
        seed: Seed of the random answers (and of the moves in the active variant).
        oracle: Record (room, dance) at the last step of every visit and answer the question from
            that record (a perfect memory); otherwise answer a uniformly random dance.
    """

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        super().__init__(seed, oracle)
        self.description = "remembers every visit" if oracle else "answers at random"
        self._visits: list[tuple[int, int]] = []

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Forget the previous episode."""
        self._visits = []

    def act(self, observation: Any) -> int:
        """Move at random while watching; answer when asked."""
        from memrl.envs.dances import NUM_DANCES
        from memrl.envs.room_ballet import PHASE_QUERY, PHASE_VISIT_END

        phase = int(observation["phase"])
        if phase != PHASE_QUERY:
            if phase == PHASE_VISIT_END:
                dance = int(observation["view"][2]) - 1
                self._visits.append((int(observation["place"]), dance))
            return int(self.rng.integers(NUM_DANCES))
        if not self.oracle:
            return int(self.rng.integers(NUM_DANCES))
        _, room, visit = (int(v) for v in observation["question"])
        dances = [dance for place, dance in self._visits if place == room - 1]
        return dances[visit - 1]


# -- DelayedMatch --------------------------------------------------------------------------------


class DelayedMatchAnswerer(ScriptedPolicy):
    """Answers DelayedMatch: the cue from ``info["memory"]``, or a random symbol.

    Args:
        seed: Seed of the random answers.
        oracle: Answer the cue; otherwise a uniformly random symbol (the query shows none).
    """

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        super().__init__(seed, oracle)
        self.description = "answers the cue" if oracle else "answers at random"
        self._cue = 0
        self._num_symbols = 1

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Note the cue and the number of symbols."""
        self._cue = int(info["memory"]["cue"])
        self._num_symbols = int(info["memory"]["num_symbols"])

    def act(self, observation: Any) -> int:
        """The answer (ignored before the query)."""
        return self._cue if self.oracle else int(self.rng.integers(self._num_symbols))


# -- TVT: KeyToDoor and PassiveVisualMatch -------------------------------------------------------


def first_move_towards(observation: np.ndarray, goal: tuple[int, int]) -> int:
    """First action of a shortest path from the agent to ``goal`` in a TVT room.

    The path (breadth-first search) crosses floor, keys and apples only, and never a door or
    coloured square other than ``goal``. Returns 0 if ``goal`` is unreachable.

    Args:
        observation: The flat room observation of a TVT env.
        goal: (row, column) of the cell to reach.
    """
    from memrl.envs.tvt import AGENT, APPLE, COLS, FLOOR, KEY

    grid = observation.reshape(-1, COLS)
    start = divmod(int(np.flatnonzero(observation == AGENT)[0]), COLS)
    steps = ((-1, 0), (0, 1), (1, 0), (0, -1))  # actions N, E, S, W
    first: dict[tuple[int, int], int] = {start: -1}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return max(first[cell], 0)
        for action, (dr, dc) in enumerate(steps):
            nxt = (cell[0] + dr, cell[1] + dc)
            inside = 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < COLS
            if inside and nxt not in first and (grid[nxt] in (FLOOR, KEY, APPLE) or nxt == goal):
                first[nxt] = action if first[cell] < 0 else first[cell]
                queue.append(nxt)
    return 0


class ThreePhaseWalker(ScriptedPolicy):
    """Plays TVT's three phases by walking to cells of the room in view.

    Oracle on KeyToDoor: fetch the key, wander among the apples, walk to the door (it needs no
    memory: KeyToDoor tests credit assignment, not recall). Oracle on PassiveVisualMatch: walk to
    the square of the colour named in ``info["memory"]``. Memory-free on KeyToDoor: random moves;
    on PassiveVisualMatch: walk to a random square.

    Args:
        seed: Seed of the random choices.
        oracle: Play as the oracle described above.
    """

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        super().__init__(seed, oracle)
        self._memory: dict[str, Any] = {}
        self._step = 0
        self._goal: tuple[int, int] | None = None

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Read the phase lengths (and, as oracle, the target) from the reset info."""
        self._memory = info["memory"]
        self._step = 0
        self._goal = None
        if "key_position" in self._memory:  # KeyToDoor
            self.description = "key, then door" if self.oracle else "moves at random"
        else:
            self.description = "cued colour" if self.oracle else "picks a random square"

    def act(self, observation: Any) -> int:
        """Walk towards this phase's goal, or move at random when there is none."""
        from memrl.envs.tvt import COLS, DOOR_CELL, FIRST_COLOUR, KEY, cell_position

        memory, step = self._memory, self._step
        self._step += 1
        final = step >= memory["explore_steps"] + memory["distractor_steps"]
        if "key_position" in memory:  # KeyToDoor
            if not self.oracle:
                return int(self.rng.integers(4))
            if step < memory["explore_steps"] and (observation == KEY).any():
                return first_move_towards(observation, tuple(memory["key_position"]))
            if final:
                return first_move_towards(observation, tuple(cell_position(DOOR_CELL)))
            return int(self.rng.integers(4))
        if not final:
            return int(self.rng.integers(4))
        if self._goal is None:
            if self.oracle:
                self._goal = tuple(memory["target_position"])
            else:
                squares = np.flatnonzero(observation >= FIRST_COLOUR)
                self._goal = divmod(int(self.rng.choice(squares)), COLS)
        return first_move_towards(observation, self._goal)


# -- CuedReach -----------------------------------------------------------------------------------


class CuedReacher(ScriptedPolicy):
    """Meta-World's scripted expert for the task, fed a goal.

    Args:
        seed: Unused (the expert is deterministic); kept for a uniform signature.
        oracle: Feed the goal from ``info["memory"]`` (a perfect memory of the cue); otherwise the
            centre of the task's goal box, the best guess without memory.
    """

    def __init__(self, seed: int = 0, oracle: bool = True) -> None:
        super().__init__(seed, oracle)
        self.description = (
            "expert aimed at the cued goal" if oracle else "expert aimed at the goal box centre"
        )
        self._goal = np.zeros(3)
        self._expert: Any = None

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        """Choose the goal to aim at and the expert of the task."""
        from metaworld.policies import ENV_POLICY_MAP

        memory = info["memory"]
        self._expert = ENV_POLICY_MAP[memory["task"]]()  # type: ignore[abstract]
        if self.oracle:
            self._goal = np.asarray(memory["goal"], dtype=np.float64)
        else:
            low, high = (np.asarray(v, dtype=np.float64) for v in memory["goal_box"])
            self._goal = (low + high) / 2

    def act(self, observation: Any) -> np.ndarray:
        """The expert's action for the observation with the chosen goal written in."""
        from memrl.envs.cued_reach import GOAL

        full = np.array(observation[:39], dtype=np.float64)
        full[GOAL] = self._goal
        return self._expert.get_action(full).astype(np.float32)


FAMILY_POLICIES: dict[str, type[ScriptedPolicy]] = {
    "ballet": BalletWalker,
    "room_ballet": RoomBalletAnswerer,
    "delayed_match": DelayedMatchAnswerer,
    "tvt": ThreePhaseWalker,
    "cued_reach": CuedReacher,
}
"""The scripted policy of each env family (``SuiteEntry.family``)."""
