r"""Launch-config sweep of the HIGGS score and dequantize-gather kernels on device memory (GPU host),
at the shapes #3's bandwidth target names: landmark scores of 32 requests x 128K tokens (Llama-3.1-8B,
8 kv heads, GQA 4) and the 4-bit store's dequantize-gather of 128K sorted rows to bf16.

Each config is timed with ``triton.testing.do_bench`` (median, L2 flushed); the score runs on stores
checked once (``score_refs``), so the time is the kernel's and not the per-call input checks. Each
gather config's output is checked against the torch reference (``error_over_tolerance`` <= 1 passes,
the quant bench's bound). Prints the fastest configs and writes every timing:

    python scripts/gpu/kernel_sweep.py --out /tmp/out/kernel_sweep.json

``--baseline PKG ...`` sweeps the gather of older copies of ``sglang_kv/kernels`` too, in the same run
(the copy importable as ``PKG``, its imports renamed), e.g. for commit REV:

    git archive REV sglang_kv/kernels | tar -x -C /tmp/base && mv /tmp/base/sglang_kv/kernels /tmp/base/basek \
      && sed -i 's/sglang_kv\.kernels/basek/g' /tmp/base/basek/*.py
    PYTHONPATH=/tmp/base python scripts/gpu/kernel_sweep.py --only gather --baseline basek
"""

from __future__ import annotations

import argparse
import importlib
import itertools

import torch
import triton.testing

from sglang_kv.kernels import higgs as hk
from sglang_kv.quant.bench import (
    BF16_REL, CHANNELS, F32_RMS, HBM_CEILING_GBPS, LANDMARK, NUM_Q_HEADS, STORE, store_rows, synthetic_keys,
)
from sglang_kv.quant.higgs import HiggsQuantizer


def _time(run) -> float | str:
    try:
        run()
        torch.cuda.synchronize()
        return triton.testing.do_bench(run, warmup=10, rep=50, return_mode="median")
    except Exception as error:  # noqa: BLE001 - a config that does not compile or run is reported
        return f"{type(error).__name__}: {str(error)[:160]}"


def landmark_batch(tokens: int, requests: int, device: torch.device):
    """Landmark stores of ``requests`` requests of ``tokens`` tokens (views of one quantized store),
    queries and a score output: ``(quantizer, codes, scales, codes_b, scales_b, q, out, bytes)``, the
    bytes counted as the quant bench does (codes, scales and float32 scores)."""
    landmark = HiggsQuantizer(**LANDMARK)
    codes, scales = landmark.quantize(synthetic_keys(tokens, "channel_outliers", device).to(torch.bfloat16))
    codes_b = codes.repeat(requests, 1).split(tokens)
    scales_b = scales.repeat(requests, 1).split(tokens)
    q = torch.randn(requests, NUM_Q_HEADS, 128, device=device)
    out = torch.empty(requests, NUM_Q_HEADS, tokens, device=device)
    num_bytes = requests * tokens * (landmark.bytes_per_vector(CHANNELS) + 4 * NUM_Q_HEADS)
    return landmark, codes, scales, codes_b, scales_b, q, out, num_bytes


def sweep_score(tokens: int, requests: int) -> list[dict]:
    device = torch.device("cuda")
    landmark, _, _, codes_b, scales_b, q, out, num_bytes = landmark_batch(tokens, requests, device)
    refs = [hk.store_ref(landmark, c, s, device) for c, s in zip(codes_b, scales_b)]
    ref = hk.score_batch(landmark, q, codes_b, scales_b, config=hk.SCORE_CONFIGS[0])
    results = []
    candidates = [hk.KernelConfig(b, w, p, s) for b, w, s, p in
                  itertools.product((64, 128, 256), (4, 8), (1, 2, 3), (2, 4, 8))]
    for cfg in candidates:
        ms = _time(lambda: hk.score_refs(landmark, q, refs, [tokens] * requests, out=out, config=cfg))
        record = {"config": cfg._asdict()}
        if isinstance(ms, float):
            record.update(ms=ms, gbps=num_bytes / ms / 1e6, max_abs_diff=float((out - ref).abs().max()))
        else:
            record["error"] = ms
        results.append(record)
    return results


