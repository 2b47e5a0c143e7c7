"""Where the CUDA landmark score's time goes (``sglang_kv/kernels/higgs_score_cuda.py``) at Llama-3.1-8B's
landmark shape, 8 and 32 requests of 128K tokens, on the GPU host.

Each variant is the kernel's source with one part taken out by text substitution (a missing pattern
fails loudly), timed with ``triton.testing.do_bench`` (median) against the full kernel's bytes:

- ``full``: the kernel as served;
- ``no_scales``: every scale read as 1 (no scale loads);
- ``no_lookups``: the codewords made from the code bytes themselves (no shared-memory table reads);
- ``no_mma``: the tensor-core products replaced by one add per operand word;
- ``loads_stores``: neither lookups nor products: the code and scale loads and the score stores alone;
- ``streaming``: the full kernel with the code bytes loaded through ``ld.global.cs`` (evict first);
- ``*_head_major``: the variant compiled for head-major stores (``ScoreShape.head_major``, yakv's landmark
  layout since 2026-12-04) and reading the same bytes as one (each kv head's code bytes, then its scales,
  back to back for all rows) instead of 32 of every 256 code bytes and 2 of every 16 scale bytes per row
  (its scores are not the token-major store's). Before 2026-12-04 this variant was a text substitution
  of the same two offsets.

Only ``full`` and ``streaming`` compute the served scores (checked against the served kernel's bits)::

    python scripts/gpu/score_cuda_ablation.py --out $OUT/score_cuda_ablation_h200.json
"""

from __future__ import annotations

import argparse
import functools

import torch
import triton.testing

from sglang_kv.devices import device_ints
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import higgs_score_cuda as hc
from sglang_kv.kernels._triton_utils import num_sms
from sglang_kv.quant.higgs import HiggsQuantizer
from sglang_kv.results import write_result

NUM_Q_HEADS, NUM_KV_HEADS, HEAD_DIM, TOKENS = 32, 8, 128, 131072
HBM_GBPS = 4000.0

SCALE_LOAD = "s[m][half] = in ? load_f32<SCALE_KIND>(scales, row * scales_stride + scale_head) : 0.f;"
LOOKUPS = ("const uint2 w0 = words[(u32)((c[m][0] >> (8 * kb)) & 255) * COPIES + r16];",
           "const uint2 w1 = words[(u32)((c[m][1] >> (8 * kb)) & 255) * COPIES + r16];")
MMA = "mma16816(acc[m][nt], a, b[kb][nt]);"
CODE_LOAD = "*(const code_t*)(codes + row * codes_stride + head_bytes)"

SUBSTITUTIONS = {
    "full": [],
    "no_scales": [(SCALE_LOAD, "s[m][half] = in ? 1.f : 0.f;")],
    "no_lookups": [(LOOKUPS[0], "const uint2 w0 = make_uint2((u32)(c[m][0] >> (8 * kb)), "
                                "(u32)(c[m][0] >> (4 * kb)));"),
                   (LOOKUPS[1], "const uint2 w1 = make_uint2((u32)(c[m][1] >> (8 * kb)), "
                                "(u32)(c[m][1] >> (4 * kb)));")],
    "no_mma": [(MMA, "{ acc[m][nt][0] += __uint_as_float(a[0] & 0x3fffffffu); "
                     "acc[m][nt][1] += __uint_as_float(a[1] & 0x3fffffffu); "
                     "acc[m][nt][2] += __uint_as_float(a[2] & 0x3fffffffu); "
                     "acc[m][nt][3] += __uint_as_float(a[3] & 0x3fffffffu); }")],
    "streaming": [(CODE_LOAD, "__ldcs((const code_t*)(codes + row * codes_stride + head_bytes))")],
}
SUBSTITUTIONS["loads_stores"] = SUBSTITUTIONS["no_lookups"] + SUBSTITUTIONS["no_mma"]
SERVED_SCORES = ("full", "streaming")


def variant_source(shape: hc.ScoreShape, name: str) -> str:
    text = hc.source(shape)
    for old, new in SUBSTITUTIONS[name]:
        if old not in text:
            raise ValueError(f"variant {name}: the kernel source no longer contains {old!r}")
        text = text.replace(old, new)
    return text


