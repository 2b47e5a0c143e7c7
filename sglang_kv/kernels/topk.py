"""The selection's top-k in one launch.

- :func:`topk_sorted_batch`: per row of scores, the columns of its ``counts[row]`` largest scores in
  ascending column order, padded to ``width`` columns with the row's first selected column (the
  :class:`~sglang_kv.select.base.BatchSelection` layout). It replaces ``torch.topk`` and the sort
  of its indices: on the H200 those two queue about 20 kernels and memsets per call, 0.6 ms of host
  time (``results/logs/profile_layer_ops_h200_qwen3_30b_a3b_32x32k_head_a5f4b45.log``), once per
  layer and decode step.
- :func:`topk_sorted_batch_ref`: its torch path (the reference the kernel is tested against).

Ties: among scores equal to the ``count``-th largest, the lowest columns are taken (``torch.topk``
leaves that choice open, so a selection can differ from it at ties only). Scores are compared as
float32 bit patterns in float order: ``-0.0`` ranks below ``0.0``; scores must not be NaN.

``config=None`` picks the fastest of ``TOPK_CONFIGS`` (block size, warps and key bits per radix pass)
on the first CUDA call per shape class (``pick_config``), the first under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sglang_kv.kernels._triton_utils import check_config, check_kernel_device, check_out, pick_config, size_bucket


class TopkConfig(NamedTuple):
    block: int  # scores per loop iteration (a power of two >= 16)
    num_warps: int
    digit_bits: int = 8  # key bits counted per radix pass, 5-8 (the GPU's tl.histogram needs >= 32 bins)


# measured on the H200 (results/topk_bench_h200.json): 8192 scores in 16 warps with 5-bit digits won
# at 128-256 rows of 16K-64K columns. 16384-score blocks in 16 warps at 5 and 6 bits (the largest
# that compile for sm_90 without spills) lost at every shape on 2026-12-03 (0.430 vs 0.405 ms at
# 256 x 64K, 0.075 vs 0.055 ms at 128 x 16K; results/topk_bench_h200_16384.json) and are not candidates.
TOPK_CONFIGS = [TopkConfig(1024, 4), TopkConfig(2048, 8)] + [
    TopkConfig(block, 16, bits) for block in (4096, 8192) for bits in (5, 6, 8)]


def topk_sorted_batch_ref(scores: torch.Tensor, counts: torch.Tensor, width: int) -> torch.Tensor:
    """Torch path of :func:`topk_sorted_batch` (int64 ``[R, width]``)."""
    best_first = torch.sort(scores.float(), dim=-1, descending=True, stable=True).indices[:, :width]
    taken = torch.arange(width, device=scores.device) < counts.to(scores.device).long()[:, None]
    ordered = torch.sort(torch.where(taken, best_first, scores.shape[-1]), dim=-1).values
    return torch.where(taken, ordered, ordered[:, :1])


def topk_sorted_batch(scores: torch.Tensor, counts: torch.Tensor, width: int, *, out: torch.Tensor | None = None,
                      config: TopkConfig | None = None) -> torch.Tensor:
    """Top-k columns of each row, in column order.

    scores: float32 ``[R, N]`` (last dimension contiguous). counts: int32 ``[R]`` on the scores'
    device, each in ``[1, min(width, N)]`` (not checked on the device). Returns int64
    ``out [R, width]``: row ``r`` holds the columns of its ``counts[r]`` largest scores in ascending
    order, then its first column repeated; equal to :func:`topk_sorted_batch_ref` whatever the
    ``config``.
    """
    if scores.dim() != 2 or scores.dtype != torch.float32 or scores.stride(-1) != 1:
        raise ValueError(f"scores must be float32 [R, N] with a contiguous last dimension, got "
                         f"{scores.dtype} {tuple(scores.shape)} strides {scores.stride()}")
    rows, num_cols = scores.shape
    if not 1 <= width <= num_cols:
        raise ValueError(f"width must be in [1, {num_cols}] (the number of scores per row), got {width}")
    if counts.dtype != torch.int32 or counts.shape != (rows,) or counts.device != scores.device:
        raise ValueError(f"counts must be int32 [{rows}] on {scores.device}, got {counts.dtype} "
                         f"{tuple(counts.shape)} on {counts.device}")
    if config is not None:
        check_topk_config(config)
    check_kernel_device(scores.device, "scores")
    if out is None:
        out = torch.empty((rows, width), dtype=torch.int64, device=scores.device)
    check_out(out, (rows, width), (torch.int64,), scores.device, "out")
    if rows == 0:
        return out
    from sglang_kv.kernels.topk_triton import topk_sorted_kernel

    def run(cfg: TopkConfig) -> None:
        topk_sorted_kernel[(rows,)](scores, counts, out, num_cols, width, scores.stride(0), out.stride(0),
                                    BLOCK=cfg.block, DIGIT_BITS=cfg.digit_bits, num_warps=cfg.num_warps)

    if config is None:
        key = ("topk_sorted", str(scores.device), rows, size_bucket(num_cols), size_bucket(width))
        config = pick_config(key, TOPK_CONFIGS, run)
    run(config)
    return out


def check_topk_config(config: TopkConfig) -> None:
    """Raise ``ValueError`` unless the kernel can run ``config``."""
    check_config(config, 16)
    if not 5 <= config.digit_bits <= 8:
        raise ValueError(f"config: need digit_bits in [5, 8], got {config}")
