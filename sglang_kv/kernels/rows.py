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

import torch

from sglang_kv.devices import device_ints
from sglang_kv.kernels._triton_utils import check_kernel_device, check_readable, num_sms, pick_config
from sglang_kv.kernels.higgs import INDEX_DTYPES, KernelConfig, _cdiv, _check_config, _size_bucket

_UNITS = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}
COPY_CONFIGS = [KernelConfig(16, 4, 8), KernelConfig(64, 4, 8), KernelConfig(32, 2, 16), KernelConfig(128, 8, 4)]


def copy_rows_batch_ref(src: Sequence[torch.Tensor], dst: Sequence[torch.Tensor], request: torch.Tensor,
                        src_index: torch.Tensor, dst_index: torch.Tensor) -> None:
    """Torch path of :func:`copy_rows_batch` (one indexed copy per request)."""
    for b in torch.unique(request).tolist():
        rows = (request == b) & (dst_index >= 0)
        values = src[b][src_index[rows].to(src[b].device)]
        dst[b][dst_index[rows].to(dst[b].device)] = values.to(dst[b].device)


def copy_rows_batch(src: Sequence[torch.Tensor], dst: Sequence[torch.Tensor], request: torch.Tensor,
                    src_index: torch.Tensor, dst_index: torch.Tensor, *, config: KernelConfig | None = None) -> None:
    """Copy row ``src_index[i]`` of ``src[request[i]]`` to row ``dst_index[i]`` of ``dst[request[i]]``.

    src[b], dst[b]: 2-D ``[rows_b, W]`` of one dtype, last dimension contiguous, every ``src`` with
    the same row stride and every ``dst`` with the same row stride; ``src`` on the compute device
    or in pinned host memory, ``dst`` on the compute device. request: int32 ``[n]``; src_index,
    dst_index: int32 / int64 ``[n]``, all on the compute device (values not checked there); rows
    with ``dst_index[i] < 0`` are skipped. Destination rows must be distinct. Per copied row: reads
    and writes ``W * itemsize`` bytes.
    """
    if len(src) != len(dst) or not src:
        raise ValueError(f"need one destination per source (at least one), got {len(src)} and {len(dst)}")
    device = request.device
    check_kernel_device(device, "request")
    n = request.numel()
    if request.dtype != torch.int32 or request.dim() != 1:
        raise ValueError(f"request must be 1-D int32, got {request.dtype} {tuple(request.shape)}")
    for name, index in (("src_index", src_index), ("dst_index", dst_index)):
        if index.dtype not in INDEX_DTYPES or index.shape != (n,) or index.device != device:
            raise ValueError(f"{name} must be int32 / int64 [{n}] on {device}, got {index.dtype} "
                             f"{tuple(index.shape)} on {index.device}")
    first = src[0]
    for s, d in zip(src, dst):
        if s.dim() != 2 or d.dim() != 2 or s.shape[1] != first.shape[1] or d.shape[1] != first.shape[1]:
            raise ValueError(f"stores must be 2-D with {first.shape[1]} columns, got {tuple(s.shape)} and {tuple(d.shape)}")
        if s.dtype != first.dtype or d.dtype != first.dtype:
            raise ValueError(f"stores must share one dtype, got {s.dtype} and {d.dtype} (first {first.dtype})")
        if s.stride(-1) != 1 or d.stride(-1) != 1 or s.stride(0) != first.stride(0) or d.stride(0) != dst[0].stride(0):
            raise ValueError("stores need a contiguous last dimension and equal row strides within src and within dst")
        check_readable(s, device, "src")
        if d.device != device:
            raise ValueError(f"dst must be on {device}, got {d.device}")
    if n == 0:
        return
    item = first.element_size()
    row_bytes = first.shape[1] * item
    strides = (first.stride(0) * item, dst[0].stride(0) * item)
    addresses = [t.data_ptr() for pair in zip(src, dst) for t in pair]
    unit = next(u for u in _UNITS if all(v % u == 0 for v in (row_bytes, *strides, *addresses)))
    row = row_bytes // unit
    table = device_ints([(s.data_ptr(), d.data_ptr()) for s, d in zip(src, dst)], device)  # (B, 2)
    elem = torch.empty(0, dtype=_UNITS[unit], device=device)
    from sglang_kv.kernels.rows_triton import copy_rows_kernel

    sms = num_sms(device)

    def run(cfg: KernelConfig) -> None:
        programs = max(1, min(_cdiv(n, cfg.block), cfg.programs_per_sm * sms))
        copy_rows_kernel[(programs,)](
            elem, table, request, src_index, dst_index, n, strides[0] // unit, strides[1] // unit,
            ROW=row, ROW_PAD=1 << (row - 1).bit_length(), BLOCK_T=cfg.block, num_warps=cfg.num_warps)

    if config is None:
        key = ("copy_rows", str(device), row, unit, first.device.type, _size_bucket(n))
        config = pick_config(key, COPY_CONFIGS, run)
    _check_config(config, 1)
    run(config)
