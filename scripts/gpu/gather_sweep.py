"""Zero-copy dequantize-gather from pinned host memory across kernel configs (GPU host): the K|V
payload records one batched decode step reads at Llama-3.1-8B shape (yakv token groups, 32 x 64K,
3.125%; each record read whole, group-major), GB/s of PCIe payload per config.

    python scripts/gpu/gather_sweep.py
"""

import json

import torch
import triton.testing

from sglang_kv.bench.shapes import model_spec
from sglang_kv.config import OffloadConfig
from sglang_kv.kernels import higgs as hk
from sglang_kv.select import make_selector
from sglang_kv.store.host import HostArena, HostBlock


def main(batch=32, context=65536, budget=0.03125):
    shape = model_spec("llama-3.1-8b").shape
    config = OffloadConfig(method="yakv", payload_group="token", budget=budget)
    sel = make_selector("yakv", shape, config)
    arena = HostArena(40 << 30, pin=True)
    summaries, blocks = [], []
    for _ in range(batch):
        keys = torch.randn(context, 8, 128, device="cuda", dtype=torch.bfloat16)
        s = sel.build(keys, torch.randn_like(keys))
        blocks.append(HostBlock(arena, s.payload))
        s.payload = blocks[-1].tensors
        summaries.append(s)
    q = torch.randn(batch, 32, 128, device="cuda", dtype=torch.bfloat16)
    selection = sel.select_batch(q, summaries, [config.budget_tokens(context)] * batch, 128 ** -0.5)
    rows, _ = torch.unique(torch.arange(batch, device="cuda")[:, None, None] * context + selection.index,
                           return_inverse=True)
    request, token = (rows // context).to(torch.int32), rows % context
    codes, scales = zip(*(sel._payload_rows(s.payload, s.device) for s in summaries))  # K|V records
    nbytes = rows.numel() * 2 * sel.payload_q.bytes_per_vector(1024)
    out = torch.empty(2, rows.numel(), 1024, device="cuda")
    results = []
    for block in (1, 2, 4, 8):
        for warps in (2, 4, 8):
            for pps in (1, 2, 4, 8, 16):
                cfg = hk.KernelConfig(block, warps, pps)
                try:
                    ms = triton.testing.do_bench(lambda: hk.dequantize_gather_batch(
                        sel.payload_q, codes, scales, request, token, dtype=torch.float32, out=out, config=cfg,
                        group_major=True),
                        warmup=5, rep=30, return_mode="median")
                except Exception as error:  # noqa: BLE001 - a config that does not run is reported
                    results.append({"config": list(cfg), "error": str(error)[:200]})
                    continue
                results.append({"config": list(cfg), "ms": ms, "GB_s": nbytes / ms / 1e6})
                print(cfg, f"{ms:.3f} ms {nbytes / ms / 1e6:.1f} GB/s", flush=True)
    best = min((r for r in results if "ms" in r), key=lambda r: r["ms"])
    print(json.dumps({"rows": rows.numel(), "bytes": nbytes, "best": best, "results": results}))


if __name__ == "__main__":
    main()
