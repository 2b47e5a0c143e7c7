"""The memory floor of the store's dequantize-gather (GPU host diagnostic, not part of the package).

A kernel with the gather's memory traffic and none of its math: per output row it reads the index,
the row's code bytes (512 per token row, 64 per head row) and its scale, and writes two bfloat16
values per code byte (the byte widened, times the scale), with the gather's persistent loop over blocks of rows. Timed on all rows
of the 4-bit store of 128K Llama-3.1-8B keys, sorted (token rows or per-head rows, as
``kernel_sweep.gather_case`` lays them out) over a sweep of launch configs, so
the real kernel's time (``scripts/gpu/kernel_sweep.py --only gather``) can be read against the
time of its loads and stores alone:

    python scripts/gpu/gather_ablation.py [--tokens 131072] [--group-size 1024|128]
"""

import argparse
import itertools

import torch
import triton
import triton.language as tl

from kernel_sweep import _time, gather_case  # scripts/gpu, beside this script
from sglang_kv.kernels._triton_utils import cdiv, num_sms
from sglang_kv.quant.bench import HBM_CEILING_GBPS


@triton.jit
def copy_widen_kernel(codes_ptr, scales_ptr, index_ptr, out_ptr, num_out, codes_stride, scales_stride, out_stride,
                      W: tl.constexpr, BLOCK_T: tl.constexpr):
    """``out[i, 2w + e] = codes[index[i], w] * scales[index[i], 0]`` for ``e`` in 0, 1 (bfloat16)."""
    offs_w = tl.arange(0, W)
    for block in range(tl.program_id(0), tl.cdiv(num_out, BLOCK_T), tl.num_programs(0)):
        offs = block * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = offs < num_out
        rows = tl.load(index_ptr + offs, mask=mask, other=0).to(tl.int64)
        codes = tl.load(codes_ptr + rows[:, None] * codes_stride + offs_w[None, :], mask=mask[:, None], other=0)
        scale = tl.load(scales_ptr + rows * scales_stride, mask=mask, other=0.0).to(tl.float32)
        x = codes.to(tl.float32) * scale[:, None]
        x = tl.reshape(tl.join(x, x), (BLOCK_T, 2 * W))
        out_ptrs = out_ptr + offs.to(tl.int64)[:, None] * out_stride + tl.arange(0, 2 * W)[None, :]
        tl.store(out_ptrs, x.to(out_ptr.dtype.element_ty), mask=mask[:, None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=131072)
    parser.add_argument("--group-size", type=int, default=1024, help="1024: token rows; 128: per-head rows")
    args = parser.parse_args()
    device = torch.device("cuda")
    _, codes, scales, index, out, num_bytes = gather_case(args.tokens, args.group_size, device)
    num_rows = index.numel()
    timed = []
    for values, warps, pps, stages in itertools.product((1024, 2048, 4096, 8192), (2, 4, 8), (4, 8, 16), (1, 3)):
        block = max(1, values // args.group_size)
        programs = min(cdiv(num_rows, block), pps * num_sms(device))

        def run(block=block, warps=warps, programs=programs, stages=stages):
            copy_widen_kernel[(programs,)](codes, scales, index, out, num_rows, codes.stride(0), scales.stride(0),
                                           out.stride(0), W=codes.shape[1], BLOCK_T=block, num_warps=warps, num_stages=stages)
        ms = _time(run)
        if isinstance(ms, float):
            timed.append((ms, (block, warps, pps, stages)))
    timed.sort()
    print(f"loads and stores alone, all {num_rows} rows of {args.tokens} tokens, group {args.group_size}, sorted "
          "(block, warps, programs per SM, stages):")
    for ms, cfg in timed[:6]:
        gbps = num_bytes / ms / 1e6
        print(f"  {cfg} {ms:.4f} ms {gbps:.0f} GB/s ({gbps / HBM_CEILING_GBPS:.2f} of 4 TB/s)")


if __name__ == "__main__":
    main()
