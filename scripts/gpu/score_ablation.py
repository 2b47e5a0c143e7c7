"""Where the landmark score kernel's time goes (GPU host diagnostic, not part of the package).

A copy of ``higgs_score_kernel`` (sglang_kv/kernels/higgs_triton.py) with two switches, timed at 32
requests x 128K tokens (Llama-3.1-8B landmarks, 8 kv heads, GQA 4):

- ``ABL``: 0 the full kernel (each codeword component in its own dots with the matching rotated
  query channels, hi and lo apart); 1 no codeword lookup (the packed index stands in for the
  codeword); 2 the lookup but no tensor-core dot (the components are summed); 3 neither (loads,
  scales, stores only). A one-dot form (codewords in channel order, the query's hi | lo side by side
  in the dot's columns) was timed here on 2026-12-01 as ABL 0 against this form: 2.28 vs 2.25 ms,
  no gain (results/score_ablation_h200.json), and it was dropped.
- the store layout: ``row`` as the selectors keep it (``[rows, Hkv * 32 B]``: each head program
  reads 32 B of every 256 B row) or ``head`` (``[Hkv, rows, 32 B]``: each program reads contiguous
  bytes).

ABL 0 is checked against the real kernel (``diff``). Prints the fastest configs per variant:

    python scripts/gpu/score_ablation.py OUT.json
"""
import itertools
import json
import sys

import torch
import triton
import triton.language as tl
import triton.testing

from kernel_sweep import landmark_batch  # scripts/gpu, beside this script
from sglang_kv.devices import device_ints
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels.higgs_triton import (_codewords, _component, _group_queries, _load_index_rows,
                                            _request_rows, _rotated_query_component)


@triton.jit
def k_ablate(q_ptr, codes_ptr, scales_ptr, table_ptr, grid_ptr, out_ptr,
             num_rows, q_stride_b, q_stride_h, codes_stride, scales_stride, out_stride_b, out_stride_h,
             codes_head_stride, scales_head_stride,
             N: tl.constexpr, GQA: tl.constexpr, GQA_PAD: tl.constexpr, P: tl.constexpr, NUM_POINTS: tl.constexpr,
             J_PAD: tl.constexpr, IDX_BITS: tl.constexpr, K: tl.constexpr, U: tl.constexpr,
             HAS_TABLE: tl.constexpr, CODES_ALIGN: tl.constexpr, BLOCK_N: tl.constexpr, ABL: tl.constexpr):
    head = tl.program_id(1)
    request = tl.program_id(2)
    codes_base, scales_base, row_end = _request_rows(codes_ptr, scales_ptr, table_ptr, num_rows, request,
                                                      HAS_TABLE, CODES_ALIGN)
    offs_g = tl.arange(0, GQA_PAD)
    q_heads = head * GQA + offs_g
    q_t, factor = _group_queries(q_ptr, request, head, q_stride_b, q_stride_h, N, GQA, GQA_PAD)
    J: tl.constexpr = N // P
    q0_hi, q0_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 0)
    q1_hi, q1_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 1 % P)
    q2_hi, q2_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 2 % P)
    q3_hi, q3_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 3 % P)
    out_base = out_ptr + request.to(tl.int64) * out_stride_b
    W: tl.constexpr = J // K
    grid_words = tl.load(grid_ptr + tl.arange(0, NUM_POINTS))
    for block in range(tl.program_id(0), tl.cdiv(row_end, BLOCK_N), tl.num_programs(0)):
        rows = block * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = rows < row_end
        rows64 = rows.to(tl.int64)
        idx = _load_index_rows(codes_base + rows64 * codes_stride + head * codes_head_stride, mask, 1, J, J_PAD,
                               IDX_BITS, K, U, BLOCK_N)
        if ABL == 1 or ABL == 3:
            words = idx.to(tl.int64) * 0x0001000100010001
        else:
            words = _codewords(grid_words, idx, BLOCK_N, J_PAD)
        if ABL <= 1:
            keys = _component(words, 0, P)
            scores = tl.dot(keys, q0_lo, tl.dot(keys, q0_hi))
            keys = _component(words, 1, P)
            scores = tl.dot(keys, q1_lo, tl.dot(keys, q1_hi, scores))
            keys = _component(words, 2, P)
            scores = tl.dot(keys, q2_lo, tl.dot(keys, q2_hi, scores))
            keys = _component(words, 3, P)
            scores = tl.dot(keys, q3_lo, tl.dot(keys, q3_hi, scores))
        else:
            acc = _component(words, 0, P).to(tl.float32) + _component(words, 1, P).to(tl.float32) \
                + _component(words, 2, P).to(tl.float32) + _component(words, 3, P).to(tl.float32)
            scores = tl.zeros([BLOCK_N, GQA_PAD], tl.float32) + tl.sum(acc, axis=1)[:, None]
        scale = tl.load(scales_base + rows64 * scales_stride + head * scales_head_stride, mask=mask, other=0.0)
        scale = scale.to(tl.float32) * factor
        scores = scores * scale[:, None]
        out_ptrs = out_base + q_heads[None, :].to(tl.int64) * out_stride_h + rows64[:, None]
        tl.store(out_ptrs, scores, mask=mask[:, None] & (offs_g < GQA)[None, :])


