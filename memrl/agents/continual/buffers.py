"""Replay buffers: FIFO (reset at every task change) and reservoir ("perfect memory").

Both store float32 transitions ``(observation, action, reward, next_observation, terminated)`` in
preallocated numpy arrays (``np.zeros``, so untouched capacity costs no memory on Linux) and sample
uniformly with their own seeded ``numpy`` generator.

Size. A Meta-World transition with a CW10 one-hot is ``(2 * 49 + 4 + 2) * 4 = 416`` bytes:
Continual World's 1M-transition buffer is 416 MB. With CW20's one-hot of 20 a transition is 496
bytes, and its perfect-memory buffer (20M transitions) about 9.9 GB.

Checkpoints are incremental (:meth:`ReplayBuffer.save_parts` / :meth:`ReplayBuffer.load_parts`): the
buffer remembers which slots changed since the last save and writes only those rows, as one
``.npz`` part file, atomically. The checkpoint keeps the list of valid parts (the *manifest*);
loading replays them in order. So a checkpoint every 20k steps writes about 8 MB, not the whole
buffer, and a killed run loses nothing that was checkpointed. When the parts hold more than twice
the buffer's rows (a reservoir buffer overwrites slots), the next save writes one full snapshot
instead. ``clear()`` starts an empty manifest; stale part files are deleted once neither the new
checkpoint nor the one kept before it refers to them (``prune_parts``), so that the trainer can
fall back to its previous checkpoint. :func:`check_parts` checks a manifest's part files before
they are loaded (a damaged part is reported by its path).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from memrl.agents.checkpoints import DamagedFileError, atomic_write, verify_archive

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated")
PART_MEMBERS = tuple(f"{name}.npy" for name in ("slots", *FIELDS))
"""The arrays of a part file (``numpy.savez`` names them ``NAME.npy``)."""


class Batch(NamedTuple):
    """A minibatch of transitions (float32 tensors)."""

    observations: torch.Tensor  # [batch, obs_dim]
    actions: torch.Tensor  # [batch, action_dim]
    rewards: torch.Tensor  # [batch]
    next_observations: torch.Tensor  # [batch, obs_dim]
    terminated: torch.Tensor  # [batch], 1.0 where the episode ended by termination


class ReplayBuffer:
    """A FIFO replay buffer (the oldest transition is overwritten when full).

    Args:
        capacity: Maximum number of transitions.
        observation_dim: Width of an observation.
        action_dim: Width of an action.
        seed: Seed of the sampling generator.
    """

    kind = "fifo"

    def __init__(self, capacity: int, observation_dim: int, action_dim: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.size = 0  # filled slots
        self.position = 0  # next slot to write (FIFO)
        self.seen = 0  # transitions ever added
        self._dirty = np.zeros(capacity, dtype=bool)  # slots written since the last save
        self._manifest: list[tuple[str, int]] = []  # (part file name, rows) of the saved state
        self._next_part = 0

    def __len__(self) -> int:
        return self.size

    def _slot(self) -> int | None:
        """The slot of the next transition (None: drop it)."""
        slot = self.position
        self.position = (self.position + 1) % self.capacity
        return slot

    def add(
        self,
        observation: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_observation: np.ndarray,
        terminated: bool,
    ) -> None:
        """Store one transition."""
        slot = self._slot()
        self.seen += 1
        if slot is None:
            return
        self.observations[slot] = observation
        self.actions[slot] = action
        self.rewards[slot] = reward
        self.next_observations[slot] = next_observation
        self.terminated[slot] = terminated
        self._dirty[slot] = True
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = self.rng.integers(0, self.size, size=batch_size)
        return Batch(*(torch.from_numpy(getattr(self, name)[rows]) for name in FIELDS))

    def clear(self) -> None:
        """Forget every transition (Continual World's reset at a task change)."""
        self.size = self.position = self.seen = 0
        self._dirty[:] = False
        self._manifest = []

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Counters, generator and manifest (the rows live in the part files)."""
        return {
            "kind": self.kind,
            "capacity": self.capacity,
            "size": self.size,
            "position": self.position,
            "seen": self.seen,
            "rng": self.rng.bit_generator.state,
            "manifest": list(self._manifest),
            "next_part": self._next_part,
        }

    def save_parts(self, directory: str | Path) -> None:
        """Write the rows changed since the last save as a new part file (or a full snapshot).

        Call before writing the checkpoint that stores :meth:`state_dict`.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        slots = np.flatnonzero(self._dirty)
        saved_rows = sum(rows for _, rows in self._manifest)
        if saved_rows + slots.size > 2 * max(self.size, 1):
            slots = np.arange(self.size)  # compact: one snapshot replaces every part
            self._manifest = []
        if slots.size:
            name = f"part-{self._next_part:06d}.npz"
            self._next_part += 1
            rows = {k: getattr(self, k)[slots] for k in FIELDS}

            def write(path: Path) -> None:
                with path.open("wb") as f:  # a file object: savez adds no ".npz" to it
                    np.savez(f, slots=slots, **rows)

            atomic_write(directory / name, write)
            self._manifest.append((name, int(slots.size)))
        self._dirty[:] = False

    def load_state_dict(self, state: dict[str, Any], directory: str | Path) -> None:
        """Restore counters and generator and replay the manifest's part files.

        Check the part files first with :func:`check_parts`: a damaged one fails here midway.
        """
        if state["kind"] != self.kind or state["capacity"] != self.capacity:
            raise ValueError(
                f"checkpointed buffer is {state['kind']} of capacity {state['capacity']}, this "
                f"one is {self.kind} of capacity {self.capacity}"
            )
        self.size, self.position, self.seen = state["size"], state["position"], state["seen"]
        self.rng.bit_generator.state = state["rng"]
        self._manifest = [tuple(entry) for entry in state["manifest"]]  # type: ignore[misc]
        self._next_part = state["next_part"]
        for name, _ in self._manifest:
            with np.load(Path(directory) / name) as part:
                slots = part["slots"]
                for key in FIELDS:
                    getattr(self, key)[slots] = part[key]
        self._dirty[:] = False

    def prune_parts(self, directory: str | Path, keep: Collection[str] = ()) -> None:
        """Delete part files the manifest no longer refers to (after the checkpoint is written).

        Args:
            directory: The part files' directory.
            keep: Part files to keep too: those of the checkpoint kept before the new one.
        """
        keep = {*keep, *(name for name, _ in self._manifest)}
        for path in Path(directory).glob("part-*.npz*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def part_names(state: dict[str, Any]) -> list[str]:
    """The part files a buffer's :meth:`~ReplayBuffer.state_dict` refers to."""
    return [name for name, _ in state["manifest"]]


def check_parts(state: dict[str, Any], directory: str | Path) -> None:
    """Check that every part file of a buffer's state is there, intact and of its row count.

    Raises:
        DamagedFileError: A part is missing, truncated, corrupted, lacks an array or holds
            another number of rows than the manifest says; names the part's path.
    """
    for name, rows in state["manifest"]:
        path = Path(directory) / name
        if not path.exists():
            raise DamagedFileError(path, "missing")
        verify_archive(path, PART_MEMBERS)
        with np.load(path) as part:
            found = len(part["slots"])
        if found != rows:
            raise DamagedFileError(path, f"holds {found} rows, its checkpoint says {rows}")


class ReservoirBuffer(ReplayBuffer):
    """Reservoir sampling (Vitter's algorithm R): a uniform sample of everything ever added.

    The first ``capacity`` transitions fill the buffer; transition ``t`` (counting from 0) then
    replaces a uniformly chosen slot with probability ``capacity / (t + 1)``, so at any time every
    transition seen so far is in the buffer with the same probability. Continual World's "perfect
    memory" is this buffer, never cleared, as large as the whole stream.
    """

    kind = "reservoir"

    def _slot(self) -> int | None:
        if self.seen < self.capacity:
            return self.seen
        slot = int(self.rng.integers(0, self.seen + 1))  # uniform over 0..seen inclusive
        return slot if slot < self.capacity else None
