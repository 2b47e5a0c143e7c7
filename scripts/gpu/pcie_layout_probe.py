"""How the host layout of yakv's head-group payload rows bounds the zero-copy gather (GPU host).

One 32 x 64K decode step at 3.125% (Llama-3.1-8B shape, head groups) reads, for every selected
(token, kv head), K codes (64 B), V codes (64 B) and one float16 scale each: 132 B. When this probe
was written they sat in four host tensors, so a row cost four PCIe reads, two of them 2 bytes long
(the package has since kept the scales on the GPU and, after this probe's ``record_128_scales_dev``,
stores K|V records read whole by the group-major gather). This probe copies the
same rows (sorted, as the gather reads them) from pinned memory to the GPU with a plain Triton
row-copy kernel, no dequantize, for several layouts, side by side in one run (median of
``do_bench``, best of a small config sweep), and reports GB/s of useful bytes (132 per row):

- ``separate``: today's four tensors (K codes, K scales, V codes, V scales), four reads per row;
- ``separate_scales_dev``: the same with the scales in GPU memory (two 64 B host reads per row);
- ``record_132``: one record ``[K codes | V codes | K scale | V scale]`` per row, read whole;
- ``record_132_split``: the same record read as four pieces (what the existing gather kernel would
  do on strided views of it: K and V apart);
- ``record_136_aligned``: the record padded to 136 B (8-byte aligned rows), read whole;
- ``record_128_scales_dev``: K and V codes in one 128 B record, scales in GPU memory;
- ``dma``: one bulk pinned -> device copy of as many bytes (the copy engine's ceiling).

    python scripts/gpu/pcie_layout_probe.py [--out results/pcie_layout_probe_h200.json]

Without CUDA it runs a small smoke case in the Triton interpreter and checks every layout's copy
against torch indexing (timings meaningless).
"""

import argparse
import itertools
import os
import time

import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton compiles anything

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
import triton.testing  # noqa: E402

from sglang_kv.results import write_result  # noqa: E402

ROW_BYTES = 132  # K codes 64 + V codes 64 + two float16 scales


@triton.jit
def _copy_segment(src, stride, rows, mask, dst, dst_stride, offs_out, SIZE: tl.constexpr, WIDTH: tl.constexpr):
    cols = tl.arange(0, WIDTH)
    m = mask[:, None] & (cols < SIZE)[None, :]
    x = tl.load(src + rows[:, None] * stride + cols[None, :], mask=m, other=0)
    tl.store(dst + offs_out[:, None] * dst_stride + cols[None, :], x, mask=m)


@triton.jit
def copy_rows_kernel(index_ptr, n,
                     s0, st0, d0, s1, st1, d1, s2, st2, d2, s3, st3, d3,
                     Z0: tl.constexpr, W0: tl.constexpr, Z1: tl.constexpr, W1: tl.constexpr,
                     Z2: tl.constexpr, W2: tl.constexpr, Z3: tl.constexpr, W3: tl.constexpr,
                     BLOCK: tl.constexpr):
    """Rows ``index`` of up to four segments (``s_j``: typed base pointer, ``st_j``: row stride in
    elements, ``Z_j``: elements per row, 0 = unused) into ``d_j [n, Z_j]``."""
    for block in range(tl.program_id(0), tl.cdiv(n, BLOCK), tl.num_programs(0)):
        offs = block * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        rows = tl.load(index_ptr + offs, mask=mask, other=0).to(tl.int64)
        out = offs.to(tl.int64)
        _copy_segment(s0, st0, rows, mask, d0, Z0, out, Z0, W0)
        if Z1 > 0:
            _copy_segment(s1, st1, rows, mask, d1, Z1, out, Z1, W1)
        if Z2 > 0:
            _copy_segment(s2, st2, rows, mask, d2, Z2, out, Z2, W2)
        if Z3 > 0:
            _copy_segment(s3, st3, rows, mask, d3, Z3, out, Z3, W3)


def _unit(*byte_counts: int) -> torch.dtype:
    for size, dtype in ((8, torch.int64), (4, torch.int32), (2, torch.int16)):
        if all(b % size == 0 for b in byte_counts):
            return dtype
    return torch.uint8


