"""Checkpoints that survive damage: atomic writes, a previous checkpoint, loading that falls back.

A save killed midway, a full disk or a flipped bit can leave a checkpoint that no longer reads.
Every trainer (memory PPO, SB3, continual SAC) therefore writes its files through this module:

- :func:`atomic_write` writes a file to ``NAME.tmp``, flushes it to disk (``fsync``) and renames it
  over ``NAME``, so the file is either the old one or the whole new one, never half of each.
- :class:`CheckpointStore` keeps ``latest.pt`` and, beside it, ``previous.pt``: a save first
  writes the new checkpoint to a temporary file, then moves ``latest.pt`` to ``previous.pt``, then
  renames the new file to ``latest.pt``. A kill between the two renames leaves ``previous.pt``
  alone, which loading falls back to.
- :func:`load_newest_intact` tries candidate files newest first. Every file is checked before it
  is used: it must be a whole zip archive whose members pass their CRC-32 checks (``torch.save``,
  SB3's ``save`` and ``numpy.savez`` all write zip archives with checksums, so truncation and
  corrupted bytes are both caught, even where ``torch.load`` would read corrupted tensors without a
  word), and hold the entries the trainer needs. A damaged file is reported by its path and reason
  in a warning that names the file used instead; when none is left the error names every file
  and why it failed (:class:`NoIntactCheckpointError`, a ``ValueError``, so the CLI prints it as
  one line).
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

LATEST = "latest.pt"
"""The newest checkpoint of a memory-PPO or continual-SAC run, in ``RUN_DIR/checkpoints/``."""
PREVIOUS = "previous.pt"
"""The checkpoint before ``latest.pt``, kept for when ``latest.pt`` is damaged."""

READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    LookupError,
    RuntimeError,
    TypeError,
    ValueError,
    AttributeError,
    ImportError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)
"""What reading a damaged file may raise (``torch.load``, ``pickle``, ``zipfile``, ``numpy``)."""

T = TypeVar("T")


class DamagedFileError(ValueError):
    """A checkpoint file (or a file it needs) cannot be read.

    Args:
        path: The damaged file.
        reason: What is wrong with it, in a few words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path} is damaged: {reason}")
        self.path = Path(path)
        self.reason = reason


