"""Triton jit kernels of the sparse decode attention over gathered rows (host wrapper, shapes and torch
reference: :mod:`sglang_kv.kernels.attention`)."""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _dot16(a, b, DOT_BF16: tl.constexpr):
    """``a @ b`` of two 16-bit operands of one dtype, float32 accumulation. Without ``DOT_BF16`` (the
    interpreter: Triton 3.6's interpreted dot multiplies bfloat16 bit patterns as integers), bfloat16
    operands are widened to float32 first, which gives the same exact products."""
    if a.dtype == tl.bfloat16 and not DOT_BF16:
        c = tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        c = tl.dot(a, b)
    return c


@triton.jit
def _scores(q, k, DOT_BF16: tl.constexpr):
    """``q @ k^T`` in float32: q ``[GQA_PAD, D_PAD]``, k ``[BLOCK, D_PAD]`` -> ``[GQA_PAD, BLOCK]``. A
    16-bit dot when both share a 16-bit dtype, else a float32 dot in full precision."""
    if q.dtype == k.dtype:
        if k.dtype == tl.float32:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
        else:
            s = _dot16(q, tl.trans(k), DOT_BF16)
    else:
        s = tl.dot(q.to(tl.float32), tl.trans(k.to(tl.float32)), input_precision="ieee")
    return s


@triton.jit
def _weighted_values(p, v, DOT_BF16: tl.constexpr):
    """``p @ v`` in float32: p float32 ``[GQA_PAD, BLOCK]``, v ``[BLOCK, DV_PAD]``; p is rounded to
    v's dtype when v is 16-bit (as SDPA does), else a float32 dot in full precision."""
    if v.dtype == tl.float32:
        pv = tl.dot(p, v, input_precision="ieee")
    else:
        pv = _dot16(p.to(v.dtype), v, DOT_BF16)
    return pv


@triton.jit
def _attend_block(q, k, v, valid, row_max, row_sum, acc, qk_scale, DOT_BF16: tl.constexpr):
    """One online-softmax step over a block of ``BLOCK`` tokens (``valid``: ``[BLOCK]``, at least one
    true). Scores are in log2 units (``qk_scale = scale * log2(e)``); returns the new running max
    ``[GQA_PAD]``, sum of exponentials ``[GQA_PAD]`` and unnormalized output ``[GQA_PAD, DV_PAD]``."""
    s = tl.where(valid[None, :], _scores(q, k, DOT_BF16) * qk_scale, float("-inf"))
    new_max = tl.maximum(row_max, tl.max(s, axis=1))
    alpha = tl.exp2(row_max - new_max)  # 0 on the first block (row_max = -inf)
    p = tl.exp2(s - new_max[:, None])
    row_sum = row_sum * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + _weighted_values(p, v, DOT_BF16)
    return new_max, row_sum, acc


# Integer arguments that change from one decode step to the next: the selected and window token counts
# and the strides that follow them. Triton compiles a variant per value class of each specialized int
# (1, a multiple of 16, other), so left specialized they made a server compile about six variants over
# its first hundred or so decode steps (0.5-1 s each, in its steady decode: 74 of 834 py-spy samples of a
# Qwen3-30B-A3B 32 x 32K yakv server on the H200, 2026-12-04,
# results/logs/pyspy_decode_qwen3_30b_a3b_32x32k_yakv_h200_0e49edc.txt.gz).
# The unit strides (of the token dimension) stay specialized: the row-id loads are contiguous.
DECODE_VARYING_INTS = ["num_sel", "num_win", "sel_rows_stride_b", "sel_rows_stride_h", "win_rows_stride_b"]