def main(tokens=131072, requests=32):
    device = torch.device("cuda")
    lm, codes, scales, codes_b, scales_b, q, out, nbytes = landmark_batch(tokens, requests, device)
    table = device_ints([(c.data_ptr(), s.data_ptr(), c.shape[0]) for c, s in zip(codes_b, scales_b)], device)
    words = hk.grid_words(lm, device)
    meta = hk._packing_meta(lm)
    ref = hk.score_batch(lm, q, codes_b, scales_b)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    res = []
    # head-major copies: codes [Hkv, rows, 32], scales [Hkv, rows]
    hm_codes = codes.view(tokens, 8, 32).transpose(0, 1).contiguous()
    hm_c = [hm_codes.clone() for _ in range(requests)]
    hm_s = [scales.t().contiguous() for _ in range(requests)]
    hm_table = device_ints([(c.data_ptr(), s.data_ptr(), tokens) for c, s in zip(hm_c, hm_s)], device)
    configs = itertools.product(("row", "head"), (0, 1, 2, 3), (64, 128), (2, 4), (4, 8), (3,))
    for layout, abl, block, warps, pps, stages in configs:
        programs = max(1, min(triton.cdiv(tokens, block), triton.cdiv(pps * sms, 8 * requests)))
        if layout == "row":
            args = (table, codes.stride(0), scales.stride(0), 32, 1)
        else:
            args = (hm_table, 32, 1, tokens * 32, tokens)
        run = lambda: k_ablate[(programs, 8, requests)](
            q, codes_b[0], scales_b[0], args[0], words, out, tokens, q.stride(0), q.stride(1), args[1],
            args[2], out.stride(0), out.stride(1), args[3], args[4], N=128, GQA=4, GQA_PAD=hk.score_columns(4), NUM_POINTS=256, J_PAD=32,
            HAS_TABLE=True, CODES_ALIGN=16, BLOCK_N=block, ABL=abl, num_warps=warps, num_stages=stages, **meta)
        try:
            run(); torch.cuda.synchronize()
            ms = triton.testing.do_bench(run, warmup=10, rep=40, return_mode="median")
        except Exception as e:
            print(layout, abl, block, warps, pps, stages, "ERR", str(e)[:200]); continue
        diff = float((out - ref).abs().max()) if abl == 0 else None
        res.append(dict(layout=layout, abl=abl, block=block, warps=warps, pps=pps, stages=stages, ms=ms,
                        gbps=nbytes / ms / 1e6, diff=diff))
    for layout, abl in itertools.product(("row", "head"), (0, 1, 2, 3)):
        best = sorted((r for r in res if r["abl"] == abl and r["layout"] == layout), key=lambda r: r["ms"])[:2]
        for r in best:
            print(r)
    json.dump(res, open(sys.argv[1], "w"))


if __name__ == "__main__":
    main()
