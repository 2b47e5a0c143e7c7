"""Reference sparse decode attention over per-kv-head token sets, in torch."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

if TYPE_CHECKING:
    from sglang_kv.select.base import BatchKV

# On CUDA, every SDPA backend but cuDNN's: cuDNN builds a graph for each new key length, and a
# decode step's key length grows by one token every step. In a yakv server (Qwen3-30B-A3B shape,
# 32 x 16K, H200, 2026-12-02) py-spy found 25% of the scheduler's samples inside this call, about
# 55 ms per step, against 0.2 ms per call when the length repeats (bench layer). Flash attention
# takes GQA (``enable_gqa``) and needs no plan; math is the fallback for any shape.
CUDA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def sparse_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention of one decode query over each kv head's own set of tokens.

    q: ``[num_q_heads, head_dim]``; k: ``[num_kv_heads, n, head_dim]``; v: ``[num_kv_heads, n, v_head_dim]``
    (token ``j`` of kv head ``h`` may be a different position for every head; query heads of one
    kv head are contiguous). Returns ``[num_q_heads, v_head_dim]``. A leading batch dimension on all
    three (``q [B, Hq, D]``, ``k [B, Hkv, n, D]``) attends ``B`` queries in one call -> ``[B, Hq, Dv]``.

    Uses the same SDPA call and layout as SGLang's torch_native decode, so attending over every
    token in position order reproduces the stock output bit for bit on CPU (batched too: SDPA
    computes each batch entry as its own call would). On CUDA, cuDNN's backend is left out
    (:data:`CUDA_BACKENDS`).
    """
    if k.dtype != q.dtype:
        k, v = k.to(q.dtype), v.to(q.dtype)
    batched = q.dim() == 3
    args = (q.unsqueeze(-2) if batched else q.unsqueeze(1).unsqueeze(0),  # (B, Hq, 1, D)
            k if batched else k.unsqueeze(0),  # (B, Hkv, n, D)
            v if batched else v.unsqueeze(0))
    with sdpa_kernel(CUDA_BACKENDS) if q.is_cuda else contextlib.nullcontext():
        out = scaled_dot_product_attention(*args, enable_gqa=q.shape[-2] != k.shape[-3], scale=scale)
    return out[..., 0, :] if batched else out[0, :, 0, :]


def windowed_decode_attention(
    q: torch.Tensor,
    selected: tuple[torch.Tensor, torch.Tensor],
    scale: float,
    *,
    sink: tuple[torch.Tensor, torch.Tensor] | None = None,
    local: tuple[torch.Tensor, torch.Tensor] | None = None,
    generated: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Decode attention over ``[sink | selected | local | generated]``, the layout of every offload method.

    q: ``[num_q_heads, head_dim]``; ``selected``: per-kv-head ``(k, v)``, each ``[num_kv_heads, n, head_dim]``
    (what ``Selector.gather`` returns); ``sink``/``local``/``generated``: exact ``(k, v)`` shared by all
    kv heads, each ``[n_window, num_kv_heads, head_dim]``, or None. Returns ``[num_q_heads, head_dim]``.
    Concatenates in position order and calls :func:`sparse_decode_attention`.
    """
    ks, vs = [], []
    for part, per_head in ((sink, False), (selected, True), (local, False), (generated, False)):
        if part is None:
            continue
        k, v = part
        if not per_head:
            k, v = k.transpose(0, 1), v.transpose(0, 1)  # (Hkv, n, D)
        ks.append(k.to(q.dtype))
        vs.append(v.to(q.dtype))
    return sparse_decode_attention(q, torch.cat(ks, dim=1), torch.cat(vs, dim=1), scale)


def selected_attention(q: torch.Tensor, selected: "BatchKV", members: torch.Tensor | slice, n: int,
                       win_k: torch.Tensor, win_v: torch.Tensor, win_rows: torch.Tensor, sink: int,
                       scale: float, *, fused: bool | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """The offloaded decode step's attention for a group of requests with equal windows.

    q: ``[G, Hq, D]``, the queries of requests ``members`` of ``selected`` (a device index ``[G]``, or
    ``slice(None)`` for all); each kv head attends to its ``n`` selected tokens (``selected.rows[members,
    :, :n]``, rows of ``selected.k_rows`` / ``v_rows``) and to the exact window tokens ``win_rows``
    (int64 ``[G, m]``: rows of the pool ``win_k`` / ``win_v`` ``[P, Hkv, D]``; the first ``sink`` come
    before the selected tokens in position order, the others after). Returns ``[G, Hq, Dv]``: ``out`` when
    given (in q's dtype; the fused kernel writes it in place, saving the copy a caller's ``out[...] =``
    would launch).

    ``fused`` (default: ``q.is_cuda``): one fused kernel reads the rows where they are
    (:mod:`sglang_kv.kernels.attention`; no copy into one ``[G, Hkv, n + m, D]`` tensor). Otherwise
    :func:`sparse_decode_attention` over ``[sink | selected | rest]`` concatenated in position order:
    the call that reproduces the stock server's output bit for bit on CPU. The two agree to rounding
    (the kernel sums the tokens in another order); on CPU the kernel runs only in Triton's
    interpreter (tests).
    """
    rows = selected.rows[members, :, :n]
    if q.is_cuda if fused is None else fused:
        from sglang_kv.kernels import attention as attention_kernels  # lazy: Triton decorates at import

        return attention_kernels.sparse_decode_attention_rows(q, selected.k_rows, selected.v_rows, rows, win_k,
                                                              win_v, win_rows, scale, out=out)
    k_exact = win_k[win_rows].transpose(1, 2)  # (G, Hkv, m, D)
    v_exact = win_v[win_rows].transpose(1, 2)
    k_all = torch.cat([k_exact[:, :, :sink], selected.k_rows[rows], k_exact[:, :, sink:]], dim=2)
    v_all = torch.cat([v_exact[:, :, :sink], selected.v_rows[rows], v_exact[:, :, sink:]], dim=2)
    result = sparse_decode_attention(q, k_all, v_all, scale)
    return result if out is None else out.copy_(result)