@triton.jit(do_not_specialize=DECODE_VARYING_INTS)
def sparse_decode_attention_kernel(
    q_ptr, sel_k_ptr, sel_v_ptr, sel_rows_ptr, win_k_ptr, win_v_ptr, win_rows_ptr,
    out_ptr, part_acc_ptr, part_stats_ptr,
    num_sel, num_win, split_tokens, scale,
    q_stride_b, q_stride_h, sel_k_stride, sel_v_stride,
    sel_rows_stride_b, sel_rows_stride_h, sel_rows_stride_n,
    win_k_stride_p, win_k_stride_h, win_v_stride_p, win_v_stride_h, win_rows_stride_b, win_rows_stride_m,
    out_stride_b, out_stride_h,
    GQA: tl.constexpr, GQA_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
    DV: tl.constexpr, DV_PAD: tl.constexpr, BLOCK: tl.constexpr, SPLIT: tl.constexpr, DOT_BF16: tl.constexpr,
):
    """Attention of the ``GQA`` query heads of kv head ``program_id(0)``, request ``program_id(1)``, over
    tokens ``[s * split_tokens, (s + 1) * split_tokens)`` of its ``num_sel + num_win``, ``s =
    program_id(2)``: token ``t < num_sel`` is row ``sel_rows[b, h, t]`` of ``sel_k``/``sel_v``, token
    ``num_sel + j`` is pool row ``win_rows[b, j]``, head ``h`` of ``win_k``/``win_v``.

    q ``[B, Hq, D]``, sel_k ``[R, D]``, sel_v ``[R, DV]``, sel_rows int32/int64 ``[B, Hkv, num_sel]``,
    win_k ``[P, Hkv, D]``, win_v ``[P, Hkv, DV]``, win_rows int32/int64 ``[B, num_win]`` (K/V last
    dimensions contiguous; float dtypes may differ). ``SPLIT`` false: writes ``out [B, Hq, DV]`` (q's
    dtype). ``SPLIT`` true: writes this split's float32 unnormalized output to ``part_acc [B, Hq,
    splits, DV]`` and its running max (log2 units) and sum to ``part_stats [2, B, Hq, splits]`` for
    :func:`merge_splits_kernel`. ``DOT_BF16``: see :func:`_dot16`. Per program: reads ``GQA * D``
    query elements once, then per token one row id and ``D + DV`` K/V elements.
    """
    head = tl.program_id(0)
    request = tl.program_id(1).to(tl.int64)
    split = tl.program_id(2)
    offs_g = tl.arange(0, GQA_PAD)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    offs_n = tl.arange(0, BLOCK)
    in_group = offs_g < GQA
    d_mask = offs_d < D
    dv_mask = offs_dv < DV
    q_heads = head * GQA + offs_g  # (GQA_PAD,)

    q = tl.load(q_ptr + request * q_stride_b + q_heads[:, None] * q_stride_h + offs_d[None, :],
                mask=in_group[:, None] & d_mask[None, :], other=0.0)  # (GQA_PAD, D_PAD), padding rows 0
    qk_scale = scale * LOG2E
    row_max = tl.full([GQA_PAD], float("-inf"), tl.float32)
    row_sum = tl.zeros([GQA_PAD], tl.float32)
    acc = tl.zeros([GQA_PAD, DV_PAD], tl.float32)

    lo = split * split_tokens
    hi = tl.minimum(lo + split_tokens, num_sel + num_win)

    # selected tokens [lo, min(hi, num_sel)): rows of sel_k / sel_v
    sel_ids = sel_rows_ptr + request * sel_rows_stride_b + head.to(tl.int64) * sel_rows_stride_h
    sel_hi = tl.minimum(hi, num_sel)
    for start in range(lo, sel_hi, BLOCK):
        tok = start + offs_n
        valid = tok < sel_hi
        rows = tl.load(sel_ids + tok * sel_rows_stride_n, mask=valid, other=0).to(tl.int64)
        k = tl.load(sel_k_ptr + rows[:, None] * sel_k_stride + offs_d[None, :],
                    mask=valid[:, None] & d_mask[None, :], other=0.0)  # (BLOCK, D_PAD)
        v = tl.load(sel_v_ptr + rows[:, None] * sel_v_stride + offs_dv[None, :],
                    mask=valid[:, None] & dv_mask[None, :], other=0.0)  # (BLOCK, DV_PAD)
        row_max, row_sum, acc = _attend_block(q, k, v, valid, row_max, row_sum, acc, qk_scale, DOT_BF16)

    # window tokens [max(lo, num_sel), hi) - num_sel: pool rows of win_k / win_v at this kv head
    win_ids = win_rows_ptr + request * win_rows_stride_b
    win_k_head = win_k_ptr + head.to(tl.int64) * win_k_stride_h
    win_v_head = win_v_ptr + head.to(tl.int64) * win_v_stride_h
    win_hi = hi - num_sel
    for start in range(tl.maximum(lo, num_sel) - num_sel, win_hi, BLOCK):
        tok = start + offs_n
        valid = tok < win_hi
        rows = tl.load(win_ids + tok * win_rows_stride_m, mask=valid, other=0).to(tl.int64)
        k = tl.load(win_k_head + rows[:, None] * win_k_stride_p + offs_d[None, :],
                    mask=valid[:, None] & d_mask[None, :], other=0.0)
        v = tl.load(win_v_head + rows[:, None] * win_v_stride_p + offs_dv[None, :],
                    mask=valid[:, None] & dv_mask[None, :], other=0.0)
        row_max, row_sum, acc = _attend_block(q, k, v, valid, row_max, row_sum, acc, qk_scale, DOT_BF16)

    store_mask = in_group[:, None] & dv_mask[None, :]
    if SPLIT:
        num_splits = tl.num_programs(2)
        num_q_heads = tl.num_programs(0) * GQA
        part = (request * num_q_heads + q_heads) * num_splits + split  # (GQA_PAD,) index into [B, Hq, splits]
        tl.store(part_acc_ptr + part[:, None] * DV + offs_dv[None, :], acc, mask=store_mask)
        stats_plane = tl.num_programs(1).to(tl.int64) * num_q_heads * num_splits
        tl.store(part_stats_ptr + part, row_max, mask=in_group)
        tl.store(part_stats_ptr + stats_plane + part, row_sum, mask=in_group)
    else:
        out = acc / row_sum[:, None]  # row_sum > 0: every program sees >= 1 token
        out_rows = out_ptr + request * out_stride_b + q_heads[:, None] * out_stride_h
        tl.store(out_rows + offs_dv[None, :], out.to(out_ptr.dtype.element_ty), mask=store_mask)


