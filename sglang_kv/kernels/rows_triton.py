"""Triton jit kernel that copies rows between the stores of several requests (host wrapper, shapes
and torch reference: :mod:`sglang_kv.kernels.rows`)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def copy_rows_kernel(
    elem_ptr, table_ptr, request_ptr, src_index_ptr, dst_index_ptr,
    num_rows, src_stride, dst_stride,
    ROW: tl.constexpr, ROW_PAD: tl.constexpr, BLOCK_T: tl.constexpr,
):
    """``dst_r[dst_index[i]] = src_r[src_index[i]]`` with ``r = request[i]``, for ``i < num_rows`` with
    ``dst_index[i] >= 0`` (rows with a negative destination are skipped: nothing is read).

    Rows are ``ROW`` elements of ``elem_ptr``'s type (``ROW_PAD``: the next power of two);
    ``table [B, 2]`` int64 holds each request's source and destination addresses; strides are in
    elements. Programs loop over blocks of ``BLOCK_T`` rows with stride ``num_programs(0)``.
    Per row: reads and writes ``ROW`` elements plus the three indices.
    """
    offs_c = tl.arange(0, ROW_PAD)
    for block in range(tl.program_id(0), tl.cdiv(num_rows, BLOCK_T), tl.num_programs(0)):
        offs = block * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = offs < num_rows
        dst_row = tl.load(dst_index_ptr + offs, mask=mask, other=-1).to(tl.int64)
        mask = mask & (dst_row >= 0)
        request = tl.load(request_ptr + offs, mask=mask, other=0).to(tl.int64)
        src_base = tl.load(table_ptr + request * 2, mask=mask, other=0).to(tl.pointer_type(elem_ptr.dtype.element_ty))
        dst_base = tl.load(table_ptr + request * 2 + 1, mask=mask, other=0).to(
            tl.pointer_type(elem_ptr.dtype.element_ty))
        src_row = tl.load(src_index_ptr + offs, mask=mask, other=0).to(tl.int64)
        mask2 = mask[:, None] & (offs_c < ROW)[None, :]
        x = tl.load(src_base[:, None] + (src_row * src_stride)[:, None] + offs_c[None, :], mask=mask2)
        tl.store(dst_base[:, None] + (dst_row * dst_stride)[:, None] + offs_c[None, :], x, mask=mask2)
