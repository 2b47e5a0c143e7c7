"""ShadowKV: low-rank pre-RoPE key factors and chunk-mean landmarks on GPU, values on host.

Follows ``shared/reference/methods.md`` (ShadowKV, ICML 2025, its accuracy class):

* keys are un-rotated to pre-RoPE (``rope.inverse_rope``; the engine only has post-RoPE keys), all kv
  heads concatenated (``[L, Hkv * D]``), and factored at rank ``r = min(shadowkv_rank, L, Hkv * D)``:
  ``A = X V_r`` (``[L, r]``, i.e. ``U S``) and ``B = V_r^T`` (``[r, Hkv * D]``), both in the keys'
  dtype. ``V_r`` are the top-``r`` eigenvectors of ``X^T X`` (the right singular vectors of ``X``;
  the Gram route is cheaper than a full SVD for ``L >> Hkv * D`` and gives the same subspace).
* landmarks: post-RoPE keys in chunks of ``shadowkv_chunk`` tokens, landmark = chunk mean; a short
  last chunk (``L`` not a multiple of the chunk) gets the mean of its own tokens.
* outliers: per kv head, the ``shadowkv_outliers`` full chunks whose keys are least similar to their
  landmark (lowest min cosine) stay exact on the GPU, are always attended, and are removed from the
  candidates (``LayerSummary.fixed``).
* select: softmax of ``scale * q . landmark`` over the non-outlier chunks per query head, max over the
  GQA group, chunks in score order, tokens cut at ``k`` per kv head, plus the outlier tokens.
* gather: keys rebuilt as ``A[rows] B[:, head]`` then RoPE at the rows' positions; values copied from
  the host payload (outliers: both exact from the GPU). Serving (``gather_batch``) reads every
  request's values in one zero-copy row copy from pinned host memory, as yakv reads its payload, and
  counts the bytes without a device sync; the keys are rebuilt per request. Before 2026-12-03 each
  request's values made a host round trip (indices to the host, a CPU gather, a copy back: three
  syncs per request and layer), which the H200 runs at 9cca07c measured (README).

Not modelled: ShadowKV's reuse of the chunks selected at the previous step (``step_bytes`` and
``load_bytes`` count every selected value as copied).
"""

from __future__ import annotations

import math

import torch

from sglang_kv.devices import device_ints
from sglang_kv.select.base import (EXACT_BYTES, BatchKV, Footprint, LayerSummary, Selector, StepBytes,
                                   blocks_to_tokens, group_max_softmax, knob, take, use_kernels)
from sglang_kv.select.rope import apply_rope, inverse_rope

_INDEX_BYTES = 4  # outlier chunk ids are stored as int32


