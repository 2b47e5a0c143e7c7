"""HIGGS Triton kernels: host wrappers and their torch references.

- :func:`quantize`: ``x [..., C]`` -> packed codes + scales (as :meth:`HiggsQuantizer.quantize`).
- :func:`dequantize_gather`: rows ``index [..., k]`` of codes -> ``[..., k, C]`` bf16 / fp16 / fp32. Codes
  and scales may live in pinned host memory: the kernel reads the selected rows directly over PCIe
  (zero-copy; sort each step's indices, reads in random order are several times slower).
  :func:`dequantize_gather_batch` reads the stores of several requests in one launch.
- :func:`score`: per-head (landmark) scores without dequantizing: ``Hq`` query heads against ``rows``
  tokens x ``Hkv`` kv heads with GQA group ``Hq / Hkv`` -> float32 ``[Hq, rows]``;
  :func:`score_batch`: ``B`` requests, each with its own store, in one launch -> ``[B, Hq, max rows]``
  (:func:`score_refs`: the same on stores checked once, :func:`store_ref`).
  The rotated query meets the looked-up codewords in tensor-core dots. The default 2-bit landmark
  grid (4-D, 256 points) runs a CUDA kernel with a bank-conflict-free codeword table
  (:mod:`sglang_kv.kernels.higgs_score_cuda`), other grids the Triton kernel (``SCORE_BACKENDS``).

Batched launches find each request's store in a small int64 table of addresses (and row counts)
copied to the device per call, so the stores need not be contiguous (pinned host blocks, per-request
device tensors). Each wrapper checks its inputs and ``out=``; ``config=None`` picks the fastest of a
few block sizes (and variants) on the first CUDA call per shape class (:func:`sglang_kv.kernels._triton_utils.pick_config`), or the
first candidate under ``TRITON_INTERPRET=1``. Each ``*_ref`` function is the torch path the kernel is
tested against (:class:`sglang_kv.quant.higgs.HiggsQuantizer`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch

from sglang_kv.devices import device_ints
from sglang_kv.kernels import higgs_score_cuda
from sglang_kv.kernels._triton_utils import (
    cdiv, check_config, check_kernel_device, check_out, check_readable, common_alignment, element_type, next_pow2,
    num_sms, pick_config, same_device, size_bucket,
)
from sglang_kv.quant.higgs import HiggsCodes, HiggsQuantizer, packing_layout

OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
INDEX_DTYPES = (torch.int32, torch.int64)
MAX_SCORE_HEAD_DIM = 128


class KernelConfig(NamedTuple):
    block: int  # rows (tokens) per block
    num_warps: int
    programs_per_sm: int = 8  # persistent kernels (gather, score): programs launched per SM
    num_stages: int = 3  # software-pipelining depth of the row loop (Triton's default)


def hadamard_factors(group_size: int) -> tuple[int, int]:
    """``(A, B)`` with ``A * B = group_size`` for the in-kernel transform; ``A == 1``: one dense dot."""
    if group_size <= 128:
        return 1, group_size
    a = 2 ** ((group_size.bit_length() - 1) // 2)
    return a, group_size // a


_WORD_DTYPES = {1: torch.float16, 2: torch.int32, 4: torch.int64}  # grid dimension p -> one point's word


def grid_words(quantizer: HiggsQuantizer, device: torch.device) -> torch.Tensor:
    """The float16 grid with each point's ``p`` components packed into one word ``[num_points]``
    (float16 for p = 1, int32 for 2, int64 for 4): what the gather and score kernels look up."""
    points = quantizer.grid(device, torch.float16)  # (num_points, p), float16-exact
    return points.view(_WORD_DTYPES[quantizer.p]).view(quantizer.num_points)


def _min_block(group_size: int) -> int:
    return 16 if group_size <= 128 else 1  # a dense-dot transform needs >= 16 rows per tile


def score_columns(gqa: int) -> int:
    """``GQA_PAD`` of the score kernel: the query heads of a kv head padded to a power of two, at
    least the 16 a dot needs."""
    return max(16, next_pow2(gqa))


def dot_codewords(values: int, p: int) -> int:
    """``J_PAD`` of the gather and score kernels: the codewords spelling ``values`` values, padded to
    the 16 a tensor-core dot needs at least."""
    return max(16, values // p)


def _packing_meta(quantizer: HiggsQuantizer) -> dict:
    layout = packing_layout(quantizer.index_bits)
    return dict(P=quantizer.p, IDX_BITS=quantizer.index_bits, K=layout.indices_per_word, U=layout.bytes_per_word)


def _check_codes_2d(quantizer: HiggsQuantizer, codes: torch.Tensor, scales: torch.Tensor) -> int:
    num_channels = quantizer.check_codes(codes, scales)
    if codes.dim() != 2:
        raise ValueError(f"codes must be 2-D [rows, C * bits / 8], got shape {tuple(codes.shape)}")
    if codes.stride(-1) != 1 or scales.stride(-1) != 1:
        raise ValueError(f"codes and scales need a contiguous last dimension, got strides "
                         f"{codes.stride()} and {scales.stride()}")
    return num_channels


def _rows_view(t: torch.Tensor, num_rows: int, name: str) -> torch.Tensor:
    """``t`` as ``[num_rows, last]``: 2-D tensors keep their row stride (e.g. a slice of a larger
    buffer); others must be contiguous."""
    if t.dim() == 2:
        return t
    if not t.is_contiguous():
        raise ValueError(f"{name} must be 2-D (any row stride) or contiguous, got strides {t.stride()}")
    return t.view(num_rows, t.shape[-1])


# --- quantize --------------------------------------------------------------------------------------
def quantize_configs(group_size: int) -> list[KernelConfig]:
    block = max(_min_block(group_size), 2048 // group_size)
    return [KernelConfig(block, 4), KernelConfig(2 * block, 8)]


def quantize_ref(quantizer: HiggsQuantizer, x: torch.Tensor) -> HiggsCodes:
    """Torch path. Per row: reads ``C * x.itemsize``, writes ``C * bits / 8 + G * scale.itemsize``."""
    return quantizer.quantize(x)


def quantize(quantizer: HiggsQuantizer, x: torch.Tensor, *, out: HiggsCodes | None = None,
             config: KernelConfig | None = None) -> HiggsCodes:
    """Quantize ``x [..., C]`` (float32 / float16 / bfloat16, last dim contiguous).

    Returns codes uint8 ``[..., C * bits / 8]`` and scales ``[..., C / group_size]`` (the quantizer's
    ``scale_dtype``), equal to :meth:`HiggsQuantizer.quantize` up to float rounding (a code may differ
    where two codewords are equally near, or where a scale rounds the other way). ``out``
    (``HiggsCodes``) may be in pinned host memory and, for 2-D ``x``, be row slices of larger buffers.
    """
    num_groups = quantizer.check_input(x, "x")
    check_kernel_device(x.device, "x")
    num_channels = x.shape[-1]
    rows = x.reshape(-1, num_channels)
    if rows.numel() and rows.stride(-1) != 1:
        rows = rows.contiguous()
    num_rows, code_bytes = rows.shape[0], quantizer.code_bytes(num_channels)
    lead = x.shape[:-1]
    if out is None:
        out = HiggsCodes(torch.empty(*lead, code_bytes, dtype=torch.uint8, device=x.device),
                         torch.empty(*lead, num_groups, dtype=quantizer.scale_dtype, device=x.device))
    check_out(out.codes, (*lead, code_bytes), (torch.uint8,), x.device, "out.codes", readable=True)
    check_out(out.scales, (*lead, num_groups), (quantizer.scale_dtype,), x.device, "out.scales", readable=True)
    if num_rows == 0:
        return out
    codes2d = _rows_view(out.codes, num_rows, "out.codes")
    scales2d = _rows_view(out.scales, num_rows, "out.scales")
    from sglang_kv.kernels.higgs_triton import higgs_quantize_kernel

    n = quantizer.group_size
    a, b = hadamard_factors(n)
    grid_points = quantizer.grid(x.device, torch.float32)
    meta = _packing_meta(quantizer)

    def run(cfg: KernelConfig) -> None:
        higgs_quantize_kernel[(cdiv(num_rows, cfg.block), num_groups)](
            rows, grid_points, codes2d, scales2d,
            num_rows, rows.stride(0), codes2d.stride(0), scales2d.stride(0),
            N=n, A=a, B=b, NUM_POINTS=quantizer.num_points, BLOCK_T=cfg.block,
            num_warps=cfg.num_warps, **meta,
        )

    if config is None:
        key = ("higgs_quantize", str(x.device), n, quantizer.p, quantizer.bits, x.dtype,
               quantizer.scale_dtype, out.codes.device.type, size_bucket(num_rows))
        config = pick_config(key, quantize_configs(n), run)
    check_config(config, _min_block(n))
    run(config)
    return out


# --- dequantize-gather -----------------------------------------------------------------------------
@functools.cache
def dequantize_gather_configs(group_size: int, row_groups: int = 1) -> tuple[KernelConfig, ...]:
    """Candidates: about 1K to 8K values per block, fewer / more programs in flight, 2 warps (the
    zero-copy reads of 1024-channel rows from pinned host memory ran 22% faster with 2 warps than
    with 4 on the H200: ``scripts/gpu/gather_sweep.py``, ``results/logs/gather_sweep_h200.log``) and
    no software pipelining (``num_stages=1``: 0.179 ms against 0.196 ms with 3 stages for 128K rows
    of device memory: ``scripts/gpu/kernel_sweep.py``, ``results/kernel_sweep_h200.json``).

    Copying the rows to device buffers with the row-copy kernel first, then dequantizing them there,
    was a candidate for host stores and lost everywhere: 12.2 ms against 10.5 ms fused for the 470K
    payload rows of a 32 x 64K step on the H200 (``scripts/gpu/gather_probe.py``,
    ``results/gather_probe_h200.json``; a bulk DMA of the same bytes took 9.05 ms).

    8192 values in 4 warps: the fastest for the per-head rows of 128-channel groups (64 rows of 66
    bytes), 0.137 ms against 0.200 ms for the best of the others over all rows of 128K Llama-3.1-8B
    tokens (``scripts/gpu/kernel_sweep.py --only gather --group-sizes 128``,
    ``results/gather_sweep_h200_g128.json``).

    ``row_groups``: groups each program reads per row (2 for the K|V records of a group-major
    gather); the values per block count all of them."""
    configs = []
    for values, programs_per_sm, warps, stages in ((2048, 8, None, 1), (2048, 8, None, 3), (4096, 8, None, 3),
                                                   (8192, 4, None, 3), (8192, 4, 4, 3), (4096, 16, None, 3),
                                                   (2048, 4, None, 3), (1024, 8, 2, 3), (1024, 8, 2, 1),
                                                   (4096, 2, 2, 3)):
        block = max(_min_block(group_size), values // (row_groups * group_size))
        config = KernelConfig(block, warps or (8 if block * row_groups * group_size >= 8192 else 4), programs_per_sm,
                              stages)
        if config not in configs:
            configs.append(config)
    return tuple(configs)  # built once per shape (every gather launch asks)


def dequantize_gather_ref(quantizer: HiggsQuantizer, codes: torch.Tensor, scales: torch.Tensor,
                          index: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Torch path. Per selected row: reads ``C * bits / 8 + G * scale.itemsize`` bytes and the index,
    writes ``C * dtype.itemsize``; a negative index gives a row of zeros (the kernel reads nothing for
    it, this path reads row 0 and drops it)."""
    rows = index.to(codes.device).long()
    kept = rows.clamp_min(0)
    out = quantizer.dequantize(codes[kept].to(index.device), scales[kept].to(index.device), dtype)
    return torch.where((index < 0)[..., None], torch.zeros((), dtype=out.dtype, device=out.device), out)


