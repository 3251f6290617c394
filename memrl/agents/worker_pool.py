"""Worker processes of a study (``scripts/*_study.py --jobs N``): one run per process.

Runs are trained in spawned processes (no fork after torch's threads have started), each of which
ends when the study's process ends: a study killed with ``kill PID`` (not Ctrl-C, which reaches
the whole process group) would otherwise leave its workers training, orphans that the next
invocation would race on the same run directories.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process ``parent`` ends (Linux).

    Args:
        parent: The study's process id.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the study ended before the line above
        os._exit(1)


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned workers that end with this process.

    Args:
        jobs: Worker processes (>= 1).

    Raises:
        ValueError: ``jobs`` < 1.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
