"""Launch-config sweep of the decode attention kernel (``sglang_kv/kernels/attention.py``) at the served
shapes (GPU host): Llama-3.1-8B's 32 query / 8 kv heads of 128, bf16 rows, each request attending to
its selected tokens (3.125% of the context) and a 64-token window, for batches 1, 8 and 32.

The kernel runs a fixed config (``DEFAULT_CONFIG``), never a timed pick, because its block size and
warps change its rounding; this sweep is how that constant is chosen. Each config is timed with
``triton.testing.do_bench`` (median) and checked against the torch reference:

    python scripts/gpu/attention_sweep.py --out $OUT/attention_sweep_h200.json
"""

from __future__ import annotations

import argparse

import torch
import triton.testing

from sglang_kv.kernels import attention as ak
from sglang_kv.results import write_result

NUM_Q_HEADS, NUM_KV_HEADS, HEAD_DIM, WINDOW = 32, 8, 128, 64
CASES = [(32, 65536), (8, 16384), (8, 65536), (1, 65536)]  # (batch, context)
BUDGET = 0.03125


def inputs(batch: int, context: int, device: torch.device) -> tuple:
    """``sparse_decode_attention_rows``'s arguments: ``batch`` requests of ``BUDGET * context`` selected
    rows in a shared bf16 row store (random row ids) and ``WINDOW`` pool rows each."""
    gen = torch.Generator(device=device).manual_seed(batch * 7 + context)
    n = int(BUDGET * context)
    rows = batch * NUM_KV_HEADS * n

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=device).to(torch.bfloat16)

    q = randn(batch, NUM_Q_HEADS, HEAD_DIM)
    sel_k, sel_v = randn(rows, HEAD_DIM), randn(rows, HEAD_DIM)
    sel_rows = torch.randperm(rows, generator=gen, device=device).view(batch, NUM_KV_HEADS, n)
    pool = randn(batch * WINDOW, NUM_KV_HEADS, 2 * HEAD_DIM)
    win_rows = torch.arange(batch * WINDOW, device=device).view(batch, WINDOW)
    return q, sel_k, sel_v, sel_rows, pool[..., :HEAD_DIM], pool[..., HEAD_DIM:], win_rows, HEAD_DIM ** -0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device = torch.device("cuda")
    rows = []
    for batch, context in CASES:
        args_ = inputs(batch, context, device)
        ref = ak.sparse_decode_attention_rows_ref(*args_).float()
        for config in ak.ATTENTION_CONFIGS:
            got = ak.sparse_decode_attention_rows(*args_, config=config).float()
            error = float((got - ref).abs().max())
            ms = triton.testing.do_bench(lambda: ak.sparse_decode_attention_rows(*args_, config=config),
                                         warmup=10, rep=50, return_mode="median")
            rows.append({"batch": batch, "context": context, "selected": int(BUDGET * context),
                         "config": config._asdict(), "default": config == ak.DEFAULT_CONFIG, "ms": ms,
                         "max_abs_error": error})
            print(f"{batch} x {context}: {config} {ms:.4f} ms, max |error| {error:.2e}"
                  f"{'  (default)' if config == ak.DEFAULT_CONFIG else ''}", flush=True)
    write_result(args.out, {"cases": CASES, "budget": BUDGET, "window": WINDOW, "heads": [NUM_Q_HEADS, NUM_KV_HEADS],
                            "head_dim": HEAD_DIM, "dtype": "bfloat16"}, {"rows": rows})


if __name__ == "__main__":
    main()
