"""Probe of the row copy ShadowKV's batched gather launches, at one request of ``tokens`` tokens
(the bench's 2048-token warm-up request crashed it in the 8 x 16K server at 8d322c5). One variant
per process (a failed launch poisons the CUDA context):

    for v in asis device_src all_read int32 sorted; do
        CUDA_LAUNCH_BLOCKING=1 python scripts/gpu/copy_rows_probe.py --variant $v; done
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.kernels import rows as row_kernels
from sglang_kv.kernels.higgs import KernelConfig
from sglang_kv.select import ModelShape, RopeParams, make_selector
from sglang_kv.select.shadowkv import _lookup
from sglang_kv.store.host import HostArena, HostBlock


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--variant", default="asis")
    p.add_argument("--tokens", type=int, default=2048)
    args = p.parse_args()
    shape = ModelShape(32, 8, 128)
    config = OffloadConfig(method="shadowkv")
    sel = make_selector("shadowkv", shape, config, rope=RopeParams(theta=500000.0))
    arena = HostArena(1 << 30, pin=True)
    n = args.tokens - config.local
    torch.manual_seed(0)
    keys = torch.randn(n, 8, 128, device="cuda", dtype=torch.bfloat16)
    summary = sel.build(keys, torch.randn_like(keys), torch.arange(n, device="cuda"))
    block = HostBlock(arena, summary.payload)
    summary = dataclasses.replace(summary, payload=block.tensors)
    q = torch.randn(1, 32, 128, device="cuda", dtype=torch.bfloat16)
    selection = sel.select_batch(q, [summary], [config.budget_tokens(args.tokens)], 128 ** -0.5)
    index = selection.index
    hkv, d = 8, 128
    batch, _, width = index.shape
    store = summary.payload["values"].view(-1, d)
    if args.variant == "device_src":
        store = store.cuda()
    values = torch.zeros((batch, hkv, width, d), dtype=store.dtype, device="cuda")
    flat = values.view(-1, d)
    column = torch.arange(width, device="cuda")
    rows = index * hkv + torch.arange(hkv, device="cuda")[:, None]
    read = (column < torch.tensor(selection.counts, device="cuda")[:, None, None]).expand(batch, hkv, width).clone()
    if args.variant != "all_read":
        read[0] &= ~_lookup(summary.fixed, index[0].contiguous())[1]
    dst = torch.where(read, torch.arange(flat.shape[0], device="cuda").view(batch, hkv, width), -1)
    request = torch.zeros(rows.numel(), dtype=torch.int32, device="cuda")
    src_index, dst_index = rows.reshape(-1), dst.reshape(-1)
    if args.variant == "int32":
        src_index, dst_index = src_index.int(), dst_index.int()
    if args.variant == "sorted":  # the read rows first
        order = torch.argsort((dst_index < 0).to(torch.uint8), stable=True)
        src_index, dst_index = src_index[order], dst_index[order]
    print(args.variant, "index", index.dtype, tuple(index.shape), index.stride(), "rows", rows.stride(),
          "read", int(read.sum()), "max src row read", int(rows[read].max()), "store rows", store.shape[0],
          "store addr % 256", store.data_ptr() % 256, "flat addr % 256", flat.data_ptr() % 256, flush=True)
    torch.cuda.synchronize()
    row_kernels.copy_rows_batch([store], [flat], request, src_index, dst_index, config=KernelConfig(16, 4, 8))
    torch.cuda.synchronize()
    expected = torch.zeros_like(flat)
    expected[dst_index[dst_index >= 0]] = store[src_index[dst_index >= 0].cpu()].cuda() if store.is_pinned() else \
        store[src_index[dst_index >= 0]]
    print(args.variant, "ok, equal:", torch.equal(flat, expected), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
