"""Triton jit kernel of the selection's softmax + GQA max (host wrapper, shapes and torch reference:
:mod:`sglang_kv.kernels.softmax`)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def group_max_softmax_kernel(
    logits_ptr, lengths_ptr, out_ptr,
    num_cols, logits_stride_b, logits_stride_h, out_stride_b, out_stride_h, scale,
    GQA: tl.constexpr, GQA_PAD: tl.constexpr, BLOCK: tl.constexpr,
):
    """``out[b, h, t] = max_i softmax(scale * logits[b, h * GQA + i, :length_b])[t]`` for ``t <
    length_b`` and ``-1`` for ``length_b <= t < num_cols``; kv head ``program_id(0)``, request
    ``program_id(1)``.

    logits: float32 ``[B, Hq, >= num_cols]`` (last dimension contiguous; columns past ``length_b``
    are not read), lengths: int32 ``[B]`` (each >= 1), out: float32 ``[B, Hkv, num_cols]``. Two passes
    over the group's rows: an online max and sum of exponentials per query head, then the
    probabilities, their max over the group and the store. Per (request, kv head): reads
    ``2 * GQA * length * 4`` bytes, writes ``num_cols * 4``.
    """
    head = tl.program_id(0)
    request = tl.program_id(1)
    length = tl.load(lengths_ptr + request)
    offs_g = tl.arange(0, GQA_PAD)
    in_group = offs_g < GQA
    rows = logits_ptr + request.to(tl.int64) * logits_stride_b + (head * GQA + offs_g)[:, None] * logits_stride_h
    offs = tl.arange(0, BLOCK)

    row_max = tl.full([GQA_PAD], float("-inf"), tl.float32)
    row_sum = tl.zeros([GQA_PAD], tl.float32)
    for start in range(0, length, BLOCK):
        cols = start + offs
        mask = in_group[:, None] & (cols < length)[None, :]
        x = tl.load(rows + cols[None, :], mask=mask, other=float("-inf")) * scale
        new_max = tl.maximum(row_max, tl.max(x, axis=1))
        safe_max = tl.where(new_max == float("-inf"), 0.0, new_max)  # padded query heads stay at -inf
        row_sum = row_sum * tl.exp(row_max - safe_max) + tl.sum(tl.exp(x - safe_max[:, None]), axis=1)
        row_max = new_max
    safe_max = tl.where(in_group, row_max, 0.0)
    inv_sum = tl.where(in_group, 1.0 / tl.where(in_group, row_sum, 1.0), 0.0)

    out_row = out_ptr + request.to(tl.int64) * out_stride_b + head * out_stride_h
    for start in range(0, num_cols, BLOCK):
        cols = start + offs
        valid = cols < length
        x = tl.load(rows + cols[None, :], mask=in_group[:, None] & valid[None, :], other=float("-inf")) * scale
        probs = tl.exp(x - safe_max[:, None]) * inv_sum[:, None]  # (GQA_PAD, BLOCK), 0 where masked
        best = tl.where(valid, tl.max(probs, axis=0), -1.0)
        tl.store(out_row + cols, best, mask=cols < num_cols)