def gather_case(tokens: int, group_size: int, device: torch.device):
    """The store of ``tokens`` Llama-3.1-8B keys (4-bit EDEN2-256) as the gather reads it, all its rows
    in sorted order: ``(quantizer, codes, scales, index, out, bytes)``. ``group_size`` 1024: one
    514-byte row per token (the paper's token groups); 128: one 66-byte row per (token, kv head),
    row ``token * 8 + head`` (the server's default head groups). Bytes: codes, scales, the index and
    the bf16 output."""
    store = HiggsQuantizer(**{**STORE, "group_size": group_size})
    codes, scales = store_rows(store, synthetic_keys(tokens, "channel_outliers", device).to(torch.bfloat16))
    rows = codes.shape[0]
    index = torch.randperm(rows, generator=torch.Generator().manual_seed(tokens)).to(device).sort().values
    out = torch.empty(rows, group_size, dtype=torch.bfloat16, device=device)
    num_bytes = rows * (store.bytes_per_vector(group_size) + index.element_size() + 2 * group_size)
    return store, codes, scales, index, out, num_bytes


def sweep_gather(tokens: int, kernels=hk, group_size: int = STORE["group_size"]) -> list[dict]:
    """Every gather config of ``kernels`` (a copy of :mod:`sglang_kv.kernels.higgs`) on all rows of the
    store of ``tokens`` tokens (:func:`gather_case`), sorted."""
    store, codes, scales, index, out, num_bytes = gather_case(tokens, group_size, torch.device("cuda"))
    ref = hk.dequantize_gather_ref(store, codes, scales, index, torch.float32)
    bound = BF16_REL * ref.abs() + F32_RMS * ref.square().mean(-1, keepdim=True).sqrt()
    results = []
    candidates = [kernels.KernelConfig(v // group_size, w, p, s) for v, w, s, p in
                  itertools.product((1024, 2048, 4096, 8192, 16384), (2, 4, 8), (1, 3), (4, 8, 16))
                  if v // group_size >= (1 if group_size > 128 else 16) and v <= w * 4096]
    for cfg in candidates:
        out.fill_(float("nan"))
        ms = _time(lambda: kernels.dequantize_gather(store, codes, scales, index, out=out, config=cfg))
        record = {"config": cfg._asdict()}
        if isinstance(ms, float):
            record.update(ms=ms, gbps=num_bytes / ms / 1e6,
                          error_over_tolerance=float(((out.float() - ref).abs() / bound).nan_to_num(float("inf")).max()))
        else:
            record["error"] = ms
        results.append(record)
    return results


def _top(name: str, results: list[dict], n: int = 8) -> None:
    timed = sorted((r for r in results if "ms" in r), key=lambda r: r["ms"])
    print(f"{name}: {len(timed)} of {len(results)} configs ran; fastest:")
    for r in timed[:n]:
        check = (f"diff {r['max_abs_diff']:.2e}" if "max_abs_diff" in r
                 else f"error/tolerance {r['error_over_tolerance']:.2f}")
        print(f"  {r['config']} {r['ms']:.4f} ms {r['gbps']:.0f} GB/s ({r['gbps'] / HBM_CEILING_GBPS:.2f} of 4 TB/s)"
              f" {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=131072)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--only", choices=("score", "gather"), default=None)
    parser.add_argument("--baseline", nargs="*", default=[], help="import names of older copies of sglang_kv.kernels")
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[STORE["group_size"]],
                        help="gather: the store's Hadamard group (1024 token rows, 128 per-head rows)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    figures = {}
    if args.only in (None, "score"):
        figures["score"] = sweep_score(args.tokens, args.requests)
        _top(f"score {args.requests} x {args.tokens}", figures["score"])
    for group_size in args.group_sizes if args.only in (None, "gather") else ():
        for name in ["sglang_kv.kernels", *args.baseline]:
            label = f"gather_g{group_size}" + ("" if name == "sglang_kv.kernels" else f"_{name}")
            figures[label] = sweep_gather(args.tokens, importlib.import_module(f"{name}.higgs"), group_size)
            _top(f"{name}: dequantize_gather of all rows of {args.tokens} tokens, group {group_size}, sorted",
                 figures[label])
    if args.out:
        from sglang_kv.results import write_result

        workload = {"score": f"Llama-3.1-8B landmarks ({LANDMARK}), {args.requests} requests x {args.tokens} "
                             "tokens, 32 query heads, device memory",
                    "dequantize_gather": f"4-bit store ({STORE}, group sizes {args.group_sizes}), all rows of "
                                         f"{args.tokens} tokens, sorted, to bf16, device memory",
                    "timing": "triton.testing.do_bench median, L2 flushed",
                    "gather_baseline": args.baseline}
        write_result(args.out, workload, figures)


if __name__ == "__main__":
    main()
