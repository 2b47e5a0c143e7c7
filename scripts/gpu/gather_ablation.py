"""The memory floor of the store's dequantize-gather (GPU host diagnostic, not part of the package).

A kernel with the gather's memory traffic and none of its math: per output row it reads the index,
the row's 512 code bytes and its scale, and writes 1024 bfloat16 values (each code byte widened,
twice, times the scale), with the gather's persistent loop over blocks of rows. Timed on 128K
sorted rows of the 1024-channel 4-bit store (Llama-3.1-8B keys) over a sweep of launch configs, so
the real kernel's time (``scripts/gpu/kernel_sweep.py --only gather``) can be read against the
time of its loads and stores alone:

    python scripts/gpu/gather_ablation.py [--tokens 131072]
"""

import argparse
import itertools

import torch
import triton
import triton.language as tl

from kernel_sweep import _time  # scripts/gpu, beside this script
from sglang_kv.kernels._triton_utils import cdiv, num_sms
from sglang_kv.quant.bench import CHANNELS, HBM_CEILING_GBPS, STORE, synthetic_keys
from sglang_kv.quant.higgs import HiggsQuantizer


@triton.jit
def copy_widen_kernel(codes_ptr, scales_ptr, index_ptr, out_ptr, num_out, codes_stride, out_stride,
                      W: tl.constexpr, BLOCK_T: tl.constexpr):
    """``out[i, 2w + e] = codes[index[i], w] * scales[index[i]]`` for ``e`` in 0, 1 (bfloat16)."""
    offs_w = tl.arange(0, W)
    for block in range(tl.program_id(0), tl.cdiv(num_out, BLOCK_T), tl.num_programs(0)):
        offs = block * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = offs < num_out
        rows = tl.load(index_ptr + offs, mask=mask, other=0).to(tl.int64)
        codes = tl.load(codes_ptr + rows[:, None] * codes_stride + offs_w[None, :], mask=mask[:, None], other=0)
        scale = tl.load(scales_ptr + rows, mask=mask, other=0.0).to(tl.float32)
        x = codes.to(tl.float32) * scale[:, None]
        x = tl.reshape(tl.join(x, x), (BLOCK_T, 2 * W))
        out_ptrs = out_ptr + offs.to(tl.int64)[:, None] * out_stride + tl.arange(0, 2 * W)[None, :]
        tl.store(out_ptrs, x.to(out_ptr.dtype.element_ty), mask=mask[:, None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=131072)
    args = parser.parse_args()
    device = torch.device("cuda")
    store = HiggsQuantizer(**STORE)
    codes, scales = store.quantize(synthetic_keys(args.tokens, "channel_outliers", device).to(torch.bfloat16))
    index = torch.randperm(args.tokens, device=device).sort().values
    out = torch.empty(args.tokens, CHANNELS, dtype=torch.bfloat16, device=device)
    num_bytes = args.tokens * (store.bytes_per_vector(CHANNELS) + index.element_size() + 2 * CHANNELS)
    timed = []
    for block, warps, pps, stages in itertools.product((1, 2, 4, 8), (2, 4, 8), (4, 8, 16), (1, 3)):
        programs = min(cdiv(args.tokens, block), pps * num_sms(device))

        def run(block=block, warps=warps, programs=programs, stages=stages):
            copy_widen_kernel[(programs,)](codes, scales, index, out, args.tokens, codes.stride(0), out.stride(0),
                                           W=codes.shape[1], BLOCK_T=block, num_warps=warps, num_stages=stages)
        ms = _time(run)
        if isinstance(ms, float):
            timed.append((ms, (block, warps, pps, stages)))
    timed.sort()
    print(f"loads and stores alone, {args.tokens} sorted rows (block, warps, programs per SM, stages):")
    for ms, cfg in timed[:6]:
        gbps = num_bytes / ms / 1e6
        print(f"  {cfg} {ms:.4f} ms {gbps:.0f} GB/s ({gbps / HBM_CEILING_GBPS:.2f} of 4 TB/s)")


if __name__ == "__main__":
    main()