class ShadowkvSelector(Selector):
    name = "shadowkv"
    needs_rope = True

    def __init__(self, shape, config=None, rope=None):
        super().__init__(shape, config, rope)
        self.rank = knob(config, "shadowkv_rank", self.name)
        self.chunk = knob(config, "shadowkv_chunk", self.name)
        self.outliers = knob(config, "shadowkv_outliers", self.name)

    # ---- sizes ----------------------------------------------------------------------------
    def rank_for(self, num_tokens: int) -> int:
        return min(self.rank, num_tokens, self.shape.kv_width)

    def outliers_for(self, num_tokens: int) -> int:
        """Outlier chunks per kv head: never more than the full chunks."""
        return min(self.outliers, num_tokens // self.chunk)

    # ---- build / select / gather ----------------------------------------------------------
    def _build(self, keys, values, positions) -> LayerSummary:
        num_tokens, hkv, d = keys.shape
        c = self.chunk
        num_chunks = math.ceil(num_tokens / c)
        kf = keys.float()
        dev = keys.device

        # landmarks: chunk means of post-RoPE keys (the short last chunk averages its own tokens)
        sums = torch.zeros(num_chunks, hkv, d, device=dev).index_add_(0, torch.arange(num_tokens, device=dev) // c, kf)
        counts = torch.full((num_chunks,), float(c), device=dev)
        counts[-1] = num_tokens - (num_chunks - 1) * c
        landmarks = sums / counts[:, None, None]  # (nc, Hkv, D)

        # outliers: full chunks with the lowest min cosine between a key and its landmark, per head
        num_out = self.outliers_for(num_tokens)
        num_full = num_tokens // c
        fixed = None
        device = {}
        if num_out:
            full = kf[: num_full * c].view(num_full, c, hkv, d)
            cos = torch.nn.functional.cosine_similarity(full, landmarks[:num_full, None], dim=-1)  # (nf, c, Hkv)
            worst = cos.amin(1).T  # (Hkv, nf)
            out_chunks = torch.sort(torch.topk(worst, num_out, dim=-1, largest=False).indices, dim=-1).values
            fixed = (out_chunks[:, :, None] * c + torch.arange(c, device=dev)).reshape(hkv, -1)  # (Hkv, num_out * c)
            heads = torch.arange(hkv, device=dev)[:, None]
            device["outlier_chunks"] = out_chunks.to(torch.int32)
            device["outlier_keys"] = keys[fixed, heads].contiguous()  # (Hkv, n_fixed, D)
            device["outlier_values"] = values[fixed, heads].contiguous()

        # rank-r factors of the pre-RoPE keys over all kv heads
        x = inverse_rope(kf, positions, self.rope).reshape(num_tokens, hkv * d)  # (L, C)
        r = self.rank_for(num_tokens)
        gram = (x.T @ x).double()
        _, vecs = torch.linalg.eigh(gram)  # ascending eigenvalues
        basis = vecs[:, -r:].flip(-1).float()  # (C, r), top-r right singular vectors
        # At full rank the factorization is lossless: keep it in float32 so that keys rebuild to
        # the exact keys (budget >= context then reproduces exact attention, as for every selector).
        factor_dtype = torch.float32 if r == hkv * d else keys.dtype
        device["factor_a"] = (x @ basis).to(factor_dtype)  # (L, r) = U S
        device["factor_b"] = basis.T.contiguous().to(factor_dtype)  # (r, C) = V^T
        device["landmarks"] = landmarks.to(keys.dtype)
        return LayerSummary(num_tokens=num_tokens, positions=positions, device=device,
                            payload={"values": values.contiguous()}, fixed=fixed)

    def select(self, q, summary, k, scale):
        self._check_q(q)
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        landmarks = summary.device["landmarks"].float()  # (nc, Hkv, D)
        logits = torch.einsum("hgd,chd->hgc", q.float().view(hkv, -1, d), landmarks) * scale  # (Hkv, G, nc)
        outlier = torch.zeros(hkv, landmarks.shape[0], dtype=torch.bool, device=landmarks.device)
        if summary.fixed is not None:
            outlier.scatter_(1, summary.device["outlier_chunks"].long(), True)
            logits = logits.masked_fill(outlier[:, None, :], float("-inf"))
        scores = group_max_softmax(logits.reshape(-1, logits.shape[-1]), hkv)  # (Hkv, nc)
        scores = scores.nan_to_num(nan=-1.0).masked_fill(outlier, -1.0)  # outliers rank last
        return blocks_to_tokens(scores, self.chunk, summary.num_tokens, k, summary.fixed)

    def gather(self, summary, index, dtype=torch.float32):
        heads = torch.arange(self.shape.num_kv_heads, device=index.device)[:, None]
        outliers = None if summary.fixed is None else _lookup(summary.fixed, index)
        return self._rebuild(summary, index, take(summary.payload["values"], index, heads), outliers, dtype)

    def _rebuild(self, summary, index, values, outliers, dtype):
        """Keys rebuilt for ``index [Hkv, n]`` (``A[rows] B[:, head]``, then RoPE) and the values
        ``values [Hkv, n, D]`` read for it, the outlier tokens' keys and values taken exact from the
        GPU instead (``outliers``: :func:`_lookup` of ``index`` in ``summary.fixed``, None without
        outliers) -> ``(k, v)`` in ``dtype``."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        a, b = summary.device["factor_a"].float(), summary.device["factor_b"].float()
        n = index.shape[1]
        k_pre = torch.einsum("hnr,rhd->hnd", a[index], b.view(-1, hkv, d))  # (Hkv, n, D)
        pos = summary.positions[index].reshape(-1)
        k = apply_rope(k_pre.reshape(hkv * n, 1, d), pos, self.rope).view(hkv, n, d)
        v = values.float()
        if outliers is not None:
            heads = torch.arange(hkv, device=index.device)[:, None]
            slot, is_fixed = outliers
            k = torch.where(is_fixed[..., None], summary.device["outlier_keys"][heads, slot].float(), k)
            v = torch.where(is_fixed[..., None], summary.device["outlier_values"][heads, slot].float(), v)
        return k.to(dtype), v.to(dtype)

    def gather_batch(self, summaries, selection, dtype=torch.float32):
        """``gather`` for every request, the values of all of them read in one row copy
        (:func:`~sglang_kv.kernels.rows.copy_rows_batch`: zero-copy from pinned host memory on CUDA, as
        yakv's payload; its torch reference elsewhere) instead of a host round trip per request, and
        without a device sync: the bytes read are counted from the selection sizes, as every outlier
        token is selected once per kv head and is not read from the host."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        index = selection.index  # (B, Hkv, W)
        batch, _, width = index.shape
        device = index.device
        stores = [s.payload["values"].view(-1, d) for s in summaries]  # (L * Hkv, D): row = token * Hkv + head
        values = torch.zeros((batch, hkv, width, d), dtype=stores[0].dtype, device=device)
        flat = values.view(-1, d)
        column = torch.arange(width, device=device)
        rows = index * hkv + torch.arange(hkv, device=device)[:, None]  # (B, Hkv, W) rows of each store
        # padding columns and outlier tokens (exact on the GPU) are not read: a negative destination
        # skips the row
        read = (column < device_ints(selection.counts, device)[:, None, None]).expand(batch, hkv, width).clone()
        outliers = [None if s.fixed is None else _lookup(s.fixed, index[b].contiguous())
                    for b, s in enumerate(summaries)]
        for b, found in enumerate(outliers):
            if found is not None:
                read[b] &= ~found[1]
        dst = torch.where(read, torch.arange(flat.shape[0], device=device).view(batch, hkv, width), -1)
        request = torch.arange(batch, device=device, dtype=torch.int32)[:, None, None].expand_as(index)
        from sglang_kv.kernels import rows as row_kernels  # lazy, as the other selectors' kernels

        copy = row_kernels.copy_rows_batch if use_kernels(index) else row_kernels.copy_rows_batch_ref
        copy(stores, [flat] * batch, request.reshape(-1), rows.reshape(-1), dst.reshape(-1))
        k = torch.zeros((batch, hkv, width, d), dtype=dtype, device=device)
        v = torch.zeros_like(k)
        loaded = 0
        for b, (summary, n, found) in enumerate(zip(summaries, selection.counts, outliers)):
            found = None if found is None else tuple(t[:, :n] for t in found)
            k[b, :, :n], v[b, :, :n] = self._rebuild(summary, index[b, :, :n], values[b, :, :n], found, dtype)
            fixed = 0 if summary.fixed is None else summary.fixed.numel()
            loaded += (hkv * n - fixed) * d * stores[b].element_size()
        return BatchKV.of_dense(k, v, loaded)

    # ---- accounting -----------------------------------------------------------------------
    def footprint(self, num_tokens):
        width = self.shape.kv_width
        r = self.rank_for(num_tokens)
        num_out = self.outliers_for(num_tokens)
        gpu = (math.ceil(num_tokens / self.chunk) * width * EXACT_BYTES  # landmarks
               + (num_tokens + width) * r * (4 if r == width else EXACT_BYTES)  # A and B (float32 at full rank)
               + num_out * self.chunk * width * 2 * EXACT_BYTES  # exact outlier keys and values
               + self.shape.num_kv_heads * num_out * _INDEX_BYTES)
        return Footprint(gpu_bytes=gpu, host_bytes=num_tokens * width * EXACT_BYTES)

    def step_bytes(self, num_tokens, k):
        hkv, d, width = self.shape.num_kv_heads, self.shape.head_dim, self.shape.kv_width
        r = self.rank_for(num_tokens)
        n_fixed = self.outliers_for(num_tokens) * self.chunk
        n = min(k, num_tokens - n_fixed)
        pcie = hkv * n * d * EXACT_BYTES
        hbm = (math.ceil(num_tokens / self.chunk) * width * EXACT_BYTES  # all landmarks
               + hkv * n * r * EXACT_BYTES + r * width * EXACT_BYTES  # rows of A, all of B
               + n_fixed * width * 2 * EXACT_BYTES)  # outlier keys and values
        return StepBytes(pcie_bytes=pcie, hbm_bytes=hbm)

    def load_bytes(self, summary, index):
        num = index.numel()
        if summary.fixed is not None:
            num -= int(_lookup(summary.fixed, index)[1].sum())
        return num * self.shape.head_dim * summary.payload["values"].element_size()


def _lookup(fixed: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot of each ``index`` entry in its row of ``fixed`` (both ``[rows, *]``, fixed ascending) and
    whether it is there."""
    slot = torch.searchsorted(fixed, index).clamp_max(fixed.shape[1] - 1)
    return slot, fixed.gather(1, slot) == index
