"""One trainer per run directory.

Two processes training the same run directory (a run started twice, or an orphaned worker of a
killed sweep) would overwrite each other's checkpoints and interleave their metric rows, and
neither would notice. Every trainer therefore holds an exclusive ``flock`` on ``RUN_DIR/.lock``
while it runs; a second one is refused with the holder's pid. A trainer that ends removes the
file; the operating system releases the lock of a process that ends however it ends, so the
file a killed run leaves behind locks nothing. On platforms without ``fcntl`` (Windows) runs are
not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
"""The lock's file in a run directory (it holds the pid of the process training the run)."""


class RunInUseError(RuntimeError):
    """Another process is training the run directory."""


class RunLock:
    """An exclusive lock on a run directory, held from construction until :meth:`release`.

    Usable as a context manager. The directory is created if missing.

    Args:
        run_dir: The run directory.

    Raises:
        RunInUseError: Another process holds the run's lock.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / LOCK_FILE
        self._file: IO[str] | None = None
        while self._file is None:
            self._file = self._take()
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}\n")
        self._file.flush()

    def _take(self) -> IO[str] | None:
        """The locked lock file; None if a holder removed it while this locked it (try again)."""
        file = self.path.open("a+")
        if fcntl is None:  # pragma: no cover - Windows
            return file
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise RunInUseError(
                f"{self.run_dir} is being trained by {holder}: a run directory takes one trainer "
                "at a time; wait for that one to end, stop it, or choose another --out"
            ) from None
        try:  # still the file at the path? (a releasing holder unlinks it before unlocking)
            current = os.stat(self.path).st_ino == os.fstat(file.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if not current:
            file.close()
            return None
        return file

    def release(self) -> None:
        """Let another trainer take the run (idempotent); the lock file goes too."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)  # while locked: see _take
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
