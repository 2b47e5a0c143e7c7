"""Triton jit kernel of the selection's top-k (host wrapper, shapes and torch reference:
:mod:`sglang_kv.kernels.topk`)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _ordered_key(x):
    """float32 -> uint32 whose unsigned order is the float order (negatives: all bits flipped;
    others: the sign bit set)."""
    bits = x.to(tl.uint32, bitcast=True)
    flip = tl.where((bits >> 31) != 0, 0xFFFFFFFF, 0x80000000).to(tl.uint32)
    return bits ^ flip


@triton.jit
def topk_sorted_kernel(
    scores_ptr, counts_ptr, out_ptr, values_ptr, columns_ptr,
    num_cols, width, scores_stride, out_stride, columns_stride,
    BLOCK: tl.constexpr, DIGIT_BITS: tl.constexpr, CHUNKS: tl.constexpr = 1, WRITE_VALUES: tl.constexpr = False,
    MAP_COLUMNS: tl.constexpr = False,
):
    """Row ``program_id(0)``: the columns of its ``count`` largest scores in ascending column order
    (ties at the threshold: the lowest columns), then columns ``[count, width)`` set to the first of
    them.

    The two stages of a row split in ``CHUNKS`` (``kernels.topk``, ``TopkConfig.chunks``) run this
    kernel too. Stage 1 (``CHUNKS > 1``, ``WRITE_VALUES``): program ``r * CHUNKS + c`` takes chunk
    ``c`` of row ``r``, columns ``[c * num_cols, (c + 1) * num_cols)`` (``num_cols``: the chunk's),
    with count ``min(counts[r], num_cols)``; it writes row columns (not chunk columns) and, at the
    same positions of ``values`` (float32, ``out``'s layout), their scores, its padding at ``-inf``.
    Stage 2 (``MAP_COLUMNS``): the rows are stage 1's candidate values and every position written is
    replaced by the column ``columns[row, position]`` (int64, row stride ``columns_stride``).

    scores: float32 ``[R, >= num_cols]`` (last dimension contiguous), counts: int32 ``[R]`` (each in
    ``[1, num_cols]``), out: int64 ``[R, width]``. A radix select of the ``count``-th largest key,
    ``DIGIT_BITS`` bits per pass over the row (``ceil(32 / DIGIT_BITS)`` passes: a
    ``2**DIGIT_BITS``-bin ``tl.histogram`` of the digit among the keys that match the bits chosen so
    far; the last digit may be narrower), then one pass that writes every column above it and the
    first ones equal to it in order (a running prefix sum). Per row: reads
    ``(passes + 1) * num_cols * 4`` bytes (from L2 after the first pass), writes ``width * 8``.
    ``tl.histogram`` costs each thread about ``DIGIT_BITS + 2**DIGIT_BITS / 32 * 12`` instructions
    per key on the GPU, so narrower digits trade instructions for passes.

    Early exit: once the keys sharing the chosen high bits are exactly the ones still to take, every
    one of them is taken whatever its low bits, so the remaining passes are skipped. The threshold's
    unresolved low bits stay 0, so the write pass takes all of those keys: each is above the threshold
    or equal to it, and no more of them are equal to it than are still to take. On softmax rows of
    16K-64K columns at a 3.125% count this ends the select after 3-6 of its 7 passes of 5 bits (4 on
    average, in a numpy model of this loop on random logits), so about 5 reads of the row instead of 8.
    On the H200 it gained only 0-7% (scripts/gpu/topk_bench.py against ce495ed, e3a928b): one program
    per row, not the pass count, bounds the kernel.
    """
    row = tl.program_id(0)
    if CHUNKS > 1:
        count = tl.minimum(tl.load(counts_ptr + row // CHUNKS), num_cols)
        row_ptr = scores_ptr + (row // CHUNKS).to(tl.int64) * scores_stride + (row % CHUNKS) * num_cols
        col_base = (row % CHUNKS) * num_cols
    else:
        count = tl.load(counts_ptr + row)
        row_ptr = scores_ptr + row.to(tl.int64) * scores_stride
        col_base = 0
    offs = tl.arange(0, BLOCK)
    BINS: tl.constexpr = 1 << DIGIT_BITS
    digits = tl.arange(0, BINS)

    prefix = tl.zeros([1], tl.uint32)  # the high bits of the count-th largest key found so far
    remaining = tl.full([1], 0, tl.int32) + count  # how many keys with this prefix are still to take
    done = tl.zeros([1], tl.int1)  # the keys with this prefix are exactly the `remaining` ones
    for p in tl.static_range((32 + DIGIT_BITS - 1) // DIGIT_BITS):
        high = 32 - p * DIGIT_BITS  # this digit is bits [shift, high) of the key
        shift = high - DIGIT_BITS if high > DIGIT_BITS else 0
        per_digit = tl.zeros([BINS], tl.int32)
        pass_cols = tl.where(tl.max(done.to(tl.int32), axis=0) != 0, 0, num_cols)  # no pass once done
        for start in range(0, pass_cols, BLOCK):
            cols = start + offs
            valid = cols < num_cols
            key = _ordered_key(tl.load(row_ptr + cols, mask=valid, other=0.0))
            if p > 0:
                valid = valid & ((key >> high) == (prefix >> high))
            per_digit += tl.histogram(((key >> shift) & ((1 << (high - shift)) - 1)).to(tl.int32), BINS,
                                      mask=valid)
        # keys with a digit >= d, per d (non-increasing in d); the chosen digit is the largest d whose
        # count still reaches `remaining`
        at_least = tl.sum(per_digit, axis=0) - tl.cumsum(per_digit, axis=0) + per_digit
        chosen = tl.sum((at_least[None, :] >= remaining[:, None]).to(tl.int32), axis=1) - 1  # [1]
        above = tl.sum(tl.where(digits[None, :] > chosen[:, None], per_digit[None, :], 0), axis=1)
        in_bin = tl.sum(tl.where(digits[None, :] == chosen[:, None], per_digit[None, :], 0), axis=1)
        remaining = tl.where(done, remaining, remaining - above)
        prefix = tl.where(done, prefix, prefix | (chosen.to(tl.uint32) << shift))
        done = done | (in_bin == remaining)

    # the keys above the threshold, and the first `remaining` keys equal to it, in column order
    threshold = prefix
    out_row = out_ptr + row.to(tl.int64) * out_stride
    written = tl.zeros([1], tl.int32)
    equal_seen = tl.zeros([1], tl.int32)
    first = tl.full([1], 0, tl.int32) + num_cols
    map_row = columns_ptr + row.to(tl.int64) * columns_stride
    for start in range(0, num_cols, BLOCK):
        cols = start + offs
        valid = cols < num_cols
        score = tl.load(row_ptr + cols, mask=valid, other=0.0)
        key = _ordered_key(score)
        equal = valid & (key == threshold)
        equal_rank = equal_seen + tl.cumsum(equal.to(tl.int32), axis=0) - 1
        take = (valid & (key > threshold)) | (equal & (equal_rank < remaining))
        position = written + tl.cumsum(take.to(tl.int32), axis=0) - 1
        if MAP_COLUMNS:
            column = tl.load(map_row + cols, mask=take, other=0)
        else:
            column = (col_base + cols).to(tl.int64)
        tl.store(out_row + position, column, mask=take)
        if WRITE_VALUES:
            tl.store(values_ptr + row.to(tl.int64) * out_stride + position, score, mask=take)
        written += tl.sum(take.to(tl.int32), axis=0)
        equal_seen += tl.sum(equal.to(tl.int32), axis=0)
        first = tl.minimum(first, tl.min(tl.where(take, cols, num_cols), axis=0))
    if MAP_COLUMNS:
        first_column = tl.load(map_row + first)  # [1]: the columns ascend with the positions
    else:
        first_column = (col_base + first).to(tl.int64)
    for start in range(0, width, BLOCK):  # padding columns past this row's count
        cols = start + offs
        pad = (cols >= count) & (cols < width)
        tl.store(out_row + cols, tl.zeros([BLOCK], tl.int64) + first_column, mask=pad)
        if WRITE_VALUES:
            tl.store(values_ptr + row.to(tl.int64) * out_stride + cols, tl.full([BLOCK], float("-inf"), tl.float32),
                     mask=pad)