@functools.cache
def compiled(shape: hc.ScoreShape, name: str):
    return torch.cuda._compile_kernel(variant_source(shape, name), "higgs_score_p4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--requests", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    device = torch.device("cuda", torch.cuda.current_device())
    quantizer = HiggsQuantizer(HEAD_DIM, 4, 2)
    gen = torch.Generator(device=device).manual_seed(0)
    codes, scales = quantizer.quantize(torch.randn(TOKENS, NUM_KV_HEADS * HEAD_DIM, device=device, generator=gen))
    words = hk.grid_words(quantizer, device)
    sms = num_sms(device)
    rows = []
    for num_requests in args.requests:
        stores = [(codes.clone(), scales.clone()) for _ in range(num_requests)]  # each request its own store
        table = device_ints([(c.data_ptr(), s.data_ptr(), TOKENS) for c, s in stores], device)
        q = torch.randn(num_requests, NUM_Q_HEADS, HEAD_DIM, device=device, generator=gen).to(torch.bfloat16)
        out = torch.empty(num_requests, NUM_Q_HEADS, TOKENS, device=device)
        shape = hc.ScoreShape(HEAD_DIM, NUM_Q_HEADS // NUM_KV_HEADS, True, q.dtype, quantizer.scale_dtype)
        num_bytes = num_requests * TOKENS * (quantizer.bytes_per_vector(NUM_KV_HEADS * HEAD_DIM) + 4 * NUM_Q_HEADS)
        programs = hc.program_count(TOKENS, num_requests * NUM_KV_HEADS, sms, hc.default_tuning(shape.gqa))
        grid = (programs, NUM_KV_HEADS, num_requests)
        hc.launch(shape, q, out, out, table, words, out, TOKENS, NUM_KV_HEADS, codes.stride(0), scales.stride(0), sms)
        served = out.clone()
        for name in SUBSTITUTIONS:
            for layout, (codes_stride, scales_stride) in (("", (codes.stride(0), scales.stride(0))),
                                                          ("_head_major", (HEAD_DIM // 4, 1))):
                try:
                    kernel = compiled(shape._replace(head_major=bool(layout)), name)
                except Exception as exc:  # a variant that does not compile is reported, the others still run
                    rows.append({"requests": num_requests, "variant": name + layout, "error": repr(exc)[:500]})
                    print(f"{num_requests:>2} x 128K {name + layout}: does not compile: {exc!r}"[:300], flush=True)
                    continue
                ints = (TOKENS, q.stride(0), q.stride(1), codes_stride, scales_stride, out.stride(0), out.stride(1))
                pointers = [t.data_ptr() for t in (q, out, out, table, words, out)]

                def launch(kernel=kernel, ints=ints, pointers=pointers):
                    hc._launch(kernel.func, device, grid, pointers, ints)

                out.zero_()
                launch()
                torch.cuda.synchronize()
                same = bool(torch.equal(out, served)) if name in SERVED_SCORES and not layout else None
                ms = triton.testing.do_bench(launch, warmup=10, rep=100, return_mode="median")
                row = {"requests": num_requests, "variant": name + layout, "ms": ms, "gbps": num_bytes / ms / 1e6,
                       "same_bits_as_served": same}
                rows.append(row)
                print(f"{num_requests:>2} x 128K {name + layout}: {ms:.4f} ms, {row['gbps']:.0f} GB/s "
                      f"({row['gbps'] / HBM_GBPS:.0%} of 4 TB/s){'' if same is None else f', same bits {same}'}",
                      flush=True)
    write_result(args.out, {"tokens": TOKENS, "requests": args.requests, "heads": [NUM_Q_HEADS, NUM_KV_HEADS],
                            "head_dim": HEAD_DIM, "grid": "p=4, 2 bits (256 points)", "q_dtype": "bfloat16",
                            "tuning": hc.default_tuning(NUM_Q_HEADS // NUM_KV_HEADS)._asdict()}, {"rows": rows})


if __name__ == "__main__":
    main()
