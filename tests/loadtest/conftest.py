"""The repository root on sys.path: `loadtest` is a folder of modules, not an installed package."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
