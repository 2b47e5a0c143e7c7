"""HIGGS benchmark on Llama-3.1-8B key shapes (8 kv heads x 128 = 1024 channels per token).

    python -m sglang_kv.quant.bench [--out results/quant_bench_<machine>.json]

Accuracy (any device): relative reconstruction error ``||x - x'|| / ||x||`` of every grid with per-head
groups (128) and whole-token groups (1024), on synthetic keys (Gaussian, and Gaussian with log-normal
per-channel scales and a few 10x outlier channels, like real pre-RoPE keys), next to
``sqrt(grid MSE)``, and the bytes per token and layer (codes + scales; bf16 keys take 2048 B).

Kernels (CUDA only, automatic when a GPU is visible): median time of each Triton kernel
(``triton.testing.do_bench``, L2 flushed between runs) at 32K / 64K / 128K tokens, bytes moved,
achieved GB/s and its ratio to a device-to-device copy measured in the same run and to the 4 TB/s HBM
figure. The 4-bit store's dequantize-gather reads all rows, in random and sorted order, with token
groups (one 514-byte row per token, the paper's) and with head groups (one 66-byte row per token
and kv head, the server's default); the token-group store is also gathered from pinned host memory
(ratio to 55 GB/s PCIe). Every
kernel output is checked against the torch path at full size; a failing step is recorded (``error``)
and the run goes on.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
import traceback
from collections.abc import Callable

import torch

from sglang_kv.quant.grids import SUPPORTED_GRIDS, load_grid, mse_per_value
from sglang_kv.quant.higgs import HiggsQuantizer

NUM_KV_HEADS, HEAD_DIM, NUM_Q_HEADS = 8, 128, 32  # Llama-3.1-8B
CHANNELS = NUM_KV_HEADS * HEAD_DIM
BF16_BYTES_PER_TOKEN = 2 * CHANNELS
HBM_CEILING_GBPS = 4000.0  # measured device-to-device copy on the H200 host: 4.05 TB/s
PCIE_CEILING_GBPS = 55.0  # measured pinned H2D on the same host
STORE = dict(group_size=1024, p=2, bits=4)  # YAKV offloaded K/V: EDEN2-256, one group per token
STORE_HEAD = dict(STORE, group_size=HEAD_DIM)  # the same, one group per kv head (the server's default)
LANDMARK = dict(group_size=128, p=4, bits=2)  # YAKV landmarks: EDEN4-256, one group per head
DATA_SEED = 1234
BF16_REL = 2 ** -8  # bfloat16 output: half an ulp of rounding
F32_RMS = 1e-5  # float32 rounding of a 1024-point transform, relative to the row RMS


def synthetic_keys(num_tokens: int, kind: str, device: torch.device) -> torch.Tensor:
    """``[num_tokens, 1024]`` float32 keys: ``gaussian`` or ``channel_outliers``."""
    gen = torch.Generator().manual_seed(DATA_SEED)
    keys = torch.randn(num_tokens, CHANNELS, generator=gen)
    if kind == "channel_outliers":
        channel_scale = torch.exp(torch.randn(CHANNELS, generator=gen))
        channel_scale[torch.randperm(CHANNELS, generator=gen)[:16]] *= 10.0
        keys = keys * channel_scale
    return keys.to(device)


def store_rows(quantizer: HiggsQuantizer, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``keys [tokens, 1024]`` quantized, as the gather reads them: ``(codes, scales)``, one row per
    group. Token groups (1024): one row per token; head groups (128): one row per (token, kv head),
    row ``token * Hkv + head``."""
    codes, scales = quantizer.quantize(keys)
    rows = keys.shape[0] * CHANNELS // quantizer.group_size
    return codes.view(rows, -1), scales.view(rows, -1)


def accuracy(num_tokens: int, device: torch.device, log: Callable[[str], None]) -> list[dict]:
    rows = []
    log(f"\nReconstruction on {num_tokens} synthetic tokens x 1024 channels ({device})")
    log(f"{'grid':>6} {'group':>6} {'bytes/token':>11} {'x bf16':>7} {'sqrt(MSE)':>9} "
        f"{'err gaussian':>12} {'err outliers':>12}")
    data = {kind: synthetic_keys(num_tokens, kind, device) for kind in ("gaussian", "channel_outliers")}
    for p, bits in SUPPORTED_GRIDS:
        grid_rmse = math.sqrt(mse_per_value(load_grid(p, bits), num_samples=1 << 20))
        for group_size in (HEAD_DIM, CHANNELS):
            quantizer = HiggsQuantizer(group_size, p, bits)
            row = {"p": p, "bits": bits, "group_size": group_size,
                   "bytes_per_token": quantizer.bytes_per_vector(CHANNELS),
                   "compression_vs_bf16": BF16_BYTES_PER_TOKEN / quantizer.bytes_per_vector(CHANNELS),
                   "sqrt_grid_mse": grid_rmse}
            for kind, keys in data.items():
                keys_hat = quantizer.dequantize(*quantizer.quantize(keys))
                row[f"rel_error_{kind}"] = ((keys - keys_hat).norm() / keys.norm()).item()
            rows.append(row)
            log(f"p{p}_b{bits:<3} {group_size:>6} {row['bytes_per_token']:>11} "
                f"{row['compression_vs_bf16']:>6.1f}x {grid_rmse:>9.4f} "
                f"{row['rel_error_gaussian']:>12.4f} {row['rel_error_channel_outliers']:>12.4f}")
    return rows


