"""The batched gather's distinct per-head payload rows, in one launch (yakv with per-head payload groups).

Request ``b`` selected, per kv head ``h``, the ascending token columns ``index[b, h, :counts[b]]`` (the
top-k in index order; its columns past ``counts[b]`` pad the row). With per-head rows, token ``t`` of
head ``h`` is row ``H * t + h`` of the request's payload store, so within a request the selected rows
are distinct, and the gather can read each once, request-major and ascending, with neither a
``torch.unique`` (its output size is data dependent: it waits for the GPU) nor a sort.

- :func:`head_rows`: ``(request, row, inverse)``: the rows to read in that order, ``-1`` for a padding
  column (nothing read), and where each ``(request, head, column)`` landed.
- :func:`head_rows_ref`: its torch path (row keys, padding keys past the request's rows, a batched
  binary search of every key in each head's row, a scatter, a split: about fifteen launches; 16% of a
  Qwen3-30B-A3B 32 x 32K server's host samples on the H200 went to them, with the rows' Python
  set-up), the reference the kernel is tested against and what CPU serving runs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sglang_kv.kernels._triton_utils import cdiv, check_kernel_device

BLOCK = 128  # columns per program
NUM_WARPS = 4


class HeadRows(NamedTuple):
    request: torch.Tensor  # int64 [B * H * W]: the request of each row read, ascending
    row: torch.Tensor  # int64 [B * H * W]: its payload row (H * token + head), ascending within a request; -1: padding
    inverse: torch.Tensor  # int64 [B, H, W]: where (request, head, column) landed in request / row


def _check(index: torch.Tensor, counts: torch.Tensor, num_rows: int) -> None:
    if index.dim() != 3 or index.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index must be int32/int64 [B, H, W], got {index.dtype} {tuple(index.shape)}")
    if counts.dtype != torch.int32 or counts.shape != index.shape[:1] or counts.device != index.device:
        raise ValueError(f"counts must be int32 [{index.shape[0]}] on {index.device}, got {counts.dtype} "
                         f"{tuple(counts.shape)} on {counts.device}")
    if num_rows < 0:
        raise ValueError(f"num_rows must be >= 0, got {num_rows}")


def head_rows_ref(index: torch.Tensor, counts: torch.Tensor, num_rows: int) -> HeadRows:
    """Torch path of :func:`head_rows`. Each key is ``b * K + H * index + h`` with ``K = num_rows + H *
    W`` keys per request; padding column ``j >= counts[b]`` gets ``b * K + num_rows + h * W + j``
    instead, past every row: the keys are distinct, each head's row ascending, and request ``b``'s
    all below request ``b + 1``'s. A key's place is then the number of keys below it in its
    request's ``H`` rows (one batched binary search)."""
    _check(index, counts, num_rows)
    batch, heads, width = index.shape
    device = index.device
    key_rows = num_rows + heads * width
    column = torch.arange(width, device=device)
    request_base = torch.arange(batch, device=device)[:, None, None] * key_rows  # (B, 1, 1)
    rows = torch.add(request_base + torch.arange(heads, device=device)[:, None], index.long(), alpha=heads)
    padding = request_base + num_rows + torch.arange(0, heads * width, width, device=device)[:, None] + column
    keys = torch.where(column < counts.long()[:, None, None], rows, padding)  # (B, H, W)
    every = keys.reshape(batch, 1, heads * width).expand(batch, heads, heads * width).contiguous()
    below = torch.searchsorted(keys, every).sum(1)  # (B, H * W): keys below it, in its request
    inverse = torch.add(below, torch.arange(0, batch * heads * width, heads * width, device=device)[:, None])
    ordered = torch.empty(keys.numel(), dtype=torch.int64, device=device)
    ordered[inverse.view(-1)] = keys.reshape(-1)
    row = ordered % key_rows
    return HeadRows(ordered // key_rows, torch.where(row < num_rows, row, -1), inverse.view(keys.shape))


def head_rows(index: torch.Tensor, counts: torch.Tensor, num_rows: int) -> HeadRows:
    """The distinct payload rows a batch's per-head selection reads, in one launch.

    index: int32/int64 ``[B, H, W]`` (last dimension contiguous): request ``b``'s token columns of kv
    head ``h``, ``index[b, h, :counts[b]]`` ascending and below ``num_rows / H`` (neither checked on the
    device); later columns are padding. counts: int32 ``[B]`` on index's device, each in ``[0, W]``.
    num_rows: the payload rows of the longest request's store. Returns :class:`HeadRows`, equal to
    :func:`head_rows_ref`.
    """
    _check(index, counts, num_rows)
    check_kernel_device(index.device, "index")
    if index.stride(-1) != 1:
        raise ValueError(f"index needs a contiguous last dimension, got strides {index.stride()}")
    batch, heads, width = index.shape
    device = index.device
    request = torch.empty(batch * heads * width, dtype=torch.int64, device=device)
    row = torch.empty_like(request)
    inverse = torch.empty((batch, heads, width), dtype=torch.int64, device=device)
    if request.numel():
        from sglang_kv.kernels.head_rows_triton import head_rows_kernel

        head_rows_kernel[(batch * heads, cdiv(width, BLOCK))](
            *kernel_args(index, counts, request, row, inverse, num_rows), HEADS=heads, BLOCK=BLOCK,
            num_warps=NUM_WARPS)
    return HeadRows(request, row, inverse)


def kernel_args(index, counts, request, row, inverse, num_rows) -> tuple:
    """The positional (non-constexpr) arguments of ``head_rows_kernel``, in its order."""
    width = index.shape[2]
    return (index, counts, request, row, inverse, width, num_rows, width.bit_length(), index.stride(0),
            index.stride(1))