def dequantize_gather_batch_ref(quantizer: HiggsQuantizer, codes: Sequence[torch.Tensor],
                                scales: Sequence[torch.Tensor], request: torch.Tensor, index: torch.Tensor,
                                dtype: torch.dtype = torch.bfloat16, *, group_major: bool = False) -> torch.Tensor:
    """Torch path of :func:`dequantize_gather_batch`: :func:`dequantize_gather_ref` per store."""
    num_groups = scales[0].shape[-1]
    out = torch.empty((*index.shape, quantizer.group_size * num_groups), dtype=dtype, device=index.device)
    for b in torch.unique(request).tolist():
        rows = request == b
        out[rows] = dequantize_gather_ref(quantizer, codes[b], scales[b], index[rows], dtype)
    if not group_major:
        return out
    return out.view(-1, num_groups, quantizer.group_size).transpose(0, 1).contiguous().view(
        num_groups, *index.shape, quantizer.group_size)


def dequantize_gather(quantizer: HiggsQuantizer, codes: torch.Tensor, scales: torch.Tensor,
                      index: torch.Tensor, *, dtype: torch.dtype = torch.bfloat16,
                      out: torch.Tensor | None = None, config: KernelConfig | None = None) -> torch.Tensor:
    """Dequantize the rows ``index`` of a quantized store.

    codes: uint8 ``[rows, C * bits / 8]``; scales: ``[rows, C / group_size]`` (both with a contiguous
    last dimension, any row stride; on ``index.device`` or in pinned host memory, read directly).
    index: int32 / int64 ``[..., k]`` on the compute device, values in ``[0, rows)`` (not checked on the
    device) or negative: a row of zeros, for which nothing is read. Returns ``out [..., k, C]`` in
    ``dtype`` (bfloat16 / float16 / float32), equal to ``HiggsQuantizer.dequantize(codes[index],
    scales[index])`` to the output's rounding (float32 output: within 1e-5 of the row RMS, the rounding
    of a float32 transform).

    A per-head store ``[rows, Hkv, D * bits / 8]`` can be gathered per (token, head) by viewing it as
    ``[rows * Hkv, D * bits / 8]`` with indices ``token * Hkv + head``.
    """
    num_channels = _check_codes_2d(quantizer, codes, scales)
    device = _check_gather_index(index, dtype)
    check_readable(codes, device, "codes")
    check_readable(scales, device, "scales")
    return _launch_gather(quantizer, num_channels, codes, scales, codes.stride(0), scales.stride(0), None, None,
                          index, dtype, out, config, codes.device.type)


