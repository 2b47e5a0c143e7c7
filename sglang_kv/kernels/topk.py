"""The selection's top-k in one launch (two for the two-stage configs, ``TopkConfig.chunks`` > 1).

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
    chunks: int = 1  # 1: one program per row; 2-8: the two-stage top-k over this many chunks per row (below)


# measured on the H200 (results/topk_bench_h200.json): 8192 scores in 16 warps with 5-bit digits won
# at 128-256 rows of 16K-64K columns. 16384-score blocks in 16 warps at 5 and 6 bits (the largest
# that compile for sm_90 without spills) lost at every shape on 2026-12-03 (0.430 vs 0.405 ms at
# 256 x 64K, 0.075 vs 0.055 ms at 128 x 16K; results/topk_bench_h200_16384.json) and are not candidates.
TOPK_CONFIGS = [TopkConfig(1024, 4), TopkConfig(2048, 8)] + [
    TopkConfig(block, 16, bits) for block in (4096, 8192) for bits in (5, 6, 8)] + [
    TopkConfig(block, 16, 5, chunks) for chunks in (2, 4, 8) for block in (4096, 8192)]
# Two-stage top-k (``chunks`` > 1; not yet timed on a GPU, 2026-12-05): stage 1 runs a program per chunk of
# a row (``rows * chunks`` programs instead of ``rows``, each over ``1 / chunks`` of the row) and keeps each
# chunk's top ``min(count, chunk)`` columns with their scores; stage 2 selects the row's top ``count`` among
# those ``chunks * min(width, chunk)`` candidates. Exact, ties included: a column among the row's top
# ``count`` (by score, then lowest column) is among its chunk's, and the candidates keep column order, so
# stage 2's lowest positions at a tie are the lowest columns. The single-program kernel is bound by its one
# program per row (the early exit's 0-7%, e3a928b); whether two stages win is ``pick_config``'s timed choice.
MAX_CHUNKS = 8
CHUNK_ALIGN = 16  # a chunk's columns: a multiple of it (aligned row loads), so rows a multiple of 16 * chunks


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
        check_topk_config(config, num_cols)
    check_kernel_device(scores.device, "scores")
    if out is None:
        out = torch.empty((rows, width), dtype=torch.int64, device=scores.device)
    check_out(out, (rows, width), (torch.int64,), scores.device, "out")
    if rows == 0:
        return out
    from sglang_kv.kernels.topk_triton import topk_sorted_kernel

    def run(cfg: TopkConfig) -> None:
        launch = dict(BLOCK=cfg.block, DIGIT_BITS=cfg.digit_bits, num_warps=cfg.num_warps)
        if cfg.chunks == 1:
            topk_sorted_kernel[(rows,)](scores, counts, out, scores, out, num_cols, width, scores.stride(0),
                                        out.stride(0), 0, **launch)
            return
        check_topk_config(cfg, num_cols)  # a chunk count that does not divide the row would drop columns
        chunk = num_cols // cfg.chunks
        chunk_width = min(width, chunk)
        # stage 1: each chunk's top min(count, chunk) row columns and their scores (padding: -inf)
        columns = torch.empty((rows * cfg.chunks, chunk_width), dtype=torch.int64, device=scores.device)
        values = torch.empty((rows * cfg.chunks, chunk_width), dtype=torch.float32, device=scores.device)
        topk_sorted_kernel[(rows * cfg.chunks,)](scores, counts, columns, values, columns, chunk, chunk_width,
                                                 scores.stride(0), chunk_width, 0, CHUNKS=cfg.chunks,
                                                 WRITE_VALUES=True, **launch)
        # stage 2: the row's top count among its chunks' candidates, as the columns they stand for
        candidates = cfg.chunks * chunk_width
        topk_sorted_kernel[(rows,)](values, counts, out, values, columns, candidates, width, candidates,
                                    out.stride(0), candidates, MAP_COLUMNS=True, **launch)

    if config is None:
        candidates = topk_configs(num_cols)
        # the most chunks that apply is in the key: a two-stage pick must not serve rows it cannot split
        key = ("topk_sorted", str(scores.device), rows, size_bucket(num_cols), size_bucket(width),
               max(cfg.chunks for cfg in candidates))
        config = pick_config(key, candidates, run)
    run(config)
    return out


def topk_configs(num_cols: int) -> list[TopkConfig]:
    """The candidates of ``TOPK_CONFIGS`` that can run on rows of ``num_cols`` scores (two stages need
    chunks of a multiple of ``CHUNK_ALIGN`` columns)."""
    return [cfg for cfg in TOPK_CONFIGS if _splits(num_cols, cfg.chunks)]


def _splits(num_cols: int, chunks: int) -> bool:
    """Whether a row of ``num_cols`` scores splits into ``chunks`` chunks of ``CHUNK_ALIGN``-multiples."""
    return chunks == 1 or num_cols % (chunks * CHUNK_ALIGN) == 0


def check_topk_config(config: TopkConfig, num_cols: int) -> None:
    """Raise ``ValueError`` unless the kernel can run ``config`` on rows of ``num_cols`` scores."""
    check_config(config, 16)
    if not 5 <= config.digit_bits <= 8:
        raise ValueError(f"config: need digit_bits in [5, 8], got {config}")
    if not 1 <= config.chunks <= MAX_CHUNKS:
        raise ValueError(f"config: need chunks in [1, {MAX_CHUNKS}], got {config}")
    if not _splits(num_cols, config.chunks):
        raise ValueError(f"config: {config.chunks} chunks of a row of {num_cols} scores need the row to be a "
                         f"multiple of {config.chunks * CHUNK_ALIGN} columns")