def segment(buf: torch.Tensor, offset: int, size: int):
    """A segment of each row of the uint8 ``buf [rows, stride]``: ``(typed view [rows, size / unit],
    row stride in elements)``; the unit is the widest int dividing offset, size and stride."""
    stride = buf.stride(0)
    dtype = _unit(offset, size, stride)
    unit = torch.empty((), dtype=dtype).element_size()
    flat = buf.view(-1)[: buf.shape[0] * stride].view(dtype).view(buf.shape[0], stride // unit)
    return flat[:, offset // unit:(offset + size) // unit], stride // unit


def copy_rows(segments, index: torch.Tensor, outs, block: int, num_warps: int, programs: int):
    args, meta = [], {}
    for j in range(4):
        if j < len(segments):
            (view, stride), out = segments[j], outs[j]
            args += [view, stride, out]
            meta[f"Z{j}"] = view.shape[1]
            meta[f"W{j}"] = triton.next_power_of_2(view.shape[1])
        else:
            args += [index, 0, index]
            meta[f"Z{j}"] = 0
            meta[f"W{j}"] = 1
    copy_rows_kernel[(programs,)](index, index.numel(), *args, **meta, BLOCK=block, num_warps=num_warps)


def bench(fn) -> float:
    if not CUDA:
        t0 = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - t0)
    return triton.testing.do_bench(fn, warmup=5, rep=50, return_mode="median")


def layouts(num_rows: int, dev: torch.device, pin: bool):
    """name -> list of (typed view, stride) segments; the host buffers are filled with random bytes."""
    def host(cols):
        t = torch.empty((num_rows, cols), dtype=torch.uint8, pin_memory=pin)
        t.view(-1)[:: 4093] = 7  # touch the pages
        return t

    def device(cols):
        return torch.randint(0, 256, (num_rows, cols), dtype=torch.uint8, device=dev)

    kc, ks, vc, vs = host(64), host(2), host(64), host(2)
    rec132, rec136, rec128 = host(132), host(136), host(128)
    ks_dev, vs_dev = device(2), device(2)
    return {
        "separate": [segment(kc, 0, 64), segment(ks, 0, 2), segment(vc, 0, 64), segment(vs, 0, 2)],
        "separate_scales_dev": [segment(kc, 0, 64), segment(ks_dev, 0, 2), segment(vc, 0, 64), segment(vs_dev, 0, 2)],
        "record_132": [segment(rec132, 0, 132)],
        "record_132_split": [segment(rec132, 0, 64), segment(rec132, 128, 2), segment(rec132, 64, 64),
                             segment(rec132, 130, 2)],
        "record_136_aligned": [segment(rec136, 0, 136)],
        "record_128_scales_dev": [segment(rec128, 0, 128), segment(ks_dev, 0, 2), segment(vs_dev, 0, 2)],
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32 if CUDA else 2)
    p.add_argument("--context", type=int, default=65536 if CUDA else 512)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--budget", type=float, default=0.03125)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    dev = torch.device("cuda") if CUDA else torch.device("cpu")
    per_request = args.context * args.kv_heads
    num_rows = args.batch * per_request
    k = int(args.context * args.budget)
    gen = torch.Generator(device="cpu").manual_seed(0)
    # each (request, head) selects k of its tokens; row = request * per_request + token * Hkv + head
    tokens = torch.rand(args.batch, args.kv_heads, args.context, generator=gen).argsort(-1)[..., :k]
    heads = torch.arange(args.kv_heads)[None, :, None]
    rows = (torch.arange(args.batch)[:, None, None] * per_request + tokens * args.kv_heads + heads).reshape(-1)
    index = rows.sort().values.to(dev)
    n = index.numel()
    sms = torch.cuda.get_device_properties(dev).multi_processor_count if CUDA else 2
    configs = list(itertools.product((16, 32, 64), (2, 4, 8), (2, 4, 8))) if CUDA else [(16, 2, 1)]
    results = {}
    for name, segs in layouts(num_rows, dev, pin=CUDA).items():
        outs = [torch.empty((n, v.shape[1]), dtype=v.dtype, device=dev) for v, _ in segs]
        copy_rows(segs, index, outs, *configs[0][:2], sms * configs[0][2])
        for (v, _), out in zip(segs, outs):  # the copy is right
            assert torch.equal(out.cpu(), v[index.to(v.device)].cpu()), name
        timings = {}
        for block, warps, per_sm in configs:
            timings[(block, warps, per_sm)] = bench(lambda: copy_rows(segs, index, outs, block, warps, sms * per_sm))
        best = min(timings, key=timings.get)
        ms = timings[best]
        results[name] = {"ms": ms, "GB_s": n * ROW_BYTES / ms / 1e6, "config": {"block": best[0], "num_warps": best[1],
                                                                               "programs_per_sm": best[2]}}
        print(name, results[name], flush=True)
    src = torch.empty(n * ROW_BYTES, dtype=torch.uint8, pin_memory=CUDA)
    dst = torch.empty_like(src, device=dev)
    ms = bench(lambda: dst.copy_(src, non_blocking=True))
    results["dma"] = {"ms": ms, "GB_s": n * ROW_BYTES / ms / 1e6}
    print("dma", results["dma"], flush=True)
    workload = {"model": "llama-3.1-8b", "payload_group": "head", "batch": args.batch, "context": args.context,
                "budget": args.budget, "rows": n, "useful_bytes_per_row": ROW_BYTES}
    if args.out:
        write_result(args.out, workload=workload, figures={"layouts": results})


if __name__ == "__main__":
    main()