@triton.jit
def merge_splits_kernel(
    part_acc_ptr, part_stats_ptr, out_ptr,
    num_splits, out_stride_b, out_stride_h,
    DV: tl.constexpr, DV_PAD: tl.constexpr, SPLITS_PAD: tl.constexpr,
):
    """``out[b, i] = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s`` over the splits of query head
    ``i = program_id(0)``, request ``b = program_id(1)`` (``M = max_s m_s``; a split with no token has
    ``m_s = -inf, l_s = 0, acc_s = 0``). part_acc float32 ``[B, Hq, splits, DV]``, part_stats float32
    ``[2, B, Hq, splits]`` (max, sum), out ``[B, Hq, DV]``. Reads ``splits * (DV + 2) * 4`` bytes,
    writes ``DV`` elements.
    """
    q_head = tl.program_id(0)
    request = tl.program_id(1).to(tl.int64)
    num_q_heads = tl.num_programs(0)
    offs_s = tl.arange(0, SPLITS_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    in_range = offs_s < num_splits
    part = (request * num_q_heads + q_head) * num_splits + offs_s  # (SPLITS_PAD,)
    stats_plane = tl.num_programs(1).to(tl.int64) * num_q_heads * num_splits
    split_max = tl.load(part_stats_ptr + part, mask=in_range, other=float("-inf"))
    split_sum = tl.load(part_stats_ptr + stats_plane + part, mask=in_range, other=0.0)
    acc = tl.load(part_acc_ptr + part[:, None] * DV + offs_dv[None, :],
                  mask=in_range[:, None] & (offs_dv < DV)[None, :], other=0.0)  # (SPLITS_PAD, DV_PAD)
    weight = tl.exp2(split_max - tl.max(split_max, axis=0))  # 0 for empty and padding splits
    total = tl.sum(acc * weight[:, None], axis=0) / tl.sum(split_sum * weight, axis=0)
    out_row = out_ptr + request * out_stride_b + q_head * out_stride_h
    tl.store(out_row + offs_dv, total.to(out_ptr.dtype.element_ty), mask=offs_dv < DV)
