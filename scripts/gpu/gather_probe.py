"""Where the zero-copy payload gather of one batched decode step loses PCIe bandwidth (GPU host).

The K|V records yakv's token groups read in one 32 x 64K step at 3.125% (Llama-3.1-8B shape; one
record per token, K's codes then V's, read whole by the group-major gather), timed side by side in
one run (median of ``do_bench``), GB/s of host bytes read:

- ``fused``: the zero-copy dequantize-gather reading the codes from pinned memory and the scales
  from GPU memory, the package's layout since 2026-12-03 (its fastest config);
  ``fused_scales_pinned``: the same with the scales in pinned memory too (the layout before);
- ``auto``: what the wrapper picks;
- ``copy_codes`` (its fastest of a config sweep) / ``copy_scales``: the row copies alone;
  ``dequantize_from_device``: the dequantize-gather of rows already in GPU memory. Together they
  are the staged gather (copy, then dequantize), which the package offered as a timed candidate
  until this probe measured it on 2026-12-01: 12.2 ms against 10.5 ms fused, and it was removed;
- ``dma``: one bulk pinned -> device copy of the codes' bytes (the copy engine's ceiling).

    python scripts/gpu/gather_probe.py [--out results/gather_probe_h200.json]

Without CUDA it runs a small smoke case in the Triton interpreter (``--batch 2 --context 4096``;
timings meaningless) so the script is checked before device time is spent on it.
"""

import argparse
import json
import os
import time

import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the kernels are first imported

import triton.testing  # noqa: E402

from sglang_kv.bench.shapes import model_spec
from sglang_kv.config import OffloadConfig
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import rows as rk
from sglang_kv.kernels._triton_utils import TUNING_LOG
from sglang_kv.results import write_result
from sglang_kv.select import make_selector
from sglang_kv.store.host import HostArena, HostBlock


