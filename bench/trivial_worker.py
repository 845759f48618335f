"""`python -m bench.trivial_worker worker [...]`: our real worker with bench/trivial.py registered.

The same code path as `queue-worker worker` (settings, launch, wake-ups, health, drain); only the
extra do-nothing workflow is imported first, as a user's workflows module would be.
"""

from __future__ import annotations

import sys

import bench.trivial  # noqa: F401  (registers the trivial workflow before launch)
from services.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
