"""A study's worker processes end with the study."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from memrl.agents.worker_pool import worker_pool


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_end_with_the_study_process():
    # A process that starts a worker as a study does, prints the worker's pid, and waits.
    program = """
import os, time
from memrl.agents.worker_pool import worker_pool
pool = worker_pool(1)
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 120)
time.sleep(120)
"""
    study = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    worker = int(study.stdout.readline())
    assert Path(f"/proc/{worker}").exists()
    study.kill()  # SIGKILL: no handler of the study's runs
    study.wait()
    for _ in range(100):
        if not Path(f"/proc/{worker}").exists() or _state(worker) == "Z":
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() or _state(worker) == "Z", "the worker outlived it"


def _state(pid: int) -> str:
    """A process's state letter (Z: a zombie, ended but not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        worker_pool(0)
