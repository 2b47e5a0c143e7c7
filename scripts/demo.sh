#!/usr/bin/env bash
# The main job on CPU: SmolLM2-135M-Instruct served by stock SGLang and with --kv-offload oracle,
# compared side by side. Extra arguments go to python -m sglang_kv.demo (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
exec python -m sglang_kv.demo "$@"