def bench(fn) -> float:
    if not CUDA:
        t0 = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - t0)
    return triton.testing.do_bench(fn, warmup=5, rep=40, return_mode="median")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32 if CUDA else 2)
    p.add_argument("--context", type=int, default=65536 if CUDA else 4096)
    p.add_argument("--budget", type=float, default=0.03125)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    batch, context = args.batch, args.context
    shape = model_spec("llama-3.1-8b").shape
    config = OffloadConfig(method="yakv", payload_group="token", budget=args.budget)
    sel = make_selector("yakv", shape, config)
    dev = torch.device("cuda", torch.cuda.current_device()) if CUDA else torch.device("cpu")
    arena = HostArena(40 << 30 if CUDA else 1 << 28, pin=CUDA)
    summaries, blocks = [], []
    for _ in range(batch):
        keys = torch.randn(context, 8, 128, device=dev, dtype=torch.bfloat16)
        s = sel.build(keys, torch.randn_like(keys))
        blocks.append(HostBlock(arena, s.payload))
        s.payload = blocks[-1].tensors
        summaries.append(s)
    q = torch.randn(batch, 32, 128, device=dev, dtype=torch.bfloat16)
    selection = sel.select_batch(q, summaries, [config.budget_tokens(context)] * batch, 128 ** -0.5)
    keys_, _ = torch.unique(torch.arange(batch, device=dev)[:, None, None] * context + selection.index,
                            return_inverse=True)
    n = keys_.numel()
    request, token = (keys_ // context).to(torch.int32), keys_ % context
    pq = sel.payload_q
    pairs = [sel._payload_rows(s.payload, s.device) for s in summaries]  # (codes [ctx, 1024], scales [ctx, 2])
    code_bytes, scale_bytes = pairs[0][0].shape[1], pairs[0][1].shape[1] * pairs[0][1].element_size()
    results = {"rows": n, "row_code_bytes": code_bytes, "row_scale_bytes": scale_bytes, "variants": {}}

    def record(name, ms, nbytes, **extra):
        results["variants"][name] = {"ms": ms, "host_bytes": nbytes, "GB_s": nbytes / ms / 1e6, **extra}
        print(f"{name:24s} {ms:7.3f} ms {nbytes / ms / 1e6:6.1f} GB/s {extra or ''}", flush=True)

    host_bytes = n * code_bytes
    out = torch.empty(2, n, pq.group_size, dtype=torch.bfloat16, device=dev)  # K's rows, then V's
    refs = [hk.store_ref(pq, c, sc, dev) for c, sc in pairs]

    def gather(config, stores=refs):
        return lambda: hk.dequantize_gather_refs(pq, stores, request, token, out=out, config=config, group_major=True)

    configs = hk.dequantize_gather_configs(pq.group_size, 2)
    fused = {cfg: bench(gather(cfg)) for cfg in configs[:None if CUDA else 1]}
    best_fused = min(fused, key=fused.get)
    record("fused", fused[best_fused], host_bytes, config=list(best_fused))
    pinned_scales = [sc.cpu().pin_memory() if CUDA else sc for _, sc in pairs]
    refs_sp = [hk.store_ref(pq, c, sc, dev) for (c, _), sc in zip(pairs, pinned_scales)]
    record("fused_scales_pinned", bench(gather(best_fused, refs_sp)), n * (code_bytes + scale_bytes))
    record("auto", bench(gather(None)), host_bytes)

    stage_codes = torch.empty(n, code_bytes, dtype=torch.uint8, device=dev)
    stage_scales = torch.empty(n, pairs[0][1].shape[1], dtype=pairs[0][1].dtype, device=dev)
    code_pairs = [rk.copy_pair(c, stage_codes, dev) for c, _ in pairs]
    scale_pairs = [rk.copy_pair(sc, stage_scales, dev) for sc in pinned_scales]
    dst = torch.arange(n, device=dev)
    sweep = []
    for block in (4, 8, 16, 32, 64) if CUDA else (8,):
        for warps in (1, 2, 4, 8) if CUDA else (2,):
            for pps in (2, 4, 8, 16, 32) if CUDA else (8,):
                cfg = hk.KernelConfig(block, warps, pps)
                ms = bench(lambda: rk.copy_rows_pairs(code_pairs, request, token, dst, config=cfg))
                sweep.append({"config": list(cfg), "ms": ms, "GB_s": n * code_bytes / ms / 1e6})
    best = min(sweep, key=lambda r: r["ms"])
    results["copy_codes_sweep"] = sweep
    record("copy_codes", best["ms"], n * code_bytes, config=best["config"])
    record("copy_codes_auto", bench(lambda: rk.copy_rows_pairs(code_pairs, request, token, dst)), n * code_bytes)
    record("copy_scales", bench(lambda: rk.copy_rows_pairs(scale_pairs, request, token, dst)), n * scale_bytes)
    stage_refs = [hk.store_ref(pq, stage_codes, stage_scales, dev)]
    stage_request = torch.zeros(n, device=dev, dtype=torch.int32)
    record("dequantize_from_device",
           bench(lambda: hk.dequantize_gather_refs(pq, stage_refs, stage_request, dst, out=out, group_major=True)), 0)
    bulk_host = torch.empty(n * code_bytes, dtype=torch.uint8, pin_memory=CUDA)
    bulk_dev = torch.empty_like(bulk_host, device=dev)
    record("dma", bench(lambda: bulk_dev.copy_(bulk_host, non_blocking=True)), bulk_host.numel())
    results["tuning"] = {str(key): {"chosen": str(v["chosen"]), "median_ms": {str(c): t for c, t in
                                                                               v["median_ms"].items()}}
                         for key, v in TUNING_LOG.items()}
    print(json.dumps({k: v for k, v in results.items() if k != "copy_codes_sweep"}))
    if args.out:
        write_result(args.out, {"model": "llama-3.1-8b", "payload_group": "token", "batch": batch,
                                "context": context, "budget": args.budget}, results)


if __name__ == "__main__":
    main()
