"""Row copies between the stores of several requests in one launch: the fills of the device cache of
selected rows (:mod:`sglang_kv.select.row_cache`), read zero-copy from pinned host memory.

- :func:`copy_rows_batch`: ``dst[request[i]][dst_index[i]] = src[request[i]][src_index[i]]`` for every
  ``i`` with ``dst_index[i] >= 0`` (a negative destination skips the row, so a caller can pass a
  fixed-size plan without compacting it on the host).
- :func:`copy_rows_batch_ref`: its torch path (the reference the kernel is tested against, and
  what CPU serving runs).

Rows are copied as raw bytes in the widest unit (8, 4, 2 or 1 bytes) that divides the row size,
the row strides and every store's address. ``config=None`` picks the faster of a few block sizes
on the first CUDA call per shape class (``pick_config``), the first under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from sglang_kv.devices import device_ints
from sglang_kv.kernels._triton_utils import (
    cdiv, check_config, check_kernel_device, check_readable, element_type, next_pow2, num_sms, pick_config,
    size_bucket,
)
from sglang_kv.kernels.higgs import INDEX_DTYPES, KernelConfig

_UNITS = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}
COPY_CONFIGS = [KernelConfig(16, 4, 8), KernelConfig(64, 4, 8), KernelConfig(32, 2, 16), KernelConfig(128, 8, 4)]


def copy_rows_batch_ref(src: Sequence[torch.Tensor], dst: Sequence[torch.Tensor], request: torch.Tensor,
                        src_index: torch.Tensor, dst_index: torch.Tensor) -> None:
    """Torch path of :func:`copy_rows_batch` (one indexed copy per request)."""
    for b in torch.unique(request).tolist():
        rows = (request == b) & (dst_index >= 0)
        values = src[b][src_index[rows].to(src[b].device)]
        dst[b][dst_index[rows].to(dst[b].device)] = values.to(dst[b].device)


class CopyPair(NamedTuple):
    """One (source, destination) store pair checked once (:func:`copy_pair`): addresses and layout."""

    src: int  # data_ptr
    dst: int
    layout: tuple  # (row bytes, source row stride bytes, destination row stride bytes, source device type)
    # (the fills of one launch all read host rows, so the source device is part of the layout)


def copy_pair(src: torch.Tensor, dst: torch.Tensor, device: torch.device) -> CopyPair:
    """Check a store pair for :func:`copy_rows_pairs` on ``device``: both 2-D with the same columns and
    dtype and a contiguous last dimension, ``src`` on ``device`` or in pinned host memory, ``dst`` on
    ``device``. The tensors must outlive every launch that uses the pair."""
    if src.dim() != 2 or dst.dim() != 2 or src.shape[1] != dst.shape[1]:
        raise ValueError(f"stores must be 2-D with the same columns, got {tuple(src.shape)} and {tuple(dst.shape)}")
    if src.dtype != dst.dtype:
        raise ValueError(f"stores must share one dtype, got {src.dtype} and {dst.dtype}")
    if src.stride(-1) != 1 or dst.stride(-1) != 1:
        raise ValueError(f"stores need a contiguous last dimension, got strides {src.stride()} and {dst.stride()}")
    check_readable(src, device, "src")
    if dst.device != device:
        raise ValueError(f"dst must be on {device}, got {dst.device}")
    item = src.element_size()
    return CopyPair(src.data_ptr(), dst.data_ptr(),
                    (src.shape[1] * item, src.stride(0) * item, dst.stride(0) * item, src.device.type))


def copy_rows_batch(src: Sequence[torch.Tensor], dst: Sequence[torch.Tensor], request: torch.Tensor,
                    src_index: torch.Tensor, dst_index: torch.Tensor, *, config: KernelConfig | None = None) -> None:
    """Copy row ``src_index[i]`` of ``src[request[i]]`` to row ``dst_index[i]`` of ``dst[request[i]]``.

    src[b], dst[b]: 2-D ``[rows_b, W]`` of one dtype, last dimension contiguous, every ``src`` with
    the same row stride and every ``dst`` with the same row stride; ``src`` on the compute device
    or in pinned host memory, ``dst`` on the compute device. request: int32 ``[n]``; src_index,
    dst_index: int32 / int64 ``[n]`` (any stride), all on the compute device (values not checked there); rows
    with ``dst_index[i] < 0`` are skipped. Destination rows must be distinct. Per copied row: reads
    and writes ``W * itemsize`` bytes.
    """
    if len(src) != len(dst) or not src:
        raise ValueError(f"need one destination per source (at least one), got {len(src)} and {len(dst)}")
    if any(s.dtype != src[0].dtype for s in src):
        raise ValueError(f"stores must share one dtype, got {sorted({str(s.dtype) for s in src})}")
    copy_rows_pairs([copy_pair(s, d, request.device) for s, d in zip(src, dst)], request, src_index, dst_index,
                    config=config)


def copy_rows_pairs(pairs: Sequence[CopyPair], request: torch.Tensor, src_index: torch.Tensor,
                    dst_index: torch.Tensor, *, config: KernelConfig | None = None) -> None:
    """:func:`copy_rows_batch` on store pairs checked once by :func:`copy_pair` (same layout for all)."""
    device = request.device
    check_kernel_device(device, "request")
    n = request.numel()
    if request.dtype != torch.int32 or request.dim() != 1:
        raise ValueError(f"request must be 1-D int32, got {request.dtype} {tuple(request.shape)}")
    for name, index in (("src_index", src_index), ("dst_index", dst_index)):
        if index.dtype not in INDEX_DTYPES or index.shape != (n,) or index.device != device:
            raise ValueError(f"{name} must be int32 / int64 [{n}] on {device}, got {index.dtype} "
                             f"{tuple(index.shape)} on {index.device}")
    if not pairs or any(p.layout != pairs[0].layout for p in pairs):
        raise ValueError("need at least one store pair, all with the same row bytes and row strides")
    if n == 0:
        return
    # the kernel reads the index tensors densely: an expanded one (stride 0, e.g. every row of one
    # request) would be read past its storage
    request, src_index, dst_index = request.contiguous(), src_index.contiguous(), dst_index.contiguous()
    row_bytes, src_stride, dst_stride, src_device = pairs[0].layout
    addresses = [a for p in pairs for a in (p.src, p.dst)]
    unit = next(u for u in _UNITS if all(v % u == 0 for v in (row_bytes, src_stride, dst_stride, *addresses)))
    row = row_bytes // unit
    table = device_ints([(p.src, p.dst) for p in pairs], device)  # (B, 2)
    elem = element_type(_UNITS[unit], device)
    from sglang_kv.kernels.rows_triton import copy_rows_kernel

    sms = num_sms(device)

    def run(cfg: KernelConfig) -> None:
        programs = max(1, min(cdiv(n, cfg.block), cfg.programs_per_sm * sms))
        copy_rows_kernel[(programs,)](
            elem, table, request, src_index, dst_index, n, src_stride // unit, dst_stride // unit,
            ROW=row, ROW_PAD=next_pow2(row), BLOCK_T=cfg.block, num_warps=cfg.num_warps)

    if config is None:
        key = ("copy_rows", str(device), row, unit, src_device, size_bucket(n))
        config = pick_config(key, COPY_CONFIGS, run)
    check_config(config, 1)
    run(config)
