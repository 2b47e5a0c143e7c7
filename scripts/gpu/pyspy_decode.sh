#!/usr/bin/env bash
# Where the SGLang server's host time goes while it decodes (GPU host diagnostic, not part of the package).
# Usage, in the background before `session.sh serveqwen` starts the server (needs py-spy, e.g. from a wheel
# in the wheelhouse, on PATH or in /tmp/site/bin):
#   bash scripts/gpu/pyspy_decode.sh LOG_DIR OUT_FILE BATCH [SECONDS] &
# Waits for the first "sglang-kv decode timing: batch BATCH," line in LOG_DIR/server-*.log (the offload
# server logs one every few decode steps with --kv-offload-decode-timing; BATCH: the bench's request count,
# so that sampling starts once every request decodes and prefill is over: on 2026-12-02 the first line
# of any batch came at batch 1, two minutes before the prefills ended), then samples every process of that server
# (py-spy record --subprocesses --threads --nonblocking, 100 Hz) for SECONDS (default 15) into OUT_FILE as
# folded stacks (--format raw: "process ...;[process ...;]thread ...;frame;... count" per line). Summarize
# with scripts/pyspy_summary.py.
set -u
log_dir=$1; out=$2; batch=$3; seconds=${4:-15}
export PATH=/tmp/site/bin:$PATH
log=""
for _ in $(seq 1800); do
  log=$(grep -ls "sglang-kv decode timing: batch $batch," "$log_dir"/server-*.log 2>/dev/null | head -1)
  [ -n "$log" ] && break
  sleep 1
done
[ -n "$log" ] || { echo "pyspy_decode: no decode timing line at batch $batch in $log_dir after 30 min"; exit 1; }
pid=$(pgrep -f "sglang.launch_server" | head -1)
echo "pyspy_decode: sampling server $pid for $seconds s (decode timing at batch $batch seen in $log)"
py-spy record --pid "$pid" --subprocesses --threads --nonblocking --rate 100 --duration "$seconds" --format raw -o "$out"
