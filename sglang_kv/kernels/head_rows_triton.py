"""Triton jit kernel of the batched gather's distinct per-head rows (host wrapper, shapes and torch
reference: :mod:`sglang_kv.kernels.head_rows`)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _local_keys(index_ptr, head_base, head, cols, count, num_rows, width, mask, HEADS: tl.constexpr):
    """Keys within the request of head ``head``'s columns ``cols``: ``H * token + head``, or
    ``num_rows + head * width + col`` for a padding column (``col >= count``)."""
    token = tl.load(index_ptr + head_base + cols, mask=mask, other=0).to(tl.int64)
    return tl.where(cols < count, token * HEADS + head, num_rows + head * width + cols)


# width, num_rows and the steps change from one decode step to the next (one compiled variant for all)
@triton.jit(do_not_specialize=["width", "num_rows", "search_steps", "index_stride_b", "index_stride_h"])
def head_rows_kernel(
    index_ptr, counts_ptr, request_ptr, row_ptr, inverse_ptr,
    width, num_rows, search_steps, index_stride_b, index_stride_h,
    HEADS: tl.constexpr, BLOCK: tl.constexpr,
):
    """Columns ``program_id(1) * BLOCK ...`` of head ``h`` of request ``b`` (``program_id(0) = b * HEADS +
    h``): each column's key, its rank among the request's ``HEADS * width`` keys (a lower-bound binary
    search of ``search_steps >= ceil(log2(width + 1))`` steps in each head's ascending keys), then
    ``inverse[b, h, col] = b * HEADS * width + rank`` and, at that place, the request and the row (-1
    for padding). Keys are int64; the index's last dimension is contiguous."""
    pair = tl.program_id(0)
    request = pair // HEADS
    head = pair % HEADS
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    live = cols < width
    count = tl.load(counts_ptr + request)
    request_base = request.to(tl.int64) * index_stride_b
    key = _local_keys(index_ptr, request_base + head * index_stride_h, head, cols, count, num_rows, width, live,
                      HEADS)
    rank = tl.zeros([BLOCK], tl.int64)
    for other in tl.static_range(HEADS):
        lo = tl.zeros([BLOCK], tl.int64)
        hi = tl.zeros([BLOCK], tl.int64) + width
        for _ in range(search_steps):
            active = lo < hi
            mid = (lo + hi) // 2
            probe = _local_keys(index_ptr, request_base + other * index_stride_h, other, mid, count, num_rows, width,
                                live & active, HEADS)
            lo = tl.where(active & (probe < key), mid + 1, lo)
            hi = tl.where(active & (probe >= key), mid, hi)
        rank += lo
    place = request.to(tl.int64) * HEADS * width + rank
    tl.store(inverse_ptr + pair.to(tl.int64) * width + cols, place, mask=live)
    tl.store(request_ptr + place, tl.zeros([BLOCK], tl.int64) + request, mask=live)
    tl.store(row_ptr + place, tl.where(key < num_rows, key, -1), mask=live)