# --- GPU kernels -----------------------------------------------------------------------------------
def _do_bench(fn: Callable[[], object]) -> float:
    import triton.testing

    fn()  # compile and pick the config outside the timed runs
    torch.cuda.synchronize()
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def copy_bandwidth_gbps(device: torch.device, num_bytes: int = 1 << 30) -> float:
    """Device-to-device copy (read + write) of ``num_bytes``, GB/s."""
    src = torch.empty(num_bytes, dtype=torch.uint8, device=device).random_()
    dst = torch.empty_like(src)
    ms = _do_bench(lambda: dst.copy_(src))
    return 2 * num_bytes / ms / 1e6


def _record(name: str, tokens: int, ms: float, num_bytes: int, copy_gbps: float, ceiling: float,
            check: dict, extra: dict | None = None) -> dict:
    gbps = num_bytes / ms / 1e6
    return {"kernel": name, "tokens": tokens, "median_ms": ms, "bytes": num_bytes, "gbps": gbps,
            "ratio_to_copy": gbps / copy_gbps, "ratio_to_ceiling": gbps / ceiling,
            "ceiling_gbps": ceiling, **check, **(extra or {})}


def _check_quantize(quantizer, x, got) -> dict:
    ref = quantizer.quantize(x)
    same_scale = got.scales == ref.scales
    from sglang_kv.quant.higgs import unpack_indices

    per_group = quantizer.group_size // quantizer.p
    mask = same_scale.repeat_interleave(per_group, dim=-1)
    equal = (unpack_indices(got.codes, quantizer.index_bits) == unpack_indices(ref.codes, quantizer.index_bits))
    frac = equal[mask].double().mean().item()
    scale_err = ((got.scales.float() - ref.scales.float()).abs() / ref.scales.float().clamp(min=1e-30)).max().item()
    return {"codes_equal_fraction": frac, "max_scale_rel_diff": scale_err,
            "matches_reference": frac >= 0.999 and scale_err <= 1e-3}


def _check_close(got: torch.Tensor, ref: torch.Tensor, bound: torch.Tensor) -> dict:
    ratio = ((got.float() - ref).abs() / bound).max().item()
    return {"max_error_over_tolerance": ratio, "matches_reference": ratio <= 1.0}


