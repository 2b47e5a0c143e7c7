"""YAKV: per-token HIGGS landmarks on GPU, scored without dequantizing; HIGGS K/V payload on host.

Follows the accuracy path of ``shared/reference/methods.md`` (YAKV, Bocharnikov et al., 2026):

* landmarks: every candidate's post-RoPE key, per kv head, quantized with HIGGS at
  ``landmark_bits`` (2: the 4-dimensional 256-point grid "EDEN4-256"), Hadamard group = one head,
  one float16 L2-norm scale per (token, kv head). Scored as ``q . landmark`` without dequantizing
  (``HiggsQuantizer.score``: the query is rotated once per head, codewords are looked up).
* optional residual landmarks (``landmark_residual = m >= 2``): the mean of each ``m`` consecutive
  keys is quantized at ``landmark_bits`` and each key's residual from that (exact) mean at
  ``landmark_bits - 1``; landmark = q(mean) + q(residual), scored as the sum of the two scores.
* select: softmax over all candidates per query head, max over the GQA group, top-k per kv head.
* payload: keys and values at ``kv_bits`` (4: HIGGS on the 2-dimensional 256-point grid
  "EDEN2-256"; 8: float8 e4m3 cast; 16: exact). At 4 bits only the codes go to the host, as K|V
  records (each payload row's K codes, then its V codes: 128 B per (token, kv head) at Llama's
  shape), read whole by one zero-copy load; the float16 scales (one per HIGGS group) stay on the GPU
  next to the landmarks. On the H200 plain row copies of a 32 x 64K step's head rows took 1.31 ms
  as records against 1.54 ms as separate K and V codes and 2.28 ms with the scales in pinned memory
  too (``scripts/gpu/pcie_layout_probe.py``, ``results/pcie_layout_probe_h200.json``); the layer step
  took 3.79 against 3.95 ms (``results/layer_llama31_8b_h200_32x64k_head_{records,base}.json``).
  HIGGS groups (``payload_group``):

  - ``"head"`` (default): one group per kv head, one scale per (token, head); each head copies only
    its own rows.
  - ``"token"``: one Hadamard group over the whole token (all kv heads), one scale per token, as
    the paper. Needs ``num_kv_heads * head_dim`` to be a power of two (1024 for Llama-3.1-8B, 512 for
    Qwen3-30B-A3B). A selected (token, head) then costs the whole token's row over PCIe: a step
    copies the union of the kv heads' selections (``load_bytes`` measures it).

  Head groups are the default since 2026-12-01: on synthetic 32K layers both give the same
  selections and output error within 0.001 (``results/fidelity_*_32k_payload_groups.json``), while
  a 32-request decode step on the H200 copies 2.6-4x fewer bytes and took 2.26 vs 3.83 ms
  (Qwen3-30B-A3B, 32 x 32K) and 6.6 vs 13.9 ms (Llama-3.1-8B, 32 x 64K).

  Chosen by ``--kv-offload-payload-group`` (``OffloadConfig.payload_group``) or the
  ``payload_group`` option, which overrides it.

* keys in the payload are post-RoPE by default (what the engine has; ``key_rope="post"``). With
  ``key_rope="pre"`` they are un-rotated before quantizing and RoPE is re-applied at their positions
  in ``gather`` (the paper's choice; needs ``rope``). Landmarks are always post-RoPE.

Per token and layer (Llama-3.1-8B, 8 kv heads x 128, defaults): GPU 8 x (32 + 2) = 272 B of
landmarks and 2 x 8 x 2 = 32 B of payload scales; host 2 x 8 x 64 = 1024 B of codes; PCIe per step
``8 k`` head rows of 2 x 64 B (token groups: GPU 272 + 4 B, host 2 x 512 = 1024 B, between ``k`` and
``8 k`` token rows of 1024 B per step).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from sglang_kv.config import PAYLOAD_GROUPS
from sglang_kv.devices import device_ints
from sglang_kv.kernels.higgs import OUT_DTYPES
from sglang_kv.kernels import head_rows
from sglang_kv.kernels import topk as topk_kernels
from sglang_kv.quant.higgs import HiggsQuantizer
from sglang_kv.select.base import (BatchKV, BatchSelection, Footprint, LayerSummary, Selector, StepBytes,
                                   group_max_softmax, knob, take, topk_sorted, use_kernels)
from sglang_kv.select import row_cache
from sglang_kv.select.rope import apply_rope, inverse_rope

# bits per value -> (grid dimension p, bits): 1 and 2 bits on 4-D grids, 3 and 4 bits on 2-D grids
HIGGS_GRIDS = {1: (4, 1), 2: (4, 2), 3: (2, 3), 4: (2, 4)}
KEY_ROPE = ("post", "pre")
_SCALE_DTYPE = torch.float16
# columns: the batched selection's logits width is a multiple of it: aligned rows, which the top-k may split
# into up to MAX_CHUNKS chunks of aligned rows (kernels.topk)
LOGITS_ALIGN = topk_kernels.MAX_CHUNKS * topk_kernels.CHUNK_ALIGN


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class SelectPlan(NamedTuple):
    """What one layer's batched selection launches read besides the query, planned on the host
    (:meth:`YakvSelector.select_plan`)."""

    lengths: list[int]  # candidates per request
    counts: list[int]  # tokens each kv head of a request selects
    stores: list  # the requests' head-major landmark stores (StoreRef)
    table: torch.Tensor  # int64 [B, 3]: the score's address table of ``stores``
    lengths_dev: torch.Tensor  # int32 [B]: ``lengths``
    row_counts: torch.Tensor  # int32 [B * Hkv]: ``counts`` per (request, kv head)


class GatherPlan(NamedTuple):
    """What one layer's gather of per-head payload rows reads besides the selection
    (:meth:`YakvSelector.gather_plan`)."""

    stores: list  # the requests' host K|V record stores: StoreRef (kernels) or (codes, scales) (torch)
    table: torch.Tensor | None  # int64 [B, 2]: the gather's address table of ``stores`` (None: torch)
    counts: torch.Tensor  # int32 [B]: the selection's counts
    num_rows: int  # payload rows of the longest request's store


class StepPlan(NamedTuple):
    """One layer's selection and gather of a decode batch as a fixed launch sequence
    (:meth:`YakvSelector.step_plan`, replayed by :class:`sglang_kv.graphs.SelectionGraphs`)."""

    select: SelectPlan
    gather: GatherPlan

    def signature(self) -> tuple:
        """What the launches compile and size for besides the query and the two tables' contents: the
        layers of one batch share it, so a launch sequence captured for one layer serves the others
        with their tables copied in."""
        from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

        return (tuple(self.select.lengths), tuple(self.select.counts),  # the gather's num_rows follows the lengths
                higgs_kernels.launch_key(self.select.stores), higgs_kernels.launch_key(self.gather.stores))


def _dequantize_gather_records(kernels: bool, quantizer, stores, request, index, dtype,
                               table: torch.Tensor | None = None) -> torch.Tensor:
    """K and V of the K|V records ``index`` of stores ``request``, ``[2, n, group]`` in ``dtype``: the
    Triton kernel on checked refs (one contiguous read per record; ``table``: their address table, as
    ``dequantize_gather_refs`` takes it), or its torch reference on ``(codes, scales)`` pairs."""
    from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

    if kernels:
        return higgs_kernels.dequantize_gather_refs(quantizer, stores, request, index, dtype=dtype, group_major=True,
                                                    table=table)
    return higgs_kernels.dequantize_gather_batch_ref(quantizer, [c for c, _ in stores], [sc for _, sc in stores],
                                                     request, index, dtype=dtype, group_major=True)


def _copy_rows(kernels: bool, pairs, request, src_index, dst_index) -> None:
    """Row copies into the device caches: the Triton kernel on checked pairs, or its torch reference on
    ``(src, dst)`` tensors."""
    from sglang_kv.kernels import rows  # lazy: Triton decorates at import

    if kernels:
        rows.copy_rows_pairs(pairs, request, src_index, dst_index)
    else:
        rows.copy_rows_batch_ref([s for s, _ in pairs], [d for _, d in pairs], request, src_index, dst_index)


def _row_keys(index: torch.Tensor, num_rows: int, rows_per_token: int) -> torch.Tensor:
    """The gather's key of each (request, head, column) of ``index [B, Hkv, n]``: request * num_rows +
    its payload row (the token with whole-token rows, ``rows_per_token == 1``; else token * Hkv +
    head), as base + rows_per_token * index with base ``(B, Hkv or 1, 1)`` a kept device table."""
    batch, hkv = index.shape[:2]
    head_offsets = range(hkv) if rows_per_token > 1 else (0,)
    base = device_ints([tuple(b * num_rows + h for h in head_offsets) for b in range(batch)], index.device)
    return torch.add(base[:, :, None], index, alpha=rows_per_token)


def _quantize(quantizer: HiggsQuantizer, x: torch.Tensor):
    """HIGGS codes of ``x`` (the Triton kernel on CUDA, the torch reference elsewhere)."""
    if use_kernels(x):
        from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

        return higgs_kernels.quantize(quantizer, x)
    return quantizer.quantize(x)


class YakvSelector(Selector):
    name = "yakv"

    def __init__(self, shape, config=None, rope=None, *, payload_group: str | None = None, key_rope: str = "post"):
        super().__init__(shape, config, rope)
        if payload_group is None:  # the config's (--kv-offload-payload-group); the option overrides it
            payload_group = knob(config, "payload_group", self.name)
        d, width = shape.head_dim, shape.kv_width
        if not _is_pow2(d) or d < 16:
            raise ValueError(f"yakv: HIGGS needs a power-of-two head_dim >= 16, got {d}")
        if payload_group not in PAYLOAD_GROUPS:
            raise ValueError(f"yakv: payload_group must be one of {PAYLOAD_GROUPS}, got {payload_group!r}")
        if key_rope not in KEY_ROPE:
            raise ValueError(f"yakv: key_rope must be one of {KEY_ROPE}, got {key_rope!r}")
        if key_rope == "pre" and rope is None:
            raise ValueError("yakv: key_rope='pre' re-applies RoPE after gathering and needs rope=RopeParams(...)")
        self.key_rope = key_rope
        self.landmark_bits = knob(config, "landmark_bits", self.name)
        self.residual = knob(config, "landmark_residual", self.name)
        self.kv_bits = knob(config, "kv_bits", self.name)
        self.landmark_q = HiggsQuantizer(d, *HIGGS_GRIDS[self.landmark_bits], scale_dtype=_SCALE_DTYPE)
        self.residual_q = None
        if self.residual:
            if self.landmark_bits < 2:
                raise ValueError("yakv: residual landmarks need landmark_bits >= 2 (the residual uses one bit less)")
            self.residual_q = HiggsQuantizer(d, *HIGGS_GRIDS[self.landmark_bits - 1], scale_dtype=_SCALE_DTYPE)
        whole = _is_pow2(width) and width <= 4096
        if payload_group == "token" and not whole:
            raise ValueError(f"yakv: payload_group='token' needs num_kv_heads * head_dim to be a power of two "
                             f"<= 4096, got {width}; use 'head'")
        self.payload_group = payload_group
        self.payload_q = None
        if self.kv_bits == 4:
            group = width if self.payload_group == "token" else d
            self.payload_q = HiggsQuantizer(group, *HIGGS_GRIDS[4], scale_dtype=_SCALE_DTYPE)
        self.cache = knob(config, "cache", self.name)  # device cache: fraction of the candidates (0 = off)
        if self.cache and (self.kv_bits != 4 or key_rope != "post"):
            raise ValueError(f"yakv: the device cache holds 4-bit payload rows read as stored; it needs kv_bits=4 "
                             f"and key_rope='post', got kv_bits={self.kv_bits}, key_rope={key_rope!r}")
        self._cache_step = 0  # the caches' LRU clock: one tick per cached gather

    # ---- build --------------------------------------------------------------------------------
    def _build(self, keys, values, positions) -> LayerSummary:
        num_tokens, hkv, d = keys.shape
        device = {}
        if self.residual:
            m = self.residual
            num_groups = math.ceil(num_tokens / m)
            group_of = torch.arange(num_tokens, device=keys.device) // m
            sums = torch.zeros(num_groups, hkv, d, device=keys.device).index_add_(0, group_of, keys.float())
            counts = torch.bincount(group_of, minlength=num_groups).float()
            means = sums / counts[:, None, None]
            mean_codes = self.landmark_q.quantize(means.transpose(0, 1))  # (Hkv, ng, *)
            res_codes = self.residual_q.quantize((keys.float() - means[group_of]).transpose(0, 1))
            device.update(mean_codes=mean_codes.codes, mean_scales=mean_codes.scales,
                          residual_codes=res_codes.codes, residual_scales=res_codes.scales)
        else:
            # head-major, as the score kernel reads them fastest (kernels.higgs.head_store_ref): codes
            # (Hkv, L, D * bits / 8), scales (Hkv, L)
            lm = _quantize(self.landmark_q, keys.transpose(0, 1))  # (Hkv, L, *)
            device.update(landmark_codes=lm.codes, landmark_scales=lm.scales[..., 0])
        stored_keys = inverse_rope(keys, positions, self.rope) if self.key_rope == "pre" else keys
        if self.kv_bits == 4:
            codes, scales = self._encode_records(stored_keys, values)
            payload = {"kv_codes": codes}
            device["kv_scales"] = scales  # the scales stay on the GPU
        elif self.kv_bits == 8:
            payload = {"k": stored_keys.to(torch.float8_e4m3fn), "v": values.to(torch.float8_e4m3fn)}
        else:
            payload = {"k": stored_keys.contiguous(), "v": values.contiguous()}
        if self.cache:
            codes, scales = self._payload_rows(payload, device)
            device.update(row_cache.new_cache(self.cache_slots(num_tokens), {"kv_codes": codes, "kv_scales": scales},
                                              keys.device))
        return LayerSummary(num_tokens=num_tokens, positions=positions, device=device, payload=payload)

    def _encode_records(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """4-bit payload of K and V ``[L, Hkv, D]`` as K|V records, one per payload row (a token, or a
        (token, kv head) pair with per-head groups): codes uint8 ``[L, rows * 2 * group / 2]`` (each
        record K's group codes, then V's, so a gather reads a row's K and V in one contiguous span) and
        scales ``[L, rows, 2]`` (K's, V's)."""
        num_tokens, rows = keys.shape[0], self._rows_per_token()
        k, v = (_quantize(self.payload_q, x.reshape(num_tokens, -1)) for x in (keys, values))  # (L, C*4/8), (L, groups)
        codes = torch.stack([k.codes.view(num_tokens, rows, -1), v.codes.view(num_tokens, rows, -1)], dim=2)
        scales = torch.stack([k.scales.view(num_tokens, rows), v.scales.view(num_tokens, rows)], dim=2)
        return codes.view(num_tokens, -1), scales

    # ---- select -------------------------------------------------------------------------------
    def landmark_scores(self, q: torch.Tensor, summary: LayerSummary) -> torch.Tensor:
        """``q . landmark`` for every query head and candidate, float32 ``[num_kv_heads, group, num_tokens]``."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        qg = q.float().view(hkv, -1, d)  # (Hkv, G, D)
        dev = summary.device
        if not self.residual:
            if use_kernels(q):
                from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

                scores = higgs_kernels.score_refs(self.landmark_q, q[None], [self._landmark_ref(summary, q.device)],
                                                  [summary.num_tokens])  # (1, Hq, L)
                return scores.view(hkv, -1, summary.num_tokens)
            codes, scales = dev["landmark_codes"], dev["landmark_scales"]  # (Hkv, L, Db), (Hkv, L)
            return self.landmark_q.score(qg, codes, scales[..., None])
        group_of = torch.arange(summary.num_tokens, device=q.device) // self.residual
        mean = self.landmark_q.score(qg, dev["mean_codes"], dev["mean_scales"])  # (Hkv, G, ng)
        res = self.residual_q.score(qg, dev["residual_codes"], dev["residual_scales"])  # (Hkv, G, L)
        return mean[..., group_of] + res

    def select(self, q, summary, k, scale):
        self._check_q(q)
        logits = self.landmark_scores(q, summary) * scale
        scores = group_max_softmax(logits.reshape(-1, summary.num_tokens), self.shape.num_kv_heads)
        return topk_sorted(scores, k)

    def select_batch(self, q, summaries, ks, scale):
        if not (use_kernels(q) and not self.residual):
            return super().select_batch(q, summaries, ks, scale)
        return self._select_batch_kernels(q, summaries, ks, scale)

    def _select_batch_kernels(self, q, summaries, ks, scale) -> BatchSelection:
        """One score launch over every request's landmarks, one launch of softmax and GQA max over
        the padded ``[B, Hkv, max L rounded up to LOGITS_ALIGN]`` scores (padding at -1), and one of
        top-k in index order (:func:`~sglang_kv.kernels.topk.topk_sorted_batch`); equal to ``select``
        per request (up to ties)."""
        return self._select_planned(q, self.select_plan(summaries, ks, q.device), scale)

    def select_plan(self, summaries, ks, device: torch.device) -> SelectPlan:
        """The host's part of :meth:`_select_batch_kernels`: the landmark stores, counts and device tables."""
        from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

        hkv = self.shape.num_kv_heads
        lengths = [s.num_tokens for s in summaries]
        counts = [self.num_selected(k, n) for k, n in zip(ks, lengths)]
        stores = [self._landmark_ref(s, device) for s in summaries]
        return SelectPlan(lengths, counts, stores, device_ints(higgs_kernels.score_table_rows(stores, lengths), device),
                          device_ints(lengths, device, torch.int32),
                          device_ints([c for c in counts for _ in range(hkv)], device, torch.int32))

    def _select_planned(self, q, plan: SelectPlan, scale) -> BatchSelection:
        """The launches of :meth:`_select_batch_kernels` (nothing copied from the host)."""
        from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import
        from sglang_kv.kernels import softmax as softmax_kernels

        hkv = self.shape.num_kv_heads
        # columns past a request's length are neither written nor read; the width (the longest request's
        # candidate count) is rounded up to a multiple of LOGITS_ALIGN (128) so that the softmax and top-k
        # rows (and the top-k's chunks of them) start aligned whatever the prompt lengths
        longest = max(plan.lengths)
        columns = -(-longest // LOGITS_ALIGN) * LOGITS_ALIGN
        logits = torch.empty((q.shape[0], q.shape[1], columns), device=q.device)
        higgs_kernels.score_refs(self.landmark_q, q, plan.stores, plan.lengths, out=logits[..., :longest],
                                 table=plan.table)
        scores = softmax_kernels.group_max_softmax_batch(logits, plan.lengths_dev, hkv,
                                                         scale)  # (B, Hkv, columns), -1 past each length
        width = max(plan.counts)
        index = topk_kernels.topk_sorted_batch(scores.view(-1, scores.shape[-1]), plan.row_counts, width)
        return BatchSelection(index.view(len(plan.lengths), hkv, width), plan.counts)

    # ---- select + gather as one fixed launch sequence (CUDA graphs) -----------------------------
    def step_graph_problem(self) -> str | None:
        """Why this selector's decode step cannot run as :meth:`step_plan`'s fixed launch sequence (None:
        it can). The sequence is the batched kernels' path with per-head payload rows and no device
        cache: a whole-token gather needs ``torch.unique`` and the cache's hits vary per step, and
        both wait for the GPU."""
        needs = {"kv_bits": (self.kv_bits, 4), "landmark_residual": (self.residual, 0), "cache": (self.cache, 0),
                 "payload_group": (self.payload_group, "head"), "key_rope": (self.key_rope, "post")}
        wrong = [f"{name} {have!r} (needs {want!r})" for name, (have, want) in needs.items() if have != want]
        return ", ".join(wrong) or None

    def step_plan(self, summaries, ks, device: torch.device) -> StepPlan:
        """One layer's selection and gather of a batch planned on the host, for :meth:`select_gather`."""
        problem = self.step_graph_problem()
        if problem is not None:
            raise ValueError(f"yakv: the decode step is no fixed launch sequence with {problem}")
        select = self.select_plan(summaries, ks, device)
        return StepPlan(select, self.gather_plan(summaries, select.counts, True, device))

    def select_gather(self, q, plan: StepPlan, scale, dtype) -> tuple[BatchSelection, BatchKV]:
        """``select_batch`` then ``gather_batch`` of the planned batch (the kernels' path): launches only,
        nothing copied from the host and nothing waited for, so a CUDA graph can capture it. Equal to
        the two calls."""
        selection = self._select_planned(q, plan.select, scale)
        return selection, self._gather_head_rows(plan.gather, selection, dtype, True)

    def _landmark_ref(self, summary: LayerSummary, device: torch.device):
        """The request's head-major landmark store checked once for the score kernel (it is fixed for
        the request's life)."""
        if "landmark_ref" not in summary.memo:
            from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

            summary.memo["landmark_ref"] = higgs_kernels.head_store_ref(
                self.landmark_q, summary.device["landmark_codes"], summary.device["landmark_scales"], device)
        return summary.memo["landmark_ref"]

    # ---- gather -------------------------------------------------------------------------------
    def gather_batch(self, summaries, selection, dtype=torch.float32):
        if not (self.kv_bits == 4 and self.key_rope == "post" and (use_kernels(selection.index) or self.cache)):
            return super().gather_batch(summaries, selection, dtype)
        return self._gather_batch_rows(summaries, selection, dtype, use_kernels(selection.index))

    def _gather_batch_rows(self, summaries, selection: BatchSelection, dtype, kernels: bool) -> BatchKV:
        """The payload rows every request selected, each read once, in one dequantize-gather launch for K
        and V together (zero-copy from pinned host memory on CUDA; the torch references elsewhere); equal
        to ``gather`` per request. With the device cache, rows it holds are read from GPU memory and
        the others are first copied into it (:mod:`sglang_kv.select.row_cache`)."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        index = selection.index  # (B, Hkv, n)
        device = index.device
        whole = self.payload_group == "token"
        if not whole and not self.cache:
            return self._gather_head_rows(self.gather_plan(summaries, selection.counts, kernels, device), selection,
                                          dtype, kernels)
        rows_per_token = 1 if whole else hkv
        num_rows = max(s.num_tokens for s in summaries) * rows_per_token
        counts, width = selection.counts, index.shape[2]
        if not whole and min(counts) == width:  # per-head rows are distinct within a request
            find_rows = head_rows.head_rows if kernels else head_rows.head_rows_ref
            request, row, inverse = find_rows(index, device_ints(counts, device, torch.int32), num_rows)
        else:  # whole-token rows (heads share them), or the cache with padding columns: torch.unique
            keys, inverse = torch.unique(_row_keys(index, num_rows, rows_per_token), return_inverse=True)
            request, row = keys // num_rows, keys % num_rows
        stores = [self._stores(s, kernels, device) for s in summaries]
        # [every request's cache | every request's host rows] with the cache, else [every request's host rows]
        kinds = ("cache", "host") if self.cache else ("host",)
        refs = [st[kind] for kind in kinds for st in stores]
        if self.cache:
            source, rows, hits = self._plan_cache(kernels, summaries, stores, request, row, num_rows)
        else:
            source, rows, hits = request, row, 0
        out_dtype = dtype if dtype in OUT_DTYPES else torch.float32  # the kernel rounds float32 as .to(dtype)
        out = _dequantize_gather_records(kernels, self.payload_q, refs, source.int(), rows, out_dtype)  # (2, N, group)
        k_rows, v_rows = out.to(dtype).view(2, -1, d)  # K's rows, then V's: one per (distinct key, head) / key
        if whole:  # a token row serves every head: its head h is row key * Hkv + h
            inverse = torch.add(torch.arange(hkv, device=device)[:, None], inverse, alpha=hkv)
        lookups = row.numel() if self.cache else 0
        return BatchKV(k_rows, v_rows, inverse, (row.numel() - hits) * self.payload_row_bytes(), lookups, hits)

    def gather_plan(self, summaries, counts: list[int], kernels: bool, device: torch.device) -> GatherPlan:
        """The host's part of a gather of per-head payload rows without the device cache."""
        from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import

        stores = [self._stores(s, kernels, device)["host"] for s in summaries]
        table = device_ints(higgs_kernels.gather_table_rows(stores), device) if kernels else None
        num_rows = max(s.num_tokens for s in summaries) * self.shape.num_kv_heads
        return GatherPlan(stores, table, device_ints(counts, device, torch.int32), num_rows)

    def _gather_head_rows(self, plan: GatherPlan, selection: BatchSelection, dtype, kernels: bool) -> BatchKV:
        """The gather of per-head payload rows without the device cache: each (request, head, selected
        token) is a row of its own, so no ``torch.unique``; padding columns become rows that read
        nothing (-1) (:mod:`sglang_kv.kernels.head_rows`). Launches only."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        counts, width = selection.counts, selection.index.shape[2]
        find_rows = head_rows.head_rows if kernels else head_rows.head_rows_ref
        request, row, inverse = find_rows(selection.index, plan.counts, plan.num_rows)
        out_dtype = dtype if dtype in OUT_DTYPES else torch.float32  # the kernel rounds float32 as .to(dtype)
        out = _dequantize_gather_records(kernels, self.payload_q, plan.stores, request.int(), row, out_dtype,
                                         plan.table)  # (2, N, group)
        k_rows, v_rows = out.to(dtype).view(2, -1, d)  # K's rows, then V's: one per (request, head, column)
        read = row.numel() - hkv * sum(width - c for c in counts)  # padding columns read nothing
        return BatchKV(k_rows, v_rows, inverse, read * self.payload_row_bytes())

    def _plan_cache(self, kernels, summaries, stores, request, row, num_rows):
        """Place this step's rows in the requests' caches and copy the misses in (the K|V records in one
        copy, their scales in another). Returns each row's ``(store, row)`` within the stores
        ``[caches | host rows]`` and the hit count."""
        batch = len(summaries)
        self._cache_step += 1
        plan = row_cache.plan([s.device[row_cache.ROW_KEY] for s in summaries],
                              [s.device[row_cache.STAMP_KEY] for s in summaries], request, row, num_rows,
                              self._cache_step)
        fill_slot = torch.where(plan.fill, plan.slot, -1)  # rows not filled are skipped
        for part in ("codes", "scales"):
            _copy_rows(kernels, [st[f"fill_{part}"] for st in stores], request.int(), row, fill_slot)
        cached = plan.slot >= 0
        return torch.where(cached, request, request + batch), torch.where(cached, plan.slot, row), plan.hits

    def _stores(self, summary: LayerSummary, kernels: bool, device: torch.device) -> dict:
        """What the batched gather reads and fills of one request, built once per summary: the
        ``"host"`` and ``"cache"`` K|V record stores (``(codes, scales)`` row views, or checked kernel
        refs) and ``"fill_codes"`` / ``"fill_scales"`` (host -> cache copy pairs)."""
        key = "stores_kernels" if kernels else "stores_torch"
        if key not in summary.memo:
            from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import
            from sglang_kv.kernels import rows as row_kernels

            host = self._payload_rows(summary.payload, summary.device)
            stores = {"host": host}
            if self.cache:
                cache = self._payload_rows(summary.device, summary.device, row_cache.PREFIX)
                stores.update(cache=cache, fill_codes=(host[0], cache[0]), fill_scales=(host[1], cache[1]))
            if kernels:
                stores = {kind: higgs_kernels.store_ref(self.payload_q, *pair, device) if kind in ("host", "cache")
                          else row_kernels.copy_pair(*pair, device) for kind, pair in stores.items()}
            summary.memo[key] = stores
        return summary.memo[key]

    def _payload_rows(self, codes: dict, scales: dict, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """``(codes [rows, 2 * group * 4 / 8], scales [rows, 2])`` of the 4-bit payload's K|V records
        (``prefix`` "": the codes from ``codes``, the payload dict, the scales from ``scales``, the device
        dict), or of its device cache (``"cache_"``, both from the device dict): one row per HIGGS group
        of K and of V, a token with whole-token groups, a (token, kv head) pair (row ``token * Hkv +
        head``) with per-head groups."""
        width = self.payload_q.code_bytes(self.payload_q.group_size)
        return codes[f"{prefix}kv_codes"].reshape(-1, 2 * width), scales[f"{prefix}kv_scales"].reshape(-1, 2)

    def gather(self, summary, index, dtype=torch.float32):
        k = self._decode("k", summary, index)
        if self.key_rope == "pre":
            hkv, n, d = k.shape
            k = apply_rope(k.reshape(hkv * n, 1, d), summary.positions[index].reshape(-1), self.rope).view(hkv, n, d)
        return k.to(dtype), self._decode("v", summary, index).to(dtype)

    def _decode(self, name: str, summary: LayerSummary, index: torch.Tensor) -> torch.Tensor:
        """float32 ``[Hkv, n, D]`` of payload ``name`` at ``index``, reading only those rows."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        heads = torch.arange(hkv, device=index.device)[:, None]
        p = summary.payload
        if self.kv_bits != 4:
            return take(p[name], index, heads).float()
        part = "kv".index(name)  # K's or V's half of each record
        record_codes, record_scales = self._payload_rows(p, summary.device)  # (rows, 2 * W), (rows, 2)
        codes = record_codes.view(record_codes.shape[0], 2, -1)[:, part]  # (rows, W): strided rows
        scales = record_scales[:, part:part + 1]  # (rows, 1)
        if use_kernels(index):
            from sglang_kv.kernels import higgs as higgs_kernels  # lazy: Triton decorates at import
        if self.payload_group == "token":
            rows, inverse = torch.unique(index, return_inverse=True)  # a token row serves every head
            if use_kernels(index):  # zero-copy read of the (pinned host) rows
                tokens = higgs_kernels.dequantize_gather(self.payload_q, codes, scales, rows, dtype=torch.float32)
            else:
                tokens = self.payload_q.dequantize(take(codes, rows), take(scales, rows))
            return tokens.view(-1, hkv, d)[inverse, heads]
        if use_kernels(index):  # per (token, head) rows: row token * Hkv + head
            return higgs_kernels.dequantize_gather(self.payload_q, codes, scales, index * hkv + heads,
                                                   dtype=torch.float32)
        codes = take(codes.view(-1, hkv, codes.shape[1]), index, heads)  # (Hkv, n, D/2)
        return self.payload_q.dequantize(codes, take(scales.view(-1, hkv), index, heads)[..., None])

    # ---- accounting ---------------------------------------------------------------------------
    def landmark_bytes(self, num_tokens: int) -> int:
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        if not self.residual:
            return num_tokens * hkv * self.landmark_q.bytes_per_vector(d)
        num_groups = math.ceil(num_tokens / self.residual)
        return hkv * (num_groups * self.landmark_q.bytes_per_vector(d) + num_tokens * self.residual_q.bytes_per_vector(d))

    def token_row_bytes(self) -> int:
        """Host payload bytes of one token over all kv heads, K and V together (at 4 bits the codes
        alone: the scales stay on the GPU, :meth:`token_scale_bytes`)."""
        width = self.shape.kv_width
        if self.kv_bits == 4:
            return 2 * self.payload_q.code_bytes(width)
        return 2 * width * self.kv_bits // 8

    def token_scale_bytes(self) -> int:
        """GPU bytes of one token's payload scales, K and V together (0 below 4-bit HIGGS)."""
        if self.kv_bits != 4:
            return 0
        width = self.shape.kv_width
        return 2 * (self.payload_q.bytes_per_vector(width) - self.payload_q.code_bytes(width))

    def _rows_per_token(self) -> int:
        return 1 if self.payload_group == "token" else self.shape.num_kv_heads

    def payload_row_bytes(self) -> int:
        """Host bytes of one payload row, K and V together: a whole token, or one (token, kv head)
        with per-head groups (what a gather copies over PCIe per row)."""
        return self.token_row_bytes() // self._rows_per_token()

    def cache_slots(self, num_tokens: int) -> int:
        """Rows of the device cache of one request and layer (0 without it): ``ceil(cache *
        num_tokens)`` tokens' worth (times ``Hkv`` with per-head payload groups)."""
        return math.ceil(self.cache * num_tokens) * self._rows_per_token()

    def footprint(self, num_tokens):
        # a cache slot holds a row's codes and its scales
        slot_bytes = (row_cache.META_BYTES_PER_SLOT + self.payload_row_bytes()
                      + self.token_scale_bytes() // self._rows_per_token())
        gpu = self.landmark_bytes(num_tokens) + num_tokens * self.token_scale_bytes()
        return Footprint(gpu_bytes=gpu + self.cache_slots(num_tokens) * slot_bytes,
                         host_bytes=num_tokens * self.token_row_bytes())

    def step_bytes(self, num_tokens, k):
        n = min(k, num_tokens)
        hkv = self.shape.num_kv_heads
        if self.kv_bits == 4 and self.payload_group == "token":
            pcie = min(hkv * n, num_tokens) * self.token_row_bytes()  # union of the heads' selections
        else:
            pcie = hkv * n * self.token_row_bytes() // hkv
        return StepBytes(pcie_bytes=pcie, hbm_bytes=self.landmark_bytes(num_tokens))

    def load_bytes(self, summary, index):
        if self.kv_bits == 4 and self.payload_group == "token":
            return torch.unique(index).numel() * self.token_row_bytes()
        return index.numel() * self.token_row_bytes() // self.shape.num_kv_heads

