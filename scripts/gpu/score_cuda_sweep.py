"""Launch choices of the CUDA landmark score (``sglang_kv/kernels/higgs_score_cuda.py``, :class:`Tuning`)
against the Triton score, at Llama-3.1-8B's landmark shape (32 query / 8 kv heads of 128, the 4-D
2-bit grid; ``--kv-heads 4`` gives Qwen3-30B-A3B's GQA 8) on the GPU host: 1, 8 and 32 requests of 128K
tokens, each request its own head-major store, as the server reads them (``kernels.higgs.head_store_ref``;
token-major stores before 2026-12-04).

The tunings: row groups per warp, and programs per SM (how many waves the grid runs in, with the
programs an SM holds at once from ``cuOccupancyMaxActiveBlocksPerMultiprocessor``). At e3a928b the
sweep also timed loading two blocks ahead and ``ld.global.nc`` loads (both dropped: ``hc.Tuning``'s
docstring). Every tuning must give the same bits (each row's sums run in the same order); each is timed with
``triton.testing.do_bench`` (median) and its bandwidth reported against 4 TB/s:

    python scripts/gpu/score_cuda_sweep.py --out $OUT/score_cuda_sweep_h200.json
"""

from __future__ import annotations

import argparse
import ctypes

import torch
import triton.testing

from sglang_kv.devices import device_ints
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import higgs_score_cuda as hc
from sglang_kv.kernels._triton_utils import num_sms
from sglang_kv.quant.higgs import HiggsQuantizer
from sglang_kv.results import write_result

NUM_Q_HEADS, HEAD_DIM, TOKENS = 32, 128, 131072
HBM_GBPS = 4000.0
TUNINGS = [hc.Tuning(groups, programs_per_sm) for groups in (2, 4) for programs_per_sm in (3, 4, 6, 8, 12, 24)]


def resident_per_sm(kernel) -> int:
    """Programs of ``kernel`` one SM holds at once (``cuOccupancyMaxActiveBlocksPerMultiprocessor``)."""
    count = ctypes.c_int()
    result = hc._libcuda().cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(count), kernel.func,
                                                                        hc.THREADS, ctypes.c_size_t(0))
    if result != 0:
        raise RuntimeError(f"cuOccupancyMaxActiveBlocksPerMultiprocessor failed with CUDA error {result}")
    return count.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--requests", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--kv-heads", type=int, default=8, help="8: Llama-3.1-8B (GQA 4); 4: Qwen3-30B-A3B (GQA 8)")
    args = parser.parse_args()
    num_kv_heads = args.kv_heads
    device = torch.device("cuda", torch.cuda.current_device())
    quantizer = HiggsQuantizer(HEAD_DIM, 4, 2)
    gen = torch.Generator(device=device).manual_seed(0)
    keys = torch.randn(TOKENS, num_kv_heads * HEAD_DIM, device=device, generator=gen)
    codes, scales = quantizer.quantize(keys)
    rows = []
    for num_requests in args.requests:
        codes_b = codes.repeat(num_requests, 1).split(TOKENS)  # each request its own store
        scales_b = scales.repeat(num_requests, 1).split(TOKENS)
        q = torch.randn(num_requests, NUM_Q_HEADS, HEAD_DIM, device=device, generator=gen).to(torch.bfloat16)
        # head-major stores, as yakv holds its landmarks
        head_major = [(c.view(TOKENS, num_kv_heads, -1).transpose(0, 1).contiguous(), sc.transpose(0, 1).contiguous())
                      for c, sc in zip(codes_b, scales_b)]
        refs = [hk.head_store_ref(quantizer, c, sc, device) for c, sc in head_major]
        table = device_ints([(st.codes, st.scales, TOKENS) for st in refs], device)
        words = hk.grid_words(quantizer, device)
        out = torch.empty(num_requests, NUM_Q_HEADS, TOKENS, device=device)
        shape = hc.ScoreShape(HEAD_DIM, NUM_Q_HEADS // num_kv_heads, True, q.dtype, quantizer.scale_dtype, True)
        num_bytes = num_requests * TOKENS * (quantizer.bytes_per_vector(num_kv_heads * HEAD_DIM) + 4 * NUM_Q_HEADS)
        ref = hk.score_batch(quantizer, q, codes_b, scales_b, config="triton")
        first = None
        for tuning in TUNINGS:
            def launch(tuning=tuning):
                hc.launch(shape, q, out, out, table, words, out, TOKENS, num_kv_heads, HEAD_DIM // 4, 1,
                          num_sms(device), tuning)
            launch()
            resident = resident_per_sm(hc._compiled(shape, tuning, device.index))
            pairs = num_requests * num_kv_heads
            programs = hc.program_count(TOKENS, pairs, num_sms(device), tuning)
            waves = programs * pairs / (resident * num_sms(device))
            got = out.clone()
            first = got if first is None else first
            ms = triton.testing.do_bench(launch, warmup=10, rep=100, return_mode="median")
            row = {"requests": num_requests, "kernel": "cuda", "tuning": tuning._asdict(),
                   "default": tuning == hc.default_tuning(shape.gqa),
                   "resident_per_sm": resident, "programs_per_pair": programs, "waves": waves, "ms": ms,
                   "gbps": num_bytes / ms / 1e6,
                   "same_bits_as_first": bool(torch.equal(got, first)),
                   "max_abs_diff_vs_triton": float((got - ref).abs().max())}
            rows.append(row)
            print(f"{num_requests:>2} x 128K cuda {tuning} ({resident} per SM, {waves:.2f} waves): {ms:.4f} ms, "
                  f"{row['gbps']:.0f} GB/s "
                  f"({row['gbps'] / HBM_GBPS:.0%}), same bits {row['same_bits_as_first']}, "
                  f"|cuda - triton| {row['max_abs_diff_vs_triton']:.2e}{'  (default)' if row['default'] else ''}",
                  flush=True)
        ms = triton.testing.do_bench(lambda: hk.score_refs(quantizer, q, refs, [TOKENS] * num_requests, out=out,
                                                           config="triton"),
                                     warmup=10, rep=100, return_mode="median")
        rows.append({"requests": num_requests, "kernel": "triton", "ms": ms, "gbps": num_bytes / ms / 1e6})
        print(f"{num_requests:>2} x 128K triton (timed pick): {ms:.4f} ms, {num_bytes / ms / 1e6:.0f} GB/s", flush=True)
    write_result(args.out, {"tokens": TOKENS, "requests": args.requests, "heads": [NUM_Q_HEADS, num_kv_heads],
                            "head_dim": HEAD_DIM, "grid": "p=4, 2 bits (256 points)", "q_dtype": "bfloat16",
                            "store_layout": "head-major"},
                 {"rows": rows})


if __name__ == "__main__":
    main()
