"""Import paths for the load-test tests, under any pytest import mode.

`loadtest` is a folder of modules at the repository root, not an installed package, and the tests
share helpers (`loadtest_harness`) that live beside them.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1], HERE):  # the repository root, this folder
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