def bench_kernels(tokens_list: list[int], device: torch.device, log: Callable[[str], None]) -> dict:
    from sglang_kv.kernels import higgs as hk
    from sglang_kv.kernels._triton_utils import TUNING_LOG

    results: dict = {"records": [], "errors": []}
    copy_gbps = copy_bandwidth_gbps(device)
    results["copy_gbps"] = copy_gbps
    log(f"\nDevice-to-device copy: {copy_gbps:.0f} GB/s (reference ceiling {HBM_CEILING_GBPS:.0f} GB/s)")
    log(f"{'kernel':<34} {'tokens':>7} {'ms':>8} {'MB':>8} {'GB/s':>7} {'/copy':>6} {'/ceil':>6} ok")
    store, landmark = HiggsQuantizer(**STORE), HiggsQuantizer(**LANDMARK)
    store_head = HiggsQuantizer(**STORE_HEAD)

    def run(name: str, tokens: int, step: Callable[[], dict]) -> None:
        try:
            record = step()
        except Exception as error:  # noqa: BLE001 - recorded in the result, the run goes on
            results["errors"].append({"kernel": name, "tokens": tokens, "error": f"{type(error).__name__}: {error}",
                                      "traceback": traceback.format_exc()[-4000:]})
            log(f"{name:<34} {tokens:>7} ERROR {type(error).__name__}: {str(error)[:200]}")
            return
        results["records"].append(record)
        log(f"{name:<34} {tokens:>7} {record['median_ms']:>8.4f} {record['bytes'] / 1e6:>8.1f} "
            f"{record['gbps']:>7.0f} {record['ratio_to_copy']:>6.2f} {record['ratio_to_ceiling']:>6.2f} "
            f"{record['matches_reference']}")

    for tokens in tokens_list:
        keys = synthetic_keys(tokens, "channel_outliers", device).to(torch.bfloat16)

        for label, quantizer in (("store", store), ("landmark", landmark)):
            def step_quantize(quantizer=quantizer, label=label):
                got = hk.quantize(quantizer, keys)
                ms = _do_bench(lambda: hk.quantize(quantizer, keys, out=got))
                num_bytes = tokens * (2 * CHANNELS + quantizer.bytes_per_vector(CHANNELS))
                return _record(f"quantize_{label}_p{quantizer.p}b{quantizer.bits}_g{quantizer.group_size}",
                               tokens, ms, num_bytes, copy_gbps, HBM_CEILING_GBPS,
                               _check_quantize(quantizer, keys, got))
            run(f"quantize_{label}", tokens, step_quantize)

        gen = torch.Generator(device=device).manual_seed(tokens)
        quantized = {}
        for label, quantizer in (("store", store), ("store_head", store_head)):
            codes, scales = quantized[label] = store_rows(quantizer, keys)
            rows = codes.shape[0]
            for order in ("random", "sorted"):
                def step_gather(order=order, quantizer=quantizer, codes=codes, scales=scales, rows=rows):
                    index = torch.randperm(rows, device=device, generator=gen)
                    if order == "sorted":
                        index = index.sort().values
                    out = hk.dequantize_gather(quantizer, codes, scales, index)
                    ms = _do_bench(lambda: hk.dequantize_gather(quantizer, codes, scales, index, out=out))
                    ref = hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32)
                    bound = BF16_REL * ref.abs() + F32_RMS * ref.square().mean(-1, keepdim=True).sqrt()
                    num_bytes = rows * (quantizer.bytes_per_vector(quantizer.group_size) + index.element_size()
                                        + 2 * quantizer.group_size)
                    return _record(f"dequantize_gather_{label}_all_{order}", tokens, ms, num_bytes, copy_gbps,
                                   HBM_CEILING_GBPS, _check_close(out, ref, bound),
                                   {"out_dtype": "bfloat16", "rows": rows, "group_size": quantizer.group_size})
                run(f"dequantize_gather_{label}_all_{order}", tokens, step_gather)
        codes, scales = quantized["store"]

        def step_gather_pinned():
            codes_host, scales_host = codes.cpu().pin_memory(), scales.cpu().pin_memory()
            num_selected = tokens // 32  # YAKV budget 3.125% of the prompt
            index = torch.randperm(tokens, device=device, generator=gen)[:num_selected].sort().values
            out = hk.dequantize_gather(store, codes_host, scales_host, index)
            ms = _do_bench(lambda: hk.dequantize_gather(store, codes_host, scales_host, index, out=out))
            ref = hk.dequantize_gather_ref(store, codes, scales, index, torch.float32)
            bound = BF16_REL * ref.abs() + F32_RMS * ref.square().mean(-1, keepdim=True).sqrt()
            pcie_bytes = num_selected * store.bytes_per_vector(CHANNELS)
            return _record("dequantize_gather_store_pinned_3pct", tokens, ms, pcie_bytes, copy_gbps,
                           PCIE_CEILING_GBPS, _check_close(out, ref, bound),
                           {"selected": num_selected, "bytes_note": "codes + scales read over PCIe"})
        run("dequantize_gather_pinned", tokens, step_gather_pinned)

        landmark_codes, landmark_scales = landmark.quantize(keys)
        landmark_key_norm = landmark.dequantize(  # (Hkv, tokens): |k'| per token and kv head
            landmark_codes.view(tokens, NUM_KV_HEADS, -1), landmark_scales[..., None]).norm(dim=-1).T
        # the served layout: each request's landmarks head-major (yakv; kernels.higgs.head_store_ref)
        head_codes = landmark_codes.view(tokens, NUM_KV_HEADS, -1).transpose(0, 1).contiguous()  # (Hkv, L, Db)
        head_scales = landmark_scales.transpose(0, 1).contiguous()  # (Hkv, L)
        for num_requests in (1, 8, 32):
            # the CUDA kernel (the default on a GPU) and the Triton kernel, side by side, on head-major stores,
            # and the CUDA kernel on token-major ones (the layout before 2026-12-04); without a GPU the Triton
            # kernel under the interpreter
            variants = ([("cuda", "head"), ("triton", "head"), ("cuda", "token")] if device.type == "cuda"
                        else [("triton", "head")])
            for backend, layout in variants:
                def step_score(num_requests=num_requests, backend=backend, layout=layout):
                    rows = tokens * num_requests
                    # each request its own store, as the serving batch reads them
                    codes_b = landmark_codes.repeat(num_requests, 1).split(tokens)
                    scales_b = landmark_scales.repeat(num_requests, 1).split(tokens)
                    q = torch.randn(num_requests, NUM_Q_HEADS, HEAD_DIM, device=device, generator=gen)
                    if layout == "token":
                        out = hk.score_batch(landmark, q, codes_b, scales_b, config=backend)
                        ms = _do_bench(lambda: hk.score_batch(landmark, q, codes_b, scales_b, out=out, config=backend))
                    else:
                        stores = [(head_codes.clone(), head_scales.clone()) for _ in range(num_requests)]
                        refs = [hk.head_store_ref(landmark, c, sc, device) for c, sc in stores]
                        lengths = [tokens] * num_requests
                        out = hk.score_refs(landmark, q, refs, lengths, config=backend)
                        ms = _do_bench(lambda: hk.score_refs(landmark, q, refs, lengths, out=out, config=backend))
                    ref = hk.score_batch_ref(landmark, q, codes_b, scales_b)
                    key_norm = landmark_key_norm.repeat_interleave(NUM_Q_HEADS // NUM_KV_HEADS, 0)  # (Hq, tokens)
                    bound = 2e-6 * q.norm(dim=-1).amax(1)[:, None, None] * key_norm[None] + 1e-30  # (B, Hq, tokens)
                    num_bytes = rows * (landmark.bytes_per_vector(CHANNELS) + 4 * NUM_Q_HEADS)
                    suffix = "" if layout == "head" else "_token_major"
                    return _record(f"score_landmark_batch{num_requests}_{backend}{suffix}", tokens, ms, num_bytes,
                                   copy_gbps, HBM_CEILING_GBPS, _check_close(out, ref, bound),
                                   {"requests": num_requests, "rows": rows, "score_kernel": backend,
                                    "store_layout": f"{layout}-major"})
                run(f"score_batch{num_requests}_{backend}_{layout}", tokens, step_score)
        del keys, codes, scales, landmark_codes, landmark_scales, landmark_key_norm, head_codes, head_scales
        torch.cuda.empty_cache()

    results["tuning"] = [{"key": [str(k) for k in key], "chosen": list(entry["chosen"]),
                          "median_ms": {str(tuple(c)): t for c, t in entry["median_ms"].items()},
                          "failed": {str(tuple(c)): e for c, e in entry["failed"].items()}}
                         for key, entry in TUNING_LOG.items()]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: cuda when available (then kernels are timed too)")
    parser.add_argument("--tokens", default="32768,65536,131072", help="token counts for the GPU kernels")
    parser.add_argument("--accuracy-tokens", type=int, default=None,
                        help="tokens for the reconstruction table (default 1024 on CPU, 32768 on CUDA)")
    parser.add_argument("--skip-kernels", action="store_true", help="GPU: only the reconstruction table")
    parser.add_argument("--out", default=None, help="write the result JSON here (results/quant_bench_<machine>.json)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    tokens_list = [int(t) for t in args.tokens.split(",") if t]
    accuracy_tokens = args.accuracy_tokens or (1024 if device.type == "cpu" else 32768)

    start = time.perf_counter()
    figures: dict = {"accuracy": accuracy(accuracy_tokens, device, print)}
    if device.type == "cuda" and not args.skip_kernels:
        figures["kernels"] = bench_kernels(tokens_list, device, print)
    figures["seconds"] = round(time.perf_counter() - start, 1)
    errors = figures.get("kernels", {}).get("errors", [])
    mismatches = [r["kernel"] for r in figures.get("kernels", {}).get("records", []) if not r["matches_reference"]]
    if args.out:
        from sglang_kv.results import write_result

        workload = {"model_shape": "Llama-3.1-8B keys: 8 kv heads x 128, 32 query heads",
                    "device": str(device), "accuracy_tokens": accuracy_tokens,
                    "kernel_tokens": tokens_list if "kernels" in figures else [],
                    "store": STORE, "store_head": STORE_HEAD, "landmark": LANDMARK,
                    "data": "synthetic keys (seed %d): gaussian, channel_outliers" % DATA_SEED}
        command = shlex.join(["python", "-m", "sglang_kv.quant.bench", *(sys.argv[1:] if argv is None else argv)])
        write_result(args.out, workload, figures, command=command)
        print(f"\nwrote {args.out}")
    if errors or mismatches:
        print(f"\n{len(errors)} kernel step(s) failed, {len(mismatches)} mismatched the torch path: "
              f"{[e['kernel'] for e in errors] + mismatches}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
