"""Settings for the whole test suite."""

import os

# One intra-op thread per test process: pytest-xdist already runs one worker per core, and tiny
# torch models slow down many times over when each worker's thread pool fights for the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
