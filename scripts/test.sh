#!/usr/bin/env bash
# The test suite, on CPU: unit, kernel (Triton interpreter), CPU-server and accuracy tests.
# GPU-only tests skip without a GPU. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
exec python -m pytest -q -ra --durations=40 "$@"