class StoreRef(NamedTuple):
    """One store, checked once (:func:`store_ref`), for the batched launches: its addresses and layout.

    A request's store lives as long as the request, so a caller checks it once and passes the refs
    every step (:func:`dequantize_gather_refs`) instead of re-checking every tensor per launch.
    """

    codes: int  # data_ptr of codes [rows, C * bits / 8] (head-major: [Hkv, rows, D * bits / 8])
    scales: int  # data_ptr of scales [rows, C / group_size] (head-major: [Hkv, rows])
    layout: tuple  # _store_layout / head_store_ref: equal for every store of one launch
    on_host: bool  # in pinned host memory (one launch may mix device and host stores)


def store_ref(quantizer: HiggsQuantizer, codes: torch.Tensor, scales: torch.Tensor, device: torch.device) -> StoreRef:
    """Check one store for kernels on ``device`` (2-D, contiguous rows' last dimension, on ``device`` or
    in pinned host memory) and return its :class:`StoreRef`. The tensors must outlive every launch
    that uses the ref."""
    _check_codes_2d(quantizer, codes, scales)
    check_readable(codes, device, "codes")
    check_readable(scales, device, "scales")
    return StoreRef(codes.data_ptr(), scales.data_ptr(), _store_layout(codes, scales),
                    not same_device(codes.device, device))


