"""Launch-config sweep of the HIGGS score and dequantize-gather kernels on device memory (GPU host),
at the shapes #3's bandwidth target names: landmark scores of 32 requests x 128K tokens (Llama-3.1-8B,
8 kv heads, GQA 4) and the 4-bit store's dequantize-gather of 128K sorted rows to bf16.

Each config is timed with ``triton.testing.do_bench`` (median, L2 flushed); the score runs on stores
checked once (``score_refs``), so the time is the kernel's and not the per-call input checks. Prints the fastest configs and writes every timing:

    python scripts/gpu/kernel_sweep.py --out /tmp/out/kernel_sweep.json
"""

from __future__ import annotations

import argparse
import itertools

import torch
import triton.testing

from sglang_kv.kernels import higgs as hk
from sglang_kv.quant.bench import CHANNELS, HBM_CEILING_GBPS, LANDMARK, NUM_Q_HEADS, STORE, synthetic_keys
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


def sweep_gather(tokens: int) -> list[dict]:
    device = torch.device("cuda")
    store = HiggsQuantizer(**STORE)
    codes, scales = store.quantize(synthetic_keys(tokens, "channel_outliers", device).to(torch.bfloat16))
    index = torch.randperm(tokens, device=device).sort().values
    out = torch.empty(tokens, CHANNELS, dtype=torch.bfloat16, device=device)
    ref = hk.dequantize_gather(store, codes, scales, index, config=hk.dequantize_gather_configs(1024)[0])
    num_bytes = tokens * (store.bytes_per_vector(CHANNELS) + index.element_size() + 2 * CHANNELS)
    results = []
    candidates = [hk.KernelConfig(b, w, p, s) for b, w, s, p in
                  itertools.product((1, 2, 4, 8, 16), (2, 4, 8), (1, 2, 3), (4, 8, 16)) if b * 1024 <= w * 4096]
    for cfg in candidates:
        ms = _time(lambda: hk.dequantize_gather(store, codes, scales, index, out=out, config=cfg))
        record = {"config": cfg._asdict()}
        if isinstance(ms, float):
            record.update(ms=ms, gbps=num_bytes / ms / 1e6, max_abs_diff=float((out.float() - ref.float()).abs().max()))
        else:
            record["error"] = ms
        results.append(record)
    return results


def _top(name: str, results: list[dict], n: int = 8) -> None:
    timed = sorted((r for r in results if "ms" in r), key=lambda r: r["ms"])
    print(f"{name}: {len(timed)} of {len(results)} configs ran; fastest:")
    for r in timed[:n]:
        print(f"  {r['config']} {r['ms']:.4f} ms {r['gbps']:.0f} GB/s ({r['gbps'] / HBM_CEILING_GBPS:.2f} of 4 TB/s)"
              f" diff {r['max_abs_diff']:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=131072)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    score = sweep_score(args.tokens, args.requests)
    _top(f"score {args.requests} x {args.tokens}", score)
    gather = sweep_gather(args.tokens)
    _top(f"dequantize_gather {args.tokens} sorted rows", gather)
    if args.out:
        from sglang_kv.results import write_result

        workload = {"score": f"Llama-3.1-8B landmarks ({LANDMARK}), {args.requests} requests x {args.tokens} "
                             "tokens, 32 query heads, device memory",
                    "dequantize_gather": f"4-bit store ({STORE}), {args.tokens} sorted rows to bf16, device memory",
                    "timing": "triton.testing.do_bench median, L2 flushed"}
        write_result(args.out, workload, {"score": score, "gather": gather})


if __name__ == "__main__":
    main()
