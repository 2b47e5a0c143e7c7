#!/usr/bin/env bash
# One GPU-host session (see README "GPU host"): run from the repository root on the lent H200 after
# the wheelhouse chunks were copied to /tmp/wh (three carry calls). Stages, any subset, in order:
#   install   wheels into /tmp/site (PYTHONPATH) and this project into the system python
#   tests     GPU-only tests: HIGGS kernels at full size, selectors on CUDA (GPU_TEST_PATHS: the test paths,
#             default "tests/quant tests/kernels tests/select", which takes longer than one 600 s call)
#   quant     python -m sglang_kv.quant.bench (kernel GB/s against the measured copy bandwidth)
#   layer     python -m sglang_kv.bench layer: one decode step of one layer vs its floor and full attention
#   layer64k  the same at 64K only (batches 1, 8, 32), whole-token and per-head payload groups
#   cache64k  32 x 64K at 3.125%, whole-token and per-head groups: without the device cache, then with
#             --cache 0.25 at several query drifts (hit rates); the stage profile with launch overhead
#   chunks64k 32 x 64K at 3.125%: the step unsplit and in 2 / 3 chunks of requests on their own streams
#             (--chunks, as --kv-offload-decode-chunks runs it), token groups with and without the cache
#   topk      GPU tests of the top-k kernel and the batched selection; scripts/gpu/profile_layer.py at the
#             Qwen3-30B-A3B shape, 32 x 16K and 32 x 32K, head groups (torch top-k + sort vs the kernel)
#   topkbench GPU tests of the top-k kernel; scripts/gpu/topk_bench.py: the kernel vs the copy of
#             topk_triton.py at .wh/topk_base/ (made on the dev machine with `git show
#             $TOPK_BASELINE:sglang_kv/kernels/topk_triton.py`, carried; TOPK_BASELINE names its
#             revision) vs torch, side by side, every config of the kernel (needs no SGLang
#             wheels: after the project's own pip install it runs on the preinstalled torch)
#   topklayer python -m sglang_kv.bench layer at 32 x 64K, 3.125%, head groups, with this tree's top-k
#             kernel and with the baseline's (its topk.py and topk_triton.py, both copied to
#             .wh/topk_base; TOPK_BASELINE as above), one after the other
#   graphprobe scripts/gpu/decode_graph_probe.py: two eager and two decode-graph servers of one method
#             (PROBE_METHOD, default quest) at once, the test prompts twice each; where every pair differs
#   attnsweep scripts/gpu/attention_sweep.py: every launch config of the decode attention at the served
#             shapes (batch 1 / 8 / 32, 3.125% of 16K-64K), timed and checked (the kernel runs a fixed one)
#   shadowkvbatch GPU tests of ShadowKV's batched select and gather; scripts/gpu/shadowkv_gather_probe.py
#             at 8 x 16K (checked against the per-request path, then both timed)
#   cudascore GPU tests of the score kernels (CUDA and Triton); scripts/gpu/score_cuda_sweep.py (the CUDA
#             kernel's launch choices vs the Triton kernel); python -m sglang_kv.quant.bench at 128K tokens
#             (the CUDA and Triton scores side by side); python -m sglang_kv.bench layer at 32 x 64K, 3.125%,
#             head groups, and its stage profile (scripts/gpu/profile_layer.py)
#   scorebound GPU tests of the host-path changes of 66c47dc (the attention's in-place output, the device
#             tables, the CUDA score's launch, the batched selection) and the score's GPU tests;
#             scripts/gpu/score_cuda_sweep.py at GQA 4 and 8 (row groups x programs per SM: the grid's
#             waves); scripts/gpu/score_cuda_ablation.py (where the CUDA score's time goes)
#   headmajor GPU tests of the score kernels (head-major stores among them) and of the selectors on CUDA;
#             python -m sglang_kv.quant.bench at 128K tokens (the score on head-major and token-major
#             stores); scripts/gpu/score_cuda_sweep.py at GQA 4 and 8 (32 requests); the 32 x 64K layer
#             step's stage profile (scripts/gpu/profile_layer.py, head groups)
#   groups    GPU tests of the CUDA score (every Tuning gives the default's bits; head-major stores);
#             scripts/gpu/score_cuda_sweep.py at GQA 8 (8 and 32 requests: default_tuning's 2 row groups) and
#             GQA 4 (32 requests); the Qwen3-30B-A3B 32 x 32K layer step's stage profile (head groups).
#             (At e3a928b a stage `prefetch` ran the sweep with two more launch choices, since dropped, the
#             top-k bench against ce495ed and the score ablation: README "Results".)
#   selgraph  --kv-offload-decode-graph 2: GPU tests of the replayed selection graphs
#             (tests/select/test_selection_graphs.py) and of the CUDA score's tunings; the eager and
#             graph-2 servers' tokens (tests/server/test_decode_graph_gpu.py -k yakv-2); then
#             scripts/gpu/selection_graph_probe.py at the Qwen3-30B-A3B shape, 32 x 32K: the host and
#             device time per layer of the eager selection + gather against the replayed graph
#   gather    scripts/gpu/gather_probe.py: the step's zero-copy gather vs the row copies and DMA
#   fastpath  GPU tests of the attention kernel and the selectors; python -m sglang_kv.bench layer at 32 x 64K
#             (Llama-3.1-8B shape) and 32 x 32K (Qwen3-30B-A3B shape), 3.125%, head groups; the
#             32 x 64K stage profile (scripts/gpu/profile_layer.py)
#   fasttoken python -m sglang_kv.bench layer at 32 x 64K, 3.125%, token groups (the paper's), the step
#             whole and in 2 chunks of requests; then batches 1 and 8 at 64K, head groups
#   records  python -m sglang_kv.bench layer at 32 x 64K, 3.125%, head groups (the K|V records read whole),
#             then the same from BASE_TREE when set (a carried `git archive` of revision BASE_COMMIT, as
#             QWEN_TREE below: the bench runs from that folder), then the GPU tests of the group-major gather
#   pcielayout scripts/gpu/pcie_layout_probe.py: zero-copy reads of the head-group payload rows in
#             several host layouts (separate tensors vs one record per row) vs DMA; then
#             scripts/gpu/profile_layer.py at 32 x 64K, head groups (the step's stages)
#   ablation  scripts/gpu/score_ablation.py: the score kernel against its ablations and its old form
#   sdpa      scripts/gpu/sdpa_growing.py: the decode attention call at a growing key length, without
#             cuDNN (the package's choice) and with cuDNN first (a graph build per length)
#   graph     tests/server/test_decode_graph_gpu.py: --kv-offload-decode-graph 1 serves the eager server's
#             tokens for yakv, shadowkv and quest (a tiny Llama on the GPU; server logs under $OUT/graph_logs)
#   serve64k  python -m sglang_kv.bench serve: Llama-3.1-8B shape, 32 x 64K prompts, --kv-offload yakv
#   servegraph64k the same with decode graphs (--kv-offload-decode-graph 1), 32 output tokens and the
#             step timing logged; GRAPH64K_TAG names the result (default: graph); GRAPH64K_METHOD
#             serves another method (none: stock, whose CUDA graphs are its own; shadowkv), and
#             GRAPH64K_OFFLOAD_ARGS / GRAPH64K_BENCH_ARGS replace the offload flags / add bench flags
#             (e.g. shadowkv: GRAPH64K_OFFLOAD_ARGS="--kv-offload-host-mem 72 --kv-offload-decode-timing 4"
#             GRAPH64K_BENCH_ARGS="--output-len 12")
#   serve16k  the same model, 8 x 16K prompts (fits stock): stock vs yakv vs shadowkv
#   servegraph16k the same, stock with its CUDA graphs (--cuda-graph-max-bs 8), yakv and shadowkv with
#             --kv-offload-decode-graph 1 and the step timing logged; GRAPH16K_TAG names the result,
#             GRAPH16K_METHODS picks the servers (default none,yakv,shadowkv), GRAPH16K_GRAPH the offload
#             servers' --kv-offload-decode-graph (default 1; 2 replays yakv's selection: GRAPH16K_METHODS=yakv)
#   pipeline  python -m sglang_kv.bench layer at 32 x 64K, 3.125%, head groups, the step whole and in 2 / 4
#             chunks of requests pipelined over two streams, twice each; then the same from BASE_TREE
#             when set (as in records: the schedule before, each chunk's step on a stream of its own,
#             chunks 1 / 2 twice); then the GPU test of sglang_kv/streams.py
#   finishsms python -m sglang_kv.bench layer at 32 x 64K, 3.125%, head groups: 1 / 2 / 4 chunks, each with
#             the gathers' grids on all SMs and sized for 8 / 16 / 32 SMs on a top-priority stream
#             (--finish-sms, as --kv-offload-decode-finish-sms runs it); then the GPU tests of sglang_kv/streams.py
#   serveqwen Qwen3-30B-A3B shape, 32 x 32K prompts (beyond stock capacity), one method per stage
#             run: QWEN_METHOD=none|yakv|shadowkv (each takes several minutes; one call each);
#             QWEN_OFFLOAD_ARGS adds --kv-offload-* flags (e.g. "--kv-offload-decode-chunks 2"; offload
#             servers always log --kv-offload-decode-timing 4), QWEN_BENCH_ARGS bench flags (e.g.
#             "--no-cuda-graph"), QWEN_TAG names the result (default: the method); QWEN_TREE serves
#             another revision of the package: a folder made on the dev machine with
#             `mkdir -p .wh/base && git archive REV pyproject.toml README.md sglang_kv text2json loadtest
#             | tar -x -C .wh/base` and carried; the bench then runs from that folder, so it and the
#             server it starts import that tree's sglang_kv (set SGLANG_KV_COMMIT to REV for that
#             call: the result records it)
# Every stage writes logs and result JSONs under $OUT (and results/ in the working copy).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" results
export PYTHONUNBUFFERED=1 SGLANG_KV_COMMIT=${SGLANG_KV_COMMIT:-$(cat .commit 2>/dev/null || echo unknown)}
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
status=0
# one decode step of one layer at 32 x 64K, 3.125%, head groups (records, pipeline, finishsms; + --iters N)
head64k=(--batches 32 --contexts 65536 --budgets 0.03125 --host-gib 8 --payload-group head)
run() {  # run NAME CMD...: time a stage, keep its log, remember failures
  local name=$1; shift
  local t0=$(date +%s)
  echo "=== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $(( $(date +%s) - t0 )) s"; tail -n 25 "$OUT/$name.log"
  [ $rc -eq 0 ] || status=1
}
run_base() {  # run_base NAME CMD...: run from BASE_TREE (when set), its result recording BASE_COMMIT
  [ -n "${BASE_TREE:-}" ] || return 0
  local repo=$PWD commit=$SGLANG_KV_COMMIT
  cd "$BASE_TREE" || exit 1
  export SGLANG_KV_COMMIT=${BASE_COMMIT:-unknown}
  run "$@"
  export SGLANG_KV_COMMIT=$commit
  cd "$repo"
}
for stage in "$@"; do
  case $stage in
    install)
      source scripts/gpu/install.sh /tmp/site /tmp/wh
      python3 -m pip install -q --no-deps --no-build-isolation . > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
      python3 -c "import torch, triton, sglang; print(torch.__version__, triton.__version__, sglang.__version__)" | tee -a "$OUT/gpu.txt"
      ;;
    tests)
      # shellcheck disable=SC2086  # GPU_TEST_PATHS: test paths, word-split on purpose
      run gpu_tests python3 -m pytest ${GPU_TEST_PATHS:-tests/quant tests/kernels tests/select} -q -ra -p no:cacheprovider
      ;;
    quant)
      run quant_bench python3 -m sglang_kv.quant.bench --out results/quant_bench_h200.json
      cp results/quant_bench_h200.json "$OUT/" 2>/dev/null
      ;;
    layer)
      run layer_bench python3 -m sglang_kv.bench layer --batches 1 8 32 --contexts 32768 65536 131072 \
        --budgets 0.015625 0.03125 0.0625 --iters 5 --host-gib 48 --out results/layer_llama31_8b_h200.json
      cp results/layer_llama31_8b_h200.json "$OUT/" 2>/dev/null
      ;;
    layer64k)
      for group in token head; do
        run layer_bench_$group python3 -m sglang_kv.bench layer --batches 1 8 32 --contexts 65536 \
          --budgets 0.015625 0.03125 0.0625 --iters 5 --host-gib 48 --payload-group $group \
          --out results/layer_llama31_8b_h200_$group.json
        cp results/layer_llama31_8b_h200_$group.json "$OUT/" 2>/dev/null
      done
      ;;
    cache64k)
      for group in token head; do
        run layer_${group} python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
          --iters 7 --host-gib 48 --payload-group $group --out results/layer_llama31_8b_h200_32x64k_$group.json
        run layer_${group}_cache python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
          --iters 7 --host-gib 48 --payload-group $group --cache 0.25 --drifts 0 0.05 0.1 0.2 0.5 \
          --out results/layer_llama31_8b_h200_32x64k_${group}_cache.json
        cp results/layer_llama31_8b_h200_32x64k_$group*.json "$OUT/" 2>/dev/null
      done
      run profile_token python3 scripts/gpu/profile_layer.py --payload-group token
      ;;
    chunks64k)
      run layer_chunks python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
        --iters 15 --host-gib 48 --payload-group token --chunks 1 2 3 1 2 \
        --out results/layer_llama31_8b_h200_32x64k_token_chunks.json
      run layer_chunks_cache python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
        --iters 7 --host-gib 48 --payload-group token --cache 0.25 --drifts 0.2 0.5 --chunks 1 2 \
        --out results/layer_llama31_8b_h200_32x64k_token_cache_chunks.json
      cp results/layer_llama31_8b_h200_32x64k_token*_chunks.json "$OUT/" 2>/dev/null
      ;;
    ablation)
      run score_ablation python3 scripts/gpu/score_ablation.py results/score_ablation_h200.json
      cp results/score_ablation_h200.json "$OUT/" 2>/dev/null
      ;;
    sdpa)
      run sdpa_growing python3 scripts/gpu/sdpa_growing.py --out results/sdpa_growing_h200.json
      cp results/sdpa_growing_h200.json "$OUT/" 2>/dev/null
      ;;
    topk)
      run gpu_tests_topk python3 -m pytest -q -ra -p no:cacheprovider tests/kernels/test_topk_kernels.py \
        tests/select/test_select_batch.py tests/select/test_select_gpu.py
      for ctx in 16384 32768; do
        run profile_qwen_32x${ctx}_head python3 scripts/gpu/profile_layer.py --model-shape qwen3-30b-a3b \
          --batch 32 --context $ctx --payload-group head
      done
      ;;
    topkbench)
      run gpu_tests_topk python3 -m pytest -q -ra -p no:cacheprovider tests/kernels/test_topk_kernels.py
      run topk_bench python3 scripts/gpu/topk_bench.py --baseline-file .wh/topk_base/topk_triton.py \
        --baseline-label "${TOPK_BASELINE:?set TOPK_BASELINE to the git revision of the baseline kernel}" \
        --out results/topk_bench_h200.json
      cp results/topk_bench_h200.json "$OUT/" 2>/dev/null
      ;;
    topklayer)
      rm -rf /tmp/topk_base_tree && mkdir /tmp/topk_base_tree && cp -r sglang_kv /tmp/topk_base_tree/ && cp .wh/topk_base/topk*.py /tmp/topk_base_tree/sglang_kv/kernels/
      repo=$PWD
      for tree in "$repo" /tmp/topk_base_tree; do
        tag=$([ "$tree" = "$repo" ] && echo kernel || echo "base_$TOPK_BASELINE")
        cd "$tree"
        SGLANG_KV_COMMIT=$SGLANG_KV_COMMIT$([ "$tree" = "$repo" ] || echo "+topk.py,topk_triton.py@$TOPK_BASELINE") \
          run layer_topk_$tag python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
          --iters 7 --host-gib 48 --payload-group head --out "$OUT/layer_32x64k_head_topk_$tag.json"
      done
      cd "$repo"
      ;;
    graph)
      SGLANG_KV_TEST_LOGS=$OUT/graph_logs run gpu_tests_graph python3 -m pytest -q -ra -s -p no:cacheprovider \
        tests/server/test_decode_graph_gpu.py
      ;;
    graphprobe)
      run decode_graph_probe_${PROBE_METHOD:-quest} python3 scripts/gpu/decode_graph_probe.py \
        --method "${PROBE_METHOD:-quest}" --out "$OUT/decode_graph_probe_${PROBE_METHOD:-quest}.json"
      ;;
    attnsweep)
      run attention_sweep python3 scripts/gpu/attention_sweep.py --out "$OUT/attention_sweep_h200.json"
      ;;
    shadowkvbatch)
      run gpu_tests_shadowkv python3 -m pytest tests/select/test_select_batch.py -q -ra -s -p no:cacheprovider -k shadowkv
      run shadowkv_gather_probe python3 scripts/gpu/shadowkv_gather_probe.py --batch 8 --tokens 16384
      ;;
    gather)
      run gather_probe python3 scripts/gpu/gather_probe.py --out results/gather_probe_h200.json
      cp results/gather_probe_h200.json "$OUT/" 2>/dev/null
      ;;
    cudascore)
      run gpu_tests_score python3 -m pytest tests/kernels/test_higgs_kernels.py tests/kernels/test_higgs_score_cuda.py \
        -k "score" -q -ra -p no:cacheprovider
      run score_cuda_sweep python3 scripts/gpu/score_cuda_sweep.py --out "$OUT/score_cuda_sweep_h200.json"
      run quant_bench_128k python3 -m sglang_kv.quant.bench --tokens 131072 --out "$OUT/quant_bench_h200_128k.json"
      run layer_head_32x64k python3 -m sglang_kv.bench layer "${head64k[@]}" --iters 7 \
        --out "$OUT/layer_llama31_8b_h200_32x64k_head_cudascore.json"
      run profile_head_32x64k python3 scripts/gpu/profile_layer.py --payload-group head
      ;;
    scorebound)
      run gpu_tests_hostpath python3 -m pytest tests/select/test_sparse_attention.py tests/kernels/test_device_ints.py \
        tests/kernels/test_higgs_score_cuda.py tests/select/test_select_batch.py tests/select/test_select_gpu.py \
        -q -ra -p no:cacheprovider
      run score_cuda_sweep python3 scripts/gpu/score_cuda_sweep.py --out "$OUT/score_cuda_sweep_h200.json"
      run score_cuda_sweep_gqa8 python3 scripts/gpu/score_cuda_sweep.py --kv-heads 4 \
        --out "$OUT/score_cuda_sweep_gqa8_h200.json"
      run score_cuda_ablation python3 scripts/gpu/score_cuda_ablation.py --out "$OUT/score_cuda_ablation_h200.json"
      ;;
    headmajor)
      run gpu_tests_headmajor python3 -m pytest tests/kernels/test_higgs_kernels.py tests/kernels/test_higgs_score_cuda.py \
        tests/select/test_select_gpu.py tests/select/test_select_batch.py -k "score or select or yakv or batch" \
        -q -ra -p no:cacheprovider
      run quant_bench_128k python3 -m sglang_kv.quant.bench --tokens 131072 --out "$OUT/quant_bench_h200_128k.json"
      run score_cuda_sweep python3 scripts/gpu/score_cuda_sweep.py --requests 8 32 --out "$OUT/score_cuda_sweep_h200.json"
      run score_cuda_sweep_gqa8 python3 scripts/gpu/score_cuda_sweep.py --kv-heads 4 --requests 32 \
        --out "$OUT/score_cuda_sweep_gqa8_h200.json"
      run profile_head_32x64k python3 scripts/gpu/profile_layer.py --payload-group head
      ;;
    groups)
      run gpu_tests_groups python3 -m pytest tests/kernels/test_higgs_kernels.py -k "cuda_score or head_major" \
        -q -ra -p no:cacheprovider
      run score_cuda_sweep_gqa8 python3 scripts/gpu/score_cuda_sweep.py --kv-heads 4 --requests 8 32 \
        --out "$OUT/score_cuda_sweep_gqa8_h200.json"
      run profile_qwen_32x32k_head python3 scripts/gpu/profile_layer.py --model-shape qwen3-30b-a3b --batch 32 \
        --context 32768 --payload-group head
      run score_cuda_sweep python3 scripts/gpu/score_cuda_sweep.py --requests 32 --out "$OUT/score_cuda_sweep_h200.json"
      ;;
    selgraph)
      run gpu_tests_selgraph python3 -m pytest tests/select/test_selection_graphs.py tests/kernels/test_higgs_kernels.py \
        -k "graph or tunings" -q -ra -p no:cacheprovider
      run selection_graph_probe python3 scripts/gpu/selection_graph_probe.py --model-shape qwen3-30b-a3b --batch 32 \
        --context 32768 --out "$OUT/selection_graph_probe_qwen3_30b_a3b_32x32k_h200.json"
      run gpu_tests_selgraph_server python3 -m pytest tests/server/test_decode_graph_gpu.py -k yakv-2 -q -ra \
        -p no:cacheprovider
      ;;
    fastpath)
      run gpu_tests_fastpath python3 -m pytest tests/kernels/test_attention_kernels.py tests/select -q -ra -p no:cacheprovider
      run layer_head_32x64k python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
        --iters 7 --host-gib 48 --payload-group head --out "$OUT/layer_llama31_8b_h200_32x64k_head_fastpath.json"
      run layer_qwen_head_32x32k python3 -m sglang_kv.bench layer --model-shape qwen3-30b-a3b --batches 32 \
        --contexts 32768 --budgets 0.03125 --iters 7 --host-gib 48 --payload-group head \
        --out "$OUT/layer_qwen3_30b_a3b_h200_32x32k_head_fastpath.json"
      run profile_head_32x64k python3 scripts/gpu/profile_layer.py --payload-group head
      ;;
    fasttoken)
      run layer_token_32x64k python3 -m sglang_kv.bench layer --batches 32 --contexts 65536 --budgets 0.03125 \
        --iters 7 --host-gib 48 --payload-group token --chunks 1 2 \
        --out "$OUT/layer_llama31_8b_h200_32x64k_token_fastpath.json"
      run layer_head_small_64k python3 -m sglang_kv.bench layer --batches 1 8 --contexts 65536 --budgets 0.03125 \
        --iters 7 --host-gib 48 --payload-group head --out "$OUT/layer_llama31_8b_h200_64k_head_b1_b8_fastpath.json"
      ;;
    records)
      layer_args=("${head64k[@]}" --iters 7)
      run layer_head_32x64k_records python3 -m sglang_kv.bench layer "${layer_args[@]}" \
        --out "$OUT/layer_llama31_8b_h200_32x64k_head_records.json"
      run_base layer_head_32x64k_base python3 -m sglang_kv.bench layer "${layer_args[@]}" \
        --out "$OUT/layer_llama31_8b_h200_32x64k_head_base.json"
      run gpu_tests_records python3 -m pytest tests/kernels/test_higgs_kernels.py -q -ra -p no:cacheprovider \
        -k "records or group_major"
      ;;
    pcielayout)
      run pcie_layout_probe python3 scripts/gpu/pcie_layout_probe.py --out "$OUT/pcie_layout_probe_h200.json"
      run profile_head_32x64k python3 scripts/gpu/profile_layer.py --payload-group head
      ;;
    serve64k)
      run serve_llama_32x64k python3 -m sglang_kv.bench serve --model llama-3.1-8b --methods yakv \
        --num-requests 32 --prompt-len 65536 --output-len 16 --vocab 128000 \
        --offload-args "--kv-offload-host-mem 72" --log-dir "$OUT/logs64k" \
        --out results/serve_llama31_8b_32x64k_h200.json
      cp results/serve_llama31_8b_32x64k_h200.json "$OUT/" 2>/dev/null
      ;;
    servegraph64k)
      tag=${GRAPH64K_TAG:-graph}
      method=${GRAPH64K_METHOD:-yakv}
      # shellcheck disable=SC2086  # GRAPH64K_BENCH_ARGS: extra bench flags, word-split on purpose
      run serve_llama_32x64k_$tag python3 -m sglang_kv.bench serve --model llama-3.1-8b --methods $method \
        --num-requests 32 --prompt-len 65536 --output-len 32 --vocab 128000 --server-args "--cuda-graph-max-bs 32" \
        --offload-args "${GRAPH64K_OFFLOAD_ARGS:---kv-offload-host-mem 72 --kv-offload-decode-timing 4 --kv-offload-decode-graph 1}" \
        --log-dir "$OUT/logs64k_$tag" ${GRAPH64K_BENCH_ARGS:-} --out results/serve_llama31_8b_32x64k_h200_${method}_$tag.json
      cp results/serve_llama31_8b_32x64k_h200_${method}_$tag.json "$OUT/" 2>/dev/null
      ;;
    servegraph16k)
      tag=${GRAPH16K_TAG:-graph}
      run serve_llama_8x16k_$tag python3 -m sglang_kv.bench serve --model llama-3.1-8b \
        --methods "${GRAPH16K_METHODS:-none,yakv,shadowkv}" \
        --num-requests 8 --prompt-len 16384 --output-len 32 --vocab 128000 --server-args "--cuda-graph-max-bs 8" \
        --offload-args "--kv-offload-host-mem 24 --kv-offload-decode-timing 4 --kv-offload-decode-graph ${GRAPH16K_GRAPH:-1}" \
        --log-dir "$OUT/logs16k_$tag" --out results/serve_llama31_8b_8x16k_h200_$tag.json
      cp results/serve_llama31_8b_8x16k_h200_$tag.json "$OUT/" 2>/dev/null
      ;;
    pipeline)
      layer_args=("${head64k[@]}" --iters 15)
      run layer_head_pipeline python3 -m sglang_kv.bench layer "${layer_args[@]}" --chunks 1 2 4 1 2 4 \
        --out "$OUT/layer_llama31_8b_h200_32x64k_head_pipeline.json"
      run_base layer_head_chunks_base python3 -m sglang_kv.bench layer "${layer_args[@]}" --chunks 1 2 1 2 \
        --out "$OUT/layer_llama31_8b_h200_32x64k_head_chunks_base.json"
      run gpu_test_streams python3 -m pytest tests/unit/test_streams.py -q -ra -p no:cacheprovider
      ;;
    finishsms)
      run layer_head_finish_sms python3 -m sglang_kv.bench layer "${head64k[@]}" --iters 15 \
        --chunks 1 2 4 --finish-sms 0 8 16 32 --out "$OUT/layer_llama31_8b_h200_32x64k_head_finish_sms.json"
      run gpu_test_streams python3 -m pytest tests/unit/test_streams.py -q -ra -p no:cacheprovider
      ;;
    serve16k)
      run serve_llama_8x16k python3 -m sglang_kv.bench serve --model llama-3.1-8b --methods none,yakv,shadowkv \
        --num-requests 8 --prompt-len 16384 --output-len 32 --vocab 128000 \
        --offload-args "--kv-offload-host-mem 24" --log-dir "$OUT/logs16k" \
        --out results/serve_llama31_8b_8x16k_h200.json
      cp results/serve_llama31_8b_8x16k_h200.json "$OUT/" 2>/dev/null
      ;;
    serveqwen)
      method=${QWEN_METHOD:-yakv}
      tag=${QWEN_TAG:-$method}
      repo=$(pwd)
      cd "${QWEN_TREE:-.}" || exit 1
      # shellcheck disable=SC2086  # QWEN_BENCH_ARGS: extra bench flags, word-split on purpose
      run serve_qwen_32x32k_$tag python3 -m sglang_kv.bench serve --model qwen3-30b-a3b --methods $method \
        --num-requests 32 --prompt-len 32768 --output-len 32 --vocab 151000 --server-args "--cuda-graph-max-bs 32" \
        --offload-args "--kv-offload-host-mem 40 --kv-offload-decode-timing 4 ${QWEN_OFFLOAD_ARGS:-}" \
        --log-dir "$OUT/logsqwen_$tag" ${QWEN_BENCH_ARGS:-} \
        --out "$repo/results/serve_qwen3_30b_a3b_32x32k_h200_$tag.json"
      cd "$repo"
      cp results/serve_qwen3_30b_a3b_32x32k_h200_$tag.json "$OUT/" 2>/dev/null
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
exit $status