def head_store_ref(quantizer: HiggsQuantizer, codes: torch.Tensor, scales: torch.Tensor,
                   device: torch.device) -> StoreRef:
    """:func:`store_ref` of a head-major store of per-head groups (``group_size == D``): codes uint8
    ``[Hkv, rows, D * bits / 8]`` and scales ``[Hkv, rows]``, both contiguous, each kv head's rows back
    to back. Scored by :func:`score_refs` (not gathered).

    Laid out by head, a score program reads its kv head's rows back to back instead of ``1 / Hkv`` of
    every row (``scripts/gpu/score_cuda_ablation.py``: 0.688 against 0.857 ms for the CUDA score of 32 x
    128K Llama-3.1-8B landmarks on the H200, 2026-12-04)."""
    head_bytes = quantizer.code_bytes(quantizer.group_size)
    if (codes.dim() != 3 or scales.dim() != 2 or scales.shape != codes.shape[:2] or codes.shape[2] != head_bytes
            or codes.dtype != torch.uint8 or scales.dtype != quantizer.scale_dtype):
        raise ValueError(f"a head-major store needs uint8 codes [Hkv, rows, {head_bytes}] and "
                         f"{quantizer.scale_dtype} scales [Hkv, rows], got {codes.dtype} {tuple(codes.shape)} and "
                         f"{scales.dtype} {tuple(scales.shape)}")
    if not (codes.is_contiguous() and scales.is_contiguous()):
        raise ValueError("a head-major store's codes and scales must be contiguous (heads rows apart)")
    check_readable(codes, device, "codes")
    check_readable(scales, device, "scales")
    layout = (codes.shape[0] * head_bytes, head_bytes, 1, scales.dtype, True)
    return StoreRef(codes.data_ptr(), scales.data_ptr(), layout, not same_device(codes.device, device))


def dequantize_gather_batch(quantizer: HiggsQuantizer, codes: Sequence[torch.Tensor],
                            scales: Sequence[torch.Tensor], request: torch.Tensor, index: torch.Tensor, *,
                            dtype: torch.dtype = torch.bfloat16, out: torch.Tensor | None = None,
                            config: KernelConfig | None = None, group_major: bool = False) -> torch.Tensor:
    """:func:`dequantize_gather` over the stores of several requests in one launch.

    codes[b], scales[b]: request ``b``'s store, as in :func:`dequantize_gather` (all with the same
    channels and row strides; device or pinned host memory). request: int32 ``[...]``, index: int32
    / int64 of the same shape, both on the compute device: output row ``i`` is row ``index[i]`` of
    store ``request[i]`` (neither is checked on the device). Returns ``out [..., C]``
    (``group_major``: ``[2, ..., group_size]``, :func:`dequantize_gather_refs`).
    """
    if len(codes) != len(scales) or not codes:
        raise ValueError(f"need one scales tensor per codes tensor (at least one), got {len(codes)} and {len(scales)}")
    refs = [store_ref(quantizer, c, sc, index.device) for c, sc in zip(codes, scales)]
    return dequantize_gather_refs(quantizer, refs, request, index, dtype=dtype, out=out, config=config,
                                  group_major=group_major)


