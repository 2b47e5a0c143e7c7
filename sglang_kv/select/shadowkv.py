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
  the host payload (outliers: both exact from the GPU).
* serving (``select_batch``, ``gather_batch``): every request of the batch at once, a fixed number of
  launches per layer whatever the batch: the chunk scores over the stacked landmarks, the values in
  one zero-copy row copy from pinned host memory (as yakv reads its payload), the keys in one rebuild;
  no device sync. ``select`` and ``gather`` are their readable per-request references. Before
  2026-12-03 each request's values made a host round trip (three syncs per request and layer; the
  H200 runs at 9cca07c), and until later that day the selection and the key rebuild ran per request
  (the 8 x 16K run at 6612c4b, host-bound: README).

Not modelled: ShadowKV's reuse of the chunks selected at the previous step (``step_bytes`` and
``load_bytes`` count every selected value as copied).
"""

from __future__ import annotations

import math

import torch

from sglang_kv.devices import device_ints
from sglang_kv.select.base import (EXACT_BYTES, BatchKV, Footprint, LayerSummary, Selector, StepBytes,
                                   blocks_to_tokens, blocks_to_tokens_batch, group_max_softmax, knob, pad_columns,
                                   take, use_kernels)
from sglang_kv.select.rope import apply_rope, inverse_rope

_INDEX_BYTES = 4  # outlier chunk ids are stored as int32
_NO_TOKEN = torch.iinfo(torch.int64).max  # pads a request's fixed tokens: sorts last, matches no index


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

    def select_batch(self, q, summaries, ks, scale):
        """``select`` for every request at once: one chunk score over the requests' landmarks stacked
        and padded to the longest (padding chunks masked like outliers, then ranked below them), one
        softmax, one :func:`blocks_to_tokens_batch`. Equal to ``select`` per request up to ties (the
        padded products and sums may round differently)."""
        self._check_batch(q, summaries, ks)
        batch, hkv, d = q.shape[0], self.shape.num_kv_heads, self.shape.head_dim
        device = q.device
        landmarks = torch.nn.utils.rnn.pad_sequence([s.device["landmarks"] for s in summaries],
                                                    batch_first=True).float()  # (B, nc, Hkv, D)
        num_chunks = landmarks.shape[1]
        logits = torch.einsum("bhgd,bchd->bhgc", q.float().view(batch, hkv, -1, d), landmarks) * scale
        chunk = torch.arange(num_chunks, device=device)
        padding = chunk >= device_ints([s.device["landmarks"].shape[0] for s in summaries], device)[:, None]
        outlier = self._outlier_chunks(summaries, num_chunks, device)  # (B, Hkv, nc)
        logits = logits.masked_fill((outlier | padding[:, None])[:, :, None], float("-inf"))
        scores = group_max_softmax(logits.reshape(-1, num_chunks), batch * hkv).view(batch, hkv, num_chunks)
        scores = scores.nan_to_num(nan=-1.0).masked_fill(outlier, -1.0).masked_fill(padding[:, None], -2.0)
        return blocks_to_tokens_batch(scores, self.chunk, [s.num_tokens for s in summaries], ks,
                                      [s.fixed for s in summaries])

    def _outlier_chunks(self, summaries, num_chunks: int, device) -> torch.Tensor:
        """bool ``[B, Hkv, num_chunks]``: each request's outlier chunks."""
        hkv = self.shape.num_kv_heads
        ids = [torch.empty((hkv, 0), dtype=torch.int32, device=device) if s.fixed is None else
               s.device["outlier_chunks"] for s in summaries]
        width = max(i.shape[1] for i in ids)
        # requests with fewer outliers point their spare slots at an extra column, cut off below
        padded = torch.stack([pad_columns(i, width, num_chunks) for i in ids])
        mask = torch.zeros((len(summaries), hkv, num_chunks + 1), dtype=torch.bool, device=device)
        return mask.scatter_(2, padded.long(), True)[..., :num_chunks]

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
        """``gather`` for every request at once: the values of all of them read in one row copy
        (:func:`~sglang_kv.kernels.rows.copy_rows_batch`: zero-copy from pinned host memory on CUDA, as
        yakv's payload; its torch reference elsewhere) instead of a host round trip per request, the
        selected rows of every request's ``A`` and their positions in two more, then one rebuild of all
        keys (one product with the stacked ``B`` factors, one RoPE, one outlier lookup), without a
        device sync. The bytes read are counted from the selection sizes, as every outlier token is
        selected once per kv head and is not read from the host. Equal to ``gather`` per request up to
        float32 rounding of the batched product. Requests whose factors differ in rank or dtype (a
        prompt shorter than the rank is factored at full rank in float32) rebuild one at a time."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        index = selection.index  # (B, Hkv, W)
        batch, _, width = index.shape
        device = index.device
        column = torch.arange(width, device=device)
        selected = (column < device_ints(selection.counts, device)[:, None, None]).expand(batch, hkv, width)
        fixed = self._fixed_lookup(summaries, index)  # (slot, is_fixed), each (B, Hkv, W)
        # padding columns and outlier tokens (exact on the GPU) are not read: a negative destination
        # skips the row
        read = selected if fixed is None else selected & ~fixed[1]
        stores = [s.payload["values"].view(-1, d) for s in summaries]  # (L * Hkv, D): row = token * Hkv + head
        values = torch.zeros((batch * hkv * width, d), dtype=stores[0].dtype, device=device)
        rows = index * hkv + torch.arange(hkv, device=device)[:, None]  # (B, Hkv, W) rows of each store
        slots = torch.arange(batch * hkv * width, device=device)
        _copy_rows(stores, values, index, rows, torch.where(read.reshape(-1), slots, -1))
        values = values.view(batch, hkv, width, d)
        factors = [s.device["factor_a"] for s in summaries]
        if any(a.shape[1] != factors[0].shape[1] or a.dtype != factors[0].dtype for a in factors):
            k = torch.stack([self._rebuild(s, index[b], values[b], None, torch.float32)[0]
                             for b, s in enumerate(summaries)])
        else:
            a_rows = factors[0].new_empty((batch * hkv * width, factors[0].shape[1]))  # (B * Hkv * W, r)
            _copy_rows(factors, a_rows, index, index, slots)
            positions = torch.empty((batch * hkv * width, 1), dtype=torch.int64, device=device)
            _copy_rows([s.positions.reshape(-1, 1) for s in summaries], positions, index, index, slots)
            b_factors = torch.stack([s.device["factor_b"] for s in summaries]).float()  # (B, r, C)
            k_pre = torch.einsum("bhnr,brhd->bhnd", a_rows.float().view(batch, hkv, width, -1),
                                 b_factors.view(batch, -1, hkv, d))  # (B, Hkv, W, D)
            k = apply_rope(k_pre.reshape(-1, 1, d), positions.view(-1), self.rope).view(batch, hkv, width, d)
        v = values.float()
        if fixed is not None:
            slot, is_fixed = fixed
            keys, vals = self._stacked_outliers(summaries)  # (B, Hkv, F, D)
            take_slot = slot[..., None].expand(-1, -1, -1, d)
            k = torch.where(is_fixed[..., None], keys.gather(2, take_slot).float(), k)
            v = torch.where(is_fixed[..., None], vals.gather(2, take_slot).float(), v)
        padding = ~selected[..., None]  # padding columns are zeros, as ``Selector.gather_batch``
        k, v = k.masked_fill(padding, 0.0), v.masked_fill(padding, 0.0)
        loaded = sum((hkv * n - (0 if s.fixed is None else s.fixed.numel())) * d * stores[b].element_size()
                     for b, (s, n) in enumerate(zip(summaries, selection.counts)))
        return BatchKV.of_dense(k.to(dtype), v.to(dtype), loaded)

    def _fixed_lookup(self, summaries, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """:func:`_lookup` of ``index [B, Hkv, W]`` in every request's fixed tokens (stacked, padded
        with an id no token has); None when no request has outliers."""
        if all(s.fixed is None for s in summaries):
            return None
        hkv = self.shape.num_kv_heads
        width = max(0 if s.fixed is None else s.fixed.shape[1] for s in summaries)
        empty = index.new_empty((hkv, 0))
        fixed = torch.stack([pad_columns(empty if s.fixed is None else s.fixed, width, _NO_TOKEN) for s in summaries])
        return _lookup(fixed, index.contiguous())

    def _stacked_outliers(self, summaries) -> tuple[torch.Tensor, torch.Tensor]:
        """Every request's exact outlier keys and values ``[B, Hkv, F, D]`` (zeros past its own)."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        width = max(0 if s.fixed is None else s.fixed.shape[1] for s in summaries)
        like = next(s.device["outlier_keys"] for s in summaries if s.fixed is not None)

        def stacked(name: str) -> torch.Tensor:
            return torch.stack([like.new_zeros((hkv, width, d)) if s.fixed is None else
                                torch.nn.functional.pad(s.device[name], (0, 0, 0, width - s.fixed.shape[1]))
                                for s in summaries])

        return stacked("outlier_keys"), stacked("outlier_values")

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
    """Slot of each ``index`` entry in its row of ``fixed`` (both ``[..., rows, *]``, fixed ascending)
    and whether it is there."""
    slot = torch.searchsorted(fixed, index).clamp_max(fixed.shape[-1] - 1)
    return slot, fixed.gather(-1, slot) == index


def _copy_rows(stores: list[torch.Tensor], out: torch.Tensor, index: torch.Tensor, rows: torch.Tensor,
               slots: torch.Tensor) -> None:
    """``out[slots[i]] = stores[b][rows[b].flatten()[i]]`` for request ``b`` of each entry of ``index
    [B, Hkv, W]`` (``rows`` shaped as ``index``; ``slots`` flat, negative: skipped), in one
    :func:`~sglang_kv.kernels.rows.copy_rows_batch` launch on CUDA (its torch reference elsewhere)."""
    from sglang_kv.kernels import rows as row_kernels  # lazy, as the other selectors' kernels

    request = torch.arange(index.shape[0], device=index.device, dtype=torch.int32)[:, None, None].expand_as(index)
    copy = row_kernels.copy_rows_batch if use_kernels(index) else row_kernels.copy_rows_batch_ref
    copy(stores, [out] * len(stores), request.reshape(-1), rows.reshape(-1), slots)