class NoIntactCheckpointError(ValueError):
    """Every checkpoint of a run is damaged or missing; the message names each and why."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` with ``write(temporary_path)``, so that it is never seen half-written.

    Args:
        path: The file to (over)write.
        write: Writes the whole file to the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    temporary = write_temporary(path, write)
    commit(temporary, path)
    return path


def write_temporary(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` into ``path``'s temporary sibling ``NAME.tmp`` and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    with temporary.open("rb+") as file:
        os.fsync(file.fileno())
    return temporary


def commit(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` over ``path`` and flush the directory entry (where the OS can)."""
    temporary.replace(path)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a directory
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def verify_archive(path: str | Path, members: Collection[str] = ()) -> None:
    """Check that ``path`` is a whole zip archive, every member intact, ``members`` among them.

    Raises:
        DamagedFileError: Truncated, not a zip archive, a member failing its CRC-32 check, or a
            member of ``members`` missing; the message names ``path`` and what is wrong.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except zipfile.BadZipFile as error:
        raise DamagedFileError(path, f"truncated or not a zip archive: {error}") from None
    except OSError as error:
        raise DamagedFileError(path, f"unreadable: {error}") from None
    if bad is not None:
        raise DamagedFileError(path, f"corrupted bytes in its member {bad!r} (CRC-32 mismatch)")
    missing = sorted(set(members) - names)
    if missing:
        raise DamagedFileError(path, f"lacks the members {missing}")


def read_torch(path: Path, required: Collection[str] = ()) -> dict[str, Any]:
    """The dictionary ``torch.save`` wrote to ``path``, checked before it is unpickled.

    Args:
        path: A checkpoint written by :class:`CheckpointStore` (or ``torch.save``).
        required: Keys the dictionary must have.

    Raises:
        DamagedFileError: ``path`` is damaged (see :func:`verify_archive`), or it holds no
            dictionary or one without ``required``'s keys.
    """
    verify_archive(path)
    payload = torch.load(path, weights_only=False)
    if not isinstance(payload, Mapping):
        raise DamagedFileError(path, f"holds a {type(payload).__name__}, not a checkpoint")
    missing = [key for key in required if key not in payload]
    if missing:
        raise DamagedFileError(path, f"lacks the entries {missing}")
    return dict(payload)


def _reason(path: Path, error: BaseException) -> str:
    """One line on why ``path`` could not be read."""
    if isinstance(error, DamagedFileError):
        return error.reason if error.path == path else str(error)
    first_line = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:300]


def load_newest_intact(
    candidates: Sequence[Path], read: Callable[[Path], T], directory: Path
) -> tuple[Path, T]:
    """Read the first of ``candidates`` (newest first) that reads; warn of those that do not.

    Args:
        candidates: Checkpoint files, newest first; a missing one counts as damaged.
        read: Reads one file; raises :class:`DamagedFileError` or one of ``READ_ERRORS`` if it
            cannot.
        directory: Where the candidates live (for the error message).

    Returns:
        The file read and what ``read`` returned.

    Raises:
        NoIntactCheckpointError: No candidate reads; names every file and its reason.
    """
    damaged: list[tuple[Path, str]] = []
    for path in candidates:
        if not path.exists():
            damaged.append((path, "missing"))
            continue
        try:
            value = read(path)
        except READ_ERRORS as error:
            damaged.append((path, _reason(path, error)))
            continue
        if any(reason != "missing" for _, reason in damaged):
            skipped = "; ".join(f"{p} ({reason})" for p, reason in damaged)
            warnings.warn(
                f"damaged checkpoint {skipped}: using the older checkpoint {path} instead",
                stacklevel=3,
            )
        elif damaged:
            skipped = ", ".join(str(p) for p, _ in damaged)
            warnings.warn(
                f"checkpoint {skipped} is missing (a save killed midway?): using the older "
                f"checkpoint {path} instead",
                stacklevel=3,
            )
        return path, value
    listed = ", ".join(f"{p.name} ({reason})" for p, reason in damaged)
    raise NoIntactCheckpointError(f"no intact checkpoint left in {directory}: {listed}")


class CheckpointStore:
    """A run's ``latest.pt`` and ``previous.pt`` (``torch.save`` dictionaries) in ``directory``.

    :meth:`save` moves ``latest.pt`` to ``previous.pt`` before the new one takes its place, if
    ``latest.pt`` belongs to this run's line of checkpoints (this store wrote it, or loaded it).
    After :meth:`load` fell back to ``previous.pt``, the next save overwrites the damaged
    ``latest.pt`` and keeps ``previous.pt``; a store that has loaded nothing deletes a stale
    ``previous.pt`` when it first saves (it belongs to another run).

    Args:
        directory: The run's ``checkpoints/`` directory.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.latest = self.directory / LATEST
        self.previous = self.directory / PREVIOUS
        self._latest_is_current = False  # rotate latest.pt into previous.pt on the next save
        self._previous_is_current = False  # keep previous.pt on the next save

    def exists(self) -> bool:
        """Whether the directory holds a checkpoint (intact or not)."""
        return self.latest.exists() or self.previous.exists()

    def save(self, payload: Mapping[str, Any]) -> Path:
        """Write ``payload`` as the new ``latest.pt`` (see the class docstring); its path."""
        temporary = write_temporary(self.latest, lambda path: torch.save(dict(payload), path))
        if self._latest_is_current and self.latest.exists():
            self.latest.replace(self.previous)
        elif not self._previous_is_current:
            self.previous.unlink(missing_ok=True)
        commit(temporary, self.latest)
        self._latest_is_current = self._previous_is_current = True
        return self.latest

    def load(
        self,
        required: Collection[str] = (),
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Path, dict[str, Any]]:
        """The newest intact checkpoint: ``latest.pt``, else ``previous.pt`` (with a warning).

        Args:
            required: Keys a checkpoint must have.
            check: Further checks of a checkpoint that has them (e.g. that the files it refers
                to are intact); raises :class:`DamagedFileError` if it is not usable.

        Returns:
            The file loaded and its dictionary.

        Raises:
            NoIntactCheckpointError: Neither file is intact; names both and why.
        """

        def read(path: Path) -> dict[str, Any]:
            payload = read_torch(path, required)
            if check is not None:
                check(payload)
            return payload

        path, payload = load_newest_intact([self.latest, self.previous], read, self.directory)
        self._latest_is_current = path == self.latest
        self._previous_is_current = True
        return path, payload