def dequantize_gather_refs(quantizer: HiggsQuantizer, stores: Sequence[StoreRef], request: torch.Tensor,
                           index: torch.Tensor, *, dtype: torch.dtype = torch.bfloat16,
                           out: torch.Tensor | None = None, config: KernelConfig | None = None,
                           group_major: bool = False, table: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`dequantize_gather_batch` on stores checked once by :func:`store_ref` (same layout for all).

    ``group_major``: for stores of rows of two groups, such as yakv's K|V records (K's group, then
    V's): each program reads a row's two groups in one contiguous load (a zero-copy read of a 128-byte
    record costs less than two reads of 64 bytes), and the result is ``out [2, *index.shape,
    group_size]``, group ``g`` of row ``index[i]`` at ``out[g, i]``.

    ``table``: the stores' address table, int64 ``[S, 2]`` on the device holding
    :func:`gather_table_rows` of ``stores`` (not checked on the device), for a caller that keeps it
    (a captured CUDA graph reads a table it refills); None builds it here."""
    device = _check_gather_index(index, dtype)
    batched = _batched(quantizer, stores, device)
    if batched.head_major:
        raise ValueError("dequantize-gather reads token-major stores; head-major ones (head_store_ref) are for "
                         "the score")
    if request.dtype != torch.int32 or request.shape != index.shape or request.device != device:
        raise ValueError(f"request must be int32 of index's shape {tuple(index.shape)} on {device}, got "
                         f"{request.dtype} {tuple(request.shape)} on {request.device}")
    table = _address_table(table, gather_table_rows(stores), device)  # (S, 2)
    return _launch_gather(quantizer, batched.num_channels, batched.codes_type, batched.scales_type,
                          batched.codes_stride, batched.scales_stride, table, request.reshape(-1).contiguous(), index,
                          dtype, out, config, batched.codes_device, batched.codes_align, group_major)


def gather_table_rows(stores: Sequence[StoreRef]) -> list[tuple[int, int]]:
    """The gather's address table of ``stores``: ``(codes, scales)`` per store."""
    return [(st.codes, st.scales) for st in stores]


def score_table_rows(stores: Sequence[StoreRef], rows: Sequence[int]) -> list[tuple[int, int, int]]:
    """The score's address table of ``stores`` with ``rows[b]`` rows each: ``(codes, scales, rows)`` per
    request."""
    return [(st.codes, st.scales, n) for st, n in zip(stores, rows)]


def launch_key(stores: Sequence[StoreRef]) -> tuple:
    """What a batched launch over ``stores`` compiles for besides their number and addresses (its
    tables hold those): their layout, whether any is in host memory, and their codes' alignment. Two
    store lists with equal keys and lengths run the same kernels, so a captured launch over one serves
    the other with its tables refilled."""
    return stores[0].layout, any(st.on_host for st in stores), common_alignment(st.codes for st in stores)


def _address_table(table: torch.Tensor | None, rows: list[tuple], device: torch.device) -> torch.Tensor:
    """``table`` checked against the shape of ``rows`` (the table it stands for), or ``rows`` copied to
    ``device`` when None."""
    if table is None:
        return device_ints(rows, device)
    shape = (len(rows), len(rows[0]))
    if table.dtype != torch.int64 or tuple(table.shape) != shape or table.device != device:
        raise ValueError(f"table must be int64 {list(shape)} on {device}, got {table.dtype} {tuple(table.shape)} "
                         f"on {table.device}")
    return table


def _store_layout(codes: torch.Tensor, scales: torch.Tensor) -> tuple:
    """What every store of one batched launch must share: code bytes per row (token), the row strides of
    codes and scales, the scale dtype, and whether the store is head-major (:func:`head_store_ref`)."""
    return codes.shape[1], codes.stride(0), scales.stride(0), scales.dtype, False


class _Batched(NamedTuple):
    """What a batched launch derives from its checked stores (:func:`_batched`)."""

    num_channels: int
    codes_stride: int
    scales_stride: int
    codes_type: torch.Tensor  # empty: only the element types (the address table holds the stores)
    scales_type: torch.Tensor
    codes_device: str  # "cpu" when any store is in host memory (tuning key: host reads dominate)
    codes_align: int  # the alignment of every codes address (the kernels' hint)
    head_major: bool  # head-major stores (head_store_ref)


def _batched(quantizer: HiggsQuantizer, stores: Sequence[StoreRef], device: torch.device) -> _Batched:
    """Check that the stores of one batched launch share a layout (and that there is one) and derive
    the launch arguments they share."""
    if not stores:
        raise ValueError("need at least one store")
    layout = stores[0].layout
    if any(st.layout != layout for st in stores):
        raise ValueError("every store must have the same row strides, channels, scale dtype and layout "
                         "(token- or head-major)")
    _, on_host, codes_align = launch_key(stores)
    code_bytes, codes_stride, scales_stride, scale_dtype, head_major = layout
    return _Batched(code_bytes // quantizer.group_code_bytes * quantizer.group_size, codes_stride, scales_stride,
                    element_type(torch.uint8, device), element_type(scale_dtype, device),
                    "cpu" if on_host else device.type, codes_align, head_major)


def _check_gather_index(index: torch.Tensor, dtype: torch.dtype) -> torch.device:
    if index.dtype not in INDEX_DTYPES:
        raise ValueError(f"index must be int32 or int64, got {index.dtype}")
    if dtype not in OUT_DTYPES:
        raise ValueError(f"dtype must be one of {OUT_DTYPES}, got {dtype}")
    check_kernel_device(index.device, "index")
    return index.device


def _launch_gather(quantizer, num_channels, codes, scales, codes_stride, scales_stride, table, request, index,
                   dtype, out, config, codes_device: str, codes_align: int = 1, group_major: bool = False) -> torch.Tensor:
    """Dequantize-gather launch into ``out [*index.shape, C]`` (``group_major``: ``[2, *index.shape, N]``
    from rows of two groups, read whole): one store (``codes``, ``scales``; ``table`` None) or, with
    ``table``, the stores it lists (``codes`` / ``scales`` then only give the element types; every
    store has the row strides ``codes_stride``, ``scales_stride``); ``codes_device``: "cpu" when any
    store's codes are in host memory (the tuning key); ``codes_align``: the alignment of every codes
    address in ``table``."""
    device = index.device
    n = quantizer.group_size
    num_groups = num_channels // n
    row_groups = num_groups if group_major else 1
    if group_major and num_groups != 2:
        raise ValueError(f"group_major gathers rows of 2 groups (K|V records), got {num_groups} of {n} channels")
    shape = (num_groups, *index.shape, n) if group_major else (*index.shape, num_channels)
    if out is None:
        out = torch.empty(shape, dtype=dtype, device=device)
    check_out(out, shape, (dtype,), device, "out")
    if not out.is_contiguous():
        raise ValueError(f"out must be contiguous, got strides {out.stride()}")
    flat_index = index.reshape(-1).contiguous()
    num_out = flat_index.numel()
    if num_out == 0:
        return out
    out_stride, group_stride = (n, num_out * n) if group_major else (num_channels, n)
    from sglang_kv.kernels.higgs_triton import higgs_dequantize_gather_kernel

    a, b = hadamard_factors(n)
    words = grid_words(quantizer, device)
    meta = _packing_meta(quantizer)
    sms = num_sms(device)
    has_table = table is not None

    def run(cfg: KernelConfig) -> None:
        launches = num_groups // row_groups  # programs per block of rows
        programs = min(cdiv(num_out, cfg.block), max(1, cfg.programs_per_sm * sms // launches))
        higgs_dequantize_gather_kernel[(programs, launches)](
            codes, scales, flat_index, table if has_table else flat_index, request if has_table else flat_index,
            words, out, num_out, codes_stride, scales_stride, out_stride, group_stride,
            N=n, A=a, B=b, NUM_POINTS=quantizer.num_points, J_PAD=dot_codewords(b, quantizer.p),
            HAS_TABLE=has_table, CODES_ALIGN=codes_align, BLOCK_T=cfg.block, ROW_GROUPS=row_groups,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages, **meta,
        )

    if config is None:
        key = ("higgs_dequantize_gather", str(device), n, num_groups, quantizer.p, quantizer.bits,
               quantizer.scale_dtype, dtype, codes_device, has_table, codes_align, row_groups,
               size_bucket(num_out))
        config = pick_config(key, dequantize_gather_configs(n, row_groups), run)
    check_config(config, _min_block(n))
    run(config)
    return out


# --- score -----------------------------------------------------------------------------------------
# ``config`` of the score wrappers: None runs the CUDA kernel where it serves the shape
# (:func:`sglang_kv.kernels.higgs_score_cuda.supports`, on a CUDA device, aligned codes), else the Triton
# kernel's timed pick; "cuda" / "triton" force one (an unsupported "cuda" raises); a KernelConfig runs
# the Triton kernel with it.
SCORE_BACKENDS = ("cuda", "triton")
# Triton's candidates, fastest on the H200 at 32 x 128K landmarks (``scripts/gpu/kernel_sweep.py``): 128 rows,
# 4 warps. 64 rows in 4 warps were dropped on 2026-12-04: on the H200 they returned NaN scores for the 2-D
# grids (p = 2: ``--kv-offload-landmark-bits 3 | 4``) and once hit an illegal address (a timed pick could
# choose them).
SCORE_CONFIGS = [KernelConfig(128, 4, 4), KernelConfig(128, 4, 8), KernelConfig(256, 4, 4)]
# Grids whose indices pack into 3-byte words (3- and 6-bit indices: p=1 / p=2 at 3 bits) gave wrong scores
# (p=2) and an illegal address (p=1) on the H200 with some of SCORE_CONFIGS at head dim 128, GQA 2
# (2026-12-04, results/logs/gpu_tests_score_every_config_h200_b7a3e37.log); 16- and 32-row blocks passed
# for both grids there at other shapes (test_score_matches_torch), so they run those; at the failing shape
# they passed too (1689b08, results/logs/gpu_tests_score_every_config_h200_1689b08.log). Under the
# interpreter every config gives the right scores at that shape: the compiled code, not the logic, fails.
SCORE_CONFIGS_3BYTE_WORDS = [KernelConfig(16, 4, 8), KernelConfig(32, 4, 1)]


def score_configs(quantizer: HiggsQuantizer) -> list[KernelConfig]:
    """The Triton score's candidates for ``quantizer``'s grid (see the comments above)."""
    three_byte = packing_layout(quantizer.index_bits).bytes_per_word == 3
    return SCORE_CONFIGS_3BYTE_WORDS if three_byte else SCORE_CONFIGS


def score_ref(quantizer: HiggsQuantizer, q: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Torch path of :func:`score`. Per row: reads ``Hkv * (D * bits / 8 + scale.itemsize)`` bytes,
    writes ``4 * Hq``."""
    num_q_heads, head_dim = q.shape
    num_rows, num_kv_heads = scales.shape
    codes_h = codes.view(num_rows, num_kv_heads, codes.shape[1] // num_kv_heads).transpose(0, 1)  # (Hkv, n, .)
    q_h = q.reshape(num_kv_heads, num_q_heads // num_kv_heads, head_dim)  # (Hkv, g, D)
    return quantizer.score(q_h, codes_h, scales.transpose(0, 1)[..., None]).reshape(num_q_heads, num_rows)


def score_batch_ref(quantizer: HiggsQuantizer, q: torch.Tensor, codes: Sequence[torch.Tensor],
                    scales: Sequence[torch.Tensor]) -> torch.Tensor:
    """Torch path of :func:`score_batch` (columns past a request's rows are zero)."""
    width = max(c.shape[0] for c in codes)
    out = torch.zeros(q.shape[0], q.shape[1], width, dtype=torch.float32, device=q.device)
    for b, (c, sc) in enumerate(zip(codes, scales)):
        out[b, :, :c.shape[0]] = score_ref(quantizer, q[b], c.to(q.device), sc.to(q.device))
    return out


def score(quantizer: HiggsQuantizer, q: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor, *,
          out: torch.Tensor | None = None, config: KernelConfig | str | None = None) -> torch.Tensor:
    """Per-head scores ``q . dequantize(key)`` of per-head quantized keys of one request, without
    dequantizing.

    quantizer: per-head groups, ``group_size == D`` (head_dim, 16..128).
    q: ``[Hq, D]`` (float32 / float16 / bfloat16, unrotated).
    codes: uint8 ``[rows, Hkv * D * bits / 8]``; scales: ``[rows, Hkv]`` (on q's device or pinned).
    Query head ``h`` reads kv head ``h // (Hq / Hkv)``. Returns float32 ``out [Hq, rows]`` (``out``
    may be a view with any row stride). No ``1 / sqrt(D)`` is applied. ``config``: the kernel
    (``SCORE_BACKENDS`` above).
    """
    if q.dim() != 2:
        raise ValueError(f"q must be [Hq, D], got shape {tuple(q.shape)}; use score_batch for [B, Hq, D]")
    num_channels = _check_codes_2d(quantizer, codes, scales)
    num_kv_heads = _check_score_query(quantizer, q, num_channels)
    check_readable(codes, q.device, "codes")
    check_readable(scales, q.device, "scales")
    num_rows = codes.shape[0]
    if out is None:
        out = torch.empty(q.shape[0], num_rows, dtype=torch.float32, device=q.device)
    check_out(out, (q.shape[0], num_rows), (torch.float32,), q.device, "out")
    _launch_score(quantizer, q[None], codes, scales, codes.stride(0), scales.stride(0), codes.device.type,
                  num_kv_heads, None, common_alignment([codes.data_ptr()]), num_rows, out[None], config, False)
    return out


def score_batch(quantizer: HiggsQuantizer, q: torch.Tensor, codes: Sequence[torch.Tensor],
                scales: Sequence[torch.Tensor], *, out: torch.Tensor | None = None,
                config: KernelConfig | str | None = None) -> torch.Tensor:
    """:func:`score` for ``B`` requests in one launch, each with its own store.

    q: ``[B, Hq, D]``; codes[b], scales[b]: request ``b``'s ``[rows_b, Hkv * D * bits / 8]`` and
    ``[rows_b, Hkv]`` (same row strides for all). Returns float32 ``out [B, Hq, max_b rows_b]`` (last
    dimension contiguous, any other strides); ``out[b, :, rows_b:]`` is left untouched.
    """
    if len(codes) != len(scales):
        raise ValueError(f"need one scales tensor per codes tensor, got {len(codes)} and {len(scales)}")
    refs = [store_ref(quantizer, c, sc, q.device) for c, sc in zip(codes, scales)]
    return score_refs(quantizer, q, refs, [c.shape[0] for c in codes], out=out, config=config)


def score_refs(quantizer: HiggsQuantizer, q: torch.Tensor, stores: Sequence[StoreRef], rows: Sequence[int], *,
               out: torch.Tensor | None = None, config: KernelConfig | str | None = None,
               table: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`score_batch` on stores checked once by :func:`store_ref`, or by :func:`head_store_ref`
    for head-major stores (same layout for all); ``rows[b]``: the rows of request ``b``'s store.
    ``table``: int64 ``[B, 3]`` holding :func:`score_table_rows` (as in :func:`dequantize_gather_refs`)."""
    if q.dim() != 3 or len(stores) != q.shape[0] or len(rows) != q.shape[0]:
        raise ValueError(f"q must be [B, Hq, D] with one store and row count per request, got q "
                         f"{tuple(q.shape)}, {len(stores)} stores, {len(rows)} row counts")
    batched = _batched(quantizer, stores, q.device)
    num_kv_heads = _check_score_query(quantizer, q, batched.num_channels)
    width = max(rows)
    shape = (q.shape[0], q.shape[1], width)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32, device=q.device)
    check_out(out, shape, (torch.float32,), q.device, "out")
    table = _address_table(table, score_table_rows(stores, rows), q.device)  # (B, 3)
    _launch_score(quantizer, q, batched.codes_type, batched.scales_type, batched.codes_stride, batched.scales_stride,
                  batched.codes_device, num_kv_heads, table, batched.codes_align, width, out, config,
                  batched.head_major)
    return out


def _check_score_query(quantizer: HiggsQuantizer, q: torch.Tensor, num_channels: int) -> int:
    """Checks of the query against per-head stores of ``num_channels``; returns the number of kv heads."""
    quantizer.check_input(q, "q")
    head_dim = quantizer.group_size
    if head_dim > MAX_SCORE_HEAD_DIM:
        raise ValueError(f"score kernel: group_size (head_dim) must be <= {MAX_SCORE_HEAD_DIM}, got {head_dim}")
    if q.shape[-1] != head_dim:
        raise ValueError(f"q last dimension must equal group_size={head_dim} (per-head groups), "
                         f"got {q.shape[-1]}")
    num_kv_heads = num_channels // head_dim
    if q.shape[-2] % num_kv_heads:
        raise ValueError(f"number of query heads {q.shape[-2]} is not a multiple of kv heads {num_kv_heads}")
    check_kernel_device(q.device, "q")
    return num_kv_heads


def _launch_score(quantizer, q3, codes, scales, codes_stride, scales_stride, codes_device, num_kv_heads, table,
                  codes_align, num_rows, out, config, head_major) -> None:
    """Score kernel launch for ``q3 [B, Hq, D]`` into ``out [B, Hq, >= rows]``: one store (``codes``,
    ``scales``) or, with ``table``, the stores it lists (``codes`` / ``scales`` then only give the
    element types); ``codes_align``: the alignment of every codes address in ``table``;
    ``head_major``: the stores are laid out by head (:func:`head_store_ref`)."""
    if num_rows == 0:
        return
    if out.stride(-1) != 1:
        raise ValueError(f"out: last dimension must be contiguous, got strides {tuple(out.stride())}")
    if q3.stride(-1) != 1:
        q3 = q3.contiguous()
    num_requests, num_q_heads, head_dim = q3.shape
    gqa = num_q_heads // num_kv_heads
    device = q3.device
    words = grid_words(quantizer, device)
    if _score_on_cuda(quantizer, gqa, q3.dtype, device, codes_align, codes_stride, config):
        shape = higgs_score_cuda.ScoreShape(head_dim, gqa, table is not None, q3.dtype, quantizer.scale_dtype,
                                            head_major)
        higgs_score_cuda.launch(shape, q3, codes, scales, table, words, out, num_rows, num_kv_heads, codes_stride,
                                scales_stride, num_sms(device))
        return
    if config == "triton":
        config = None
    from sglang_kv.kernels.higgs_triton import higgs_score_kernel

    meta = _packing_meta(quantizer)
    sms = num_sms(device)
    has_table = table is not None
    table_arg = table if has_table else out

    def run(cfg: KernelConfig) -> None:
        programs = max(1, min(cdiv(num_rows, cfg.block),
                              cdiv(cfg.programs_per_sm * sms, num_kv_heads * num_requests)))
        higgs_score_kernel[(programs, num_kv_heads, num_requests)](
            q3, codes, scales, table_arg, words, out,
            num_rows, q3.stride(0), q3.stride(1), codes_stride, scales_stride, out.stride(0), out.stride(1),
            N=head_dim, GQA=gqa, GQA_PAD=score_columns(gqa), NUM_POINTS=quantizer.num_points,
            J_PAD=dot_codewords(head_dim, quantizer.p), HAS_TABLE=has_table, CODES_ALIGN=codes_align,
            HEAD_MAJOR=head_major, BLOCK_N=cfg.block, num_warps=cfg.num_warps, num_stages=cfg.num_stages, **meta)

    if config is None:
        key = ("higgs_score", str(device), head_dim, quantizer.p, quantizer.bits, quantizer.scale_dtype,
               gqa, num_kv_heads, num_requests, q3.dtype, codes_device, has_table, codes_align, head_major,
               size_bucket(num_rows))
        config = pick_config(key, score_configs(quantizer), run)
    check_config(config, 16)
    run(config)


def _score_on_cuda(quantizer, gqa, q_dtype, device, codes_align, codes_stride, config) -> bool:
    """Whether a score launch runs the CUDA kernel (``config``: see ``SCORE_BACKENDS``)."""
    if isinstance(config, str) and config not in SCORE_BACKENDS:
        raise ValueError(f"score config: a KernelConfig, None or one of {SCORE_BACKENDS}, got {config!r}")
    if config not in (None, "cuda"):
        return False
    need = higgs_score_cuda.code_alignment(quantizer.group_size)
    served = (device.type == "cuda" and higgs_score_cuda.supports(quantizer, gqa, q_dtype)
              and codes_align % need == 0 and codes_stride % need == 0)
    if config == "cuda" and not served:
        raise ValueError(f"the CUDA score kernel does not serve this launch (device {device}, p={quantizer.p}, "
                         f"{quantizer.index_bits}-bit indices, group {quantizer.group_size}, GQA {gqa}, codes "
                         f"aligned to {codes_align} bytes with row stride {codes_stride}; it needs {need})")
    return served
