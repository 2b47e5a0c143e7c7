"""Probe of ShadowKV's batched serving path at the server's shape: ``batch`` requests of ``tokens``
Llama-3.1-8B-shaped bf16 tokens, payloads in one pinned ``HostArena`` as the server stores them, one
``select_batch`` + ``gather_batch`` (the row copies' arguments printed before each launch), checked
against the per-request ``select`` and ``gather``; then both timed side by side (host time to issue
one layer's call, and wall time with the GPU). Run with ``CUDA_LAUNCH_BLOCKING=1`` to have a failing
kernel named where it fails (the timings then include every kernel's wait).

    python scripts/gpu/shadowkv_gather_probe.py --batch 8 --tokens 16384
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.select import ModelShape, RopeParams, make_selector
from sglang_kv.select.base import Selector
from sglang_kv.store.host import HostArena, HostBlock


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tokens", type=int, default=16384)
    p.add_argument("--host-gib", type=float, default=4.0)
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args()
    shape = ModelShape(32, 8, 128)
    config = OffloadConfig(method="shadowkv")
    sel = make_selector("shadowkv", shape, config, rope=RopeParams(theta=500000.0))
    arena = HostArena(int(args.host_gib * 2**30), pin=True)
    n = args.tokens - config.local
    summaries, blocks = [], []
    for b in range(args.batch):
        keys = torch.randn(n, shape.num_kv_heads, shape.head_dim, device="cuda", dtype=torch.bfloat16)
        summary = sel.build(keys, torch.randn_like(keys), torch.arange(n, device="cuda"))
        blocks.append(HostBlock(arena, summary.payload))
        summaries.append(dataclasses.replace(summary, payload=blocks[-1].tensors))
        if b == 0:
            print({name: (t.data_ptr() % 256, tuple(t.shape), t.dtype, t.stride(), t.is_pinned())
                   for name, t in blocks[-1].tensors.items()}, flush=True)
    q = torch.randn(args.batch, shape.num_q_heads, shape.head_dim, device="cuda", dtype=torch.bfloat16)
    budget = config.budget_tokens(args.tokens)
    selection = sel.select_batch(q, summaries, [budget] * args.batch, shape.head_dim ** -0.5)
    torch.cuda.synchronize()
    print("select_batch ok:", tuple(selection.index.shape), selection.counts, flush=True)
    from sglang_kv.kernels import rows as row_kernels

    copy = row_kernels.copy_rows_batch

    def logged_copy(src, dst, request, src_index, dst_index, **kwargs):
        """The row copy, its arguments described first (what the kernel will read and write)."""
        read = dst_index >= 0
        print("copy_rows_batch:", len(src), "stores", [(tuple(t.shape), t.stride(), t.data_ptr() % 256, t.is_pinned())
                                                       for t in src[:2]],
              "dst", [(tuple(t.shape), t.data_ptr() % 256) for t in dst[:2]],
              "rows", request.numel(), "read", int(read.sum()),
              "src rows read", int(src_index[read].min()), int(src_index[read].max()),
              "dst rows", int(dst_index[read].min()), int(dst_index[read].max()),
              "requests", int(request.min()), int(request.max()),
              [(t.dtype, t.stride(), t.is_contiguous()) for t in (request, src_index, dst_index)], flush=True)
        torch.cuda.synchronize()
        return copy(src, dst, request, src_index, dst_index, **kwargs)

    row_kernels.copy_rows_batch = logged_copy
    kv = sel.gather_batch(summaries, selection, dtype=torch.bfloat16)
    torch.cuda.synchronize()
    print("gather_batch ok:", tuple(kv.k.shape), int(kv.load_bytes), flush=True)
    row_kernels.copy_rows_batch = copy
    bit_equal = []
    for b, summary in enumerate(summaries):
        count = selection.counts[b]
        assert torch.equal(selection.index[b, :, :count], sel.select(q[b], summary, budget, shape.head_dim ** -0.5))
        k_ref, v_ref = sel.gather(summary, selection.index[b, :, :count].contiguous(), dtype=torch.bfloat16)
        assert torch.equal(kv.v[b, :, :count], v_ref), b
        torch.testing.assert_close(kv.k[b, :, :count], k_ref, rtol=2 ** -7, atol=1e-5)
        bit_equal.append(torch.equal(kv.k[b, :, :count], k_ref))
    print("equal to the per-request select and gather; keys bit-equal per request:", bit_equal, flush=True)
    budgets = [budget] * args.batch
    scale = shape.head_dim ** -0.5

    def batched():
        sel.gather_batch(summaries, sel.select_batch(q, summaries, budgets, scale), dtype=torch.bfloat16)

    def per_request():  # the readable references: select and gather per request (values via the host)
        selection = Selector.select_batch(sel, q, summaries, budgets, scale)
        for b, summary in enumerate(summaries):
            sel.gather(summary, selection.index[b, :, :selection.counts[b]].contiguous(), dtype=torch.bfloat16)

    for name, step in (("batched", batched), ("per-request loop", per_request)):
        step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.iters):
            step()
        host = (time.perf_counter() - start) / args.iters
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / args.iters
        print(f"{name}: select + gather of one layer, {args.batch} x {args.tokens}: host {1e3 * host:.2f} ms, "
              f"wall {1e3 * wall:.2f} ms per call", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
