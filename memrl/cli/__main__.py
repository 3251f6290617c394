"""``python -m memrl.cli``: the ``memrl`` command."""

import sys

from memrl.cli import main

sys.exit(main())
