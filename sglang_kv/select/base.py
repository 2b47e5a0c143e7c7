"""The selector interface: summarize a request's prompt K/V of one layer once, then pick tokens per step.

A selector sees one layer of one request at a time and knows nothing about SGLang:

* ``build(keys, values, positions)`` runs once, when the prompt is complete, on the *candidate*
  tokens (the prompt minus the exact sink and local windows; post-RoPE, in position order) and
  returns a :class:`LayerSummary` split in two parts:

  - ``device``: what stays in GPU memory (landmarks, factors, exact outliers, ...), read by
    ``select`` every step and by ``gather`` for tokens that live on the GPU;
  - ``payload``: what is offloaded to host memory. Every payload tensor is indexed by candidate
    token on its first dimension, so a serving store can keep a request's rows contiguous and copy
    only the selected rows (``gather`` reads nothing else).

* ``select(q, summary, k, scale)`` runs every decode step and returns, per kv head, the candidate
  indices attention must see, ascending: the ``min(k, num_tokens - num_fixed)`` tokens the method
  selects plus its ``num_fixed`` tokens kept exact on the GPU (ShadowKV's outlier chunks; 0 for the
  other methods), so ``num_selected(k, num_tokens)`` columns; ``k >= num_tokens`` returns every token.
* ``gather(summary, index)`` returns the keys and values attention sees for those indices:
  dequantized (YAKV), rebuilt from factors with RoPE at their positions (ShadowKV keys) or exact.
* ``select_batch`` / ``gather_batch`` do the same for the requests of one decode batch and layer
  (what serving calls). The default loops over ``select`` / ``gather``; a selector with batched
  kernels (YAKV on CUDA) overrides them with one score, one top-k and one gather launch per layer,
  and must return what the loop returns.

Scoring convention shared by every selector (the papers'): per query head a softmax over all
candidates (or blocks of them) of ``scale * q . key_estimate``, then the max over the query heads of
each GQA group, then top-k per kv head (each kv head selects its own set). Query heads of one kv head
are contiguous, as in SGLang and Hugging Face.

Memory accounting (per layer, for ``num_tokens`` candidates, exact tensors counted at 2 bytes per
value, i.e. bf16/fp16 serving): ``footprint`` gives the GPU and host bytes, ``step_bytes`` the bytes
one decode step moves. Both are analytic, so tests pin them against hand-computed figures, and
``summary.device_bytes``/``summary.payload_bytes`` equal them for bf16 inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

import torch

from sglang_kv.devices import device_ints
from sglang_kv.select.rope import RopeParams

EXACT_BYTES = 2  # bytes per exact value (bf16 / fp16 serving)


class ModelShape(NamedTuple):
    """Attention shape of one layer on one tensor-parallel rank."""

    num_q_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        return self.num_q_heads // self.num_kv_heads

    @property
    def kv_width(self) -> int:
        """Channels of one token's keys over all kv heads (``num_kv_heads * head_dim``)."""
        return self.num_kv_heads * self.head_dim


class Footprint(NamedTuple):
    """Bytes one layer of one request holds for its candidate tokens."""

    gpu_bytes: int  # device summary
    host_bytes: int  # offloaded payload


class StepBytes(NamedTuple):
    """Bytes one decode step reads for one layer of one request (no cache of earlier selections)."""

    pcie_bytes: int  # host -> device; upper bound when whole-token payload groups are shared by heads
    hbm_bytes: int  # device memory read: the summary scored plus the exact selected/fixed tokens


@dataclass
class LayerSummary:
    """What ``build`` returns for one layer of one request.

    ``positions`` (``[num_tokens]`` int64) are kept for the reference path only and not counted in
    the bytes: in serving, candidate ``i`` sits at position ``sink + i``.
    ``fixed`` (``[num_kv_heads, num_fixed]`` int64, ascending) lists candidates each kv head always
    attends to, exact on the GPU (ShadowKV outliers); ``None`` when there are none.
    """

    num_tokens: int
    positions: torch.Tensor
    device: dict[str, torch.Tensor] = field(default_factory=dict)
    payload: dict[str, torch.Tensor] = field(default_factory=dict)
    fixed: torch.Tensor | None = None
    # values a selector derives from this summary once (row views, checked kernel store refs); not
    # copied by dataclasses.replace, so a summary with new payload tensors starts empty
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, t in self.payload.items():
            if t.shape[0] != self.num_tokens:
                raise ValueError(f"payload {name!r} must be indexed by token on dim 0: shape {tuple(t.shape)}, "
                                 f"num_tokens {self.num_tokens}")

    @property
    def num_fixed(self) -> int:
        return 0 if self.fixed is None else self.fixed.shape[1]

    @property
    def device_bytes(self) -> int:
        return sum(_nbytes(t) for t in self.device.values())

    @property
    def payload_bytes(self) -> int:
        return sum(_nbytes(t) for t in self.payload.values())

    def with_payload_on(self, device: torch.device | str, pin_memory: bool = False) -> "LayerSummary":
        """A copy whose payload lives on ``device`` (``pin_memory`` for a page-locked host copy)."""
        moved = {}
        for name, t in self.payload.items():
            t = t.to(device)
            moved[name] = t.pin_memory() if pin_memory else t
        return replace(self, payload=moved)


def take(table: torch.Tensor, *index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` on the index's device, reading only the indexed rows.

    ``table`` may live in (pinned) host memory while the index is on the GPU (a serving payload):
    the rows are gathered on the host and copied over. This is the readable reference path; the
    YAKV 4-bit payload is read by a zero-copy Triton kernel instead (``kernels.higgs``).
    """
    device = index[0].device
    if table.device == device:
        return table[index]
    return table[tuple(i.to(table.device) for i in index)].to(device, non_blocking=True)


def use_kernels(*tensors: torch.Tensor) -> bool:
    """Whether the Triton kernels serve this call: on CUDA (the torch path is the reference)."""
    return tensors[0].is_cuda


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def knob(config: Any, name: str, method: str) -> Any:
    """``config.name``, or the method's default from ``OffloadConfig`` when ``config`` is None."""
    if config is None:
        from sglang_kv.config import OffloadConfig

        config = OffloadConfig(method=method)
    return getattr(config, name)


class Selector(ABC):
    """One selection method. Subclasses set ``name`` and implement the abstract methods.

    ``config`` is an ``OffloadConfig`` (or any object with its fields; ``None`` takes the method's
    defaults); ``rope`` is needed by the methods that un-rotate keys (``needs_rope``).
    Raises ``ValueError`` at construction for a shape or configuration the method cannot serve.
    """

    name: ClassVar[str]
    needs_rope: ClassVar[bool] = False

    def __init__(self, shape: ModelShape, config: Any = None, rope: RopeParams | None = None):
        if shape.num_q_heads % shape.num_kv_heads:
            raise ValueError(f"query heads {shape.num_q_heads} not a multiple of kv heads {shape.num_kv_heads}")
        if self.needs_rope and rope is None:
            raise ValueError(f"selector {self.name!r} un-rotates post-RoPE keys and needs the model's rope "
                             "parameters: pass rope=RopeParams.from_hf_config(hf_config)")
        self.shape = shape
        self.config = config
        self.rope = rope

    # ---- per request and layer ---------------------------------------------------------------
    def build(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor | None = None) -> LayerSummary:
        """Summarize the candidate tokens of one layer (does not modify its inputs).

        keys, values: ``[num_tokens, num_kv_heads, head_dim]`` post-RoPE, in position order;
        positions: ``[num_tokens]`` int64 (default ``arange(num_tokens)``; the methods that use RoPE
        depend only on position differences, so a constant offset such as the sink does not matter).
        """
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        if keys.dim() != 3 or keys.shape[1:] != (hkv, d) or values.shape[:2] != keys.shape[:2]:
            raise ValueError(f"{self.name}: expected keys/values [num_tokens, {hkv}, {d}], got "
                             f"{tuple(keys.shape)} and {tuple(values.shape)}")
        if keys.shape[0] == 0:
            raise ValueError(f"{self.name}: no candidate tokens to summarize")
        if positions is None:
            positions = torch.arange(keys.shape[0], device=keys.device)
        elif positions.shape != (keys.shape[0],):
            raise ValueError(f"{self.name}: positions must be [{keys.shape[0]}], got {tuple(positions.shape)}")
        return self._build(keys, values, positions.long())

    @abstractmethod
    def _build(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> LayerSummary:
        """``build`` after argument checks."""

    @abstractmethod
    def select(self, q: torch.Tensor, summary: LayerSummary, k: int, scale: float) -> torch.Tensor:
        """Candidate indices each kv head attends to for one decode query.

        q: ``[num_q_heads, head_dim]`` post-RoPE. Returns int64 ``[num_kv_heads, num_selected(k, L)]``,
        each row ascending and distinct (``fixed`` tokens included).
        """

    @abstractmethod
    def gather(self, summary: LayerSummary, index: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values attention sees for ``index`` ``[num_kv_heads, n]`` (candidate indices).

        Returns ``(k, v)``, each ``[num_kv_heads, n, head_dim]`` in ``dtype``; keys are post-RoPE.
        Reads only the ``index`` rows of the payload.
        """

    # ---- per decode batch and layer ----------------------------------------------------------
    def select_batch(self, q: torch.Tensor, summaries: list[LayerSummary], ks: list[int],
                     scale: float) -> BatchSelection:
        """``select`` for each request: q ``[B, num_q_heads, head_dim]``, one summary and budget each."""
        self._check_batch(q, summaries, ks)
        return pad_selections([self.select(q[b], s, k, scale) for b, (s, k) in enumerate(zip(summaries, ks))])

    def gather_batch(self, summaries: list[LayerSummary], selection: BatchSelection,
                     dtype: torch.dtype = torch.float32) -> BatchKV:
        """``gather`` for each request of a :class:`BatchSelection` (padded columns are zeros)."""
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        width = selection.index.shape[2]
        k = selection.index.new_zeros((len(summaries), hkv, width, d), dtype=dtype)
        v = torch.zeros_like(k)
        loaded = 0
        for b, (summary, n) in enumerate(zip(summaries, selection.counts)):
            index = selection.index[b, :, :n].contiguous()
            k[b, :, :n], v[b, :, :n] = self.gather(summary, index, dtype=dtype)
            loaded += self.load_bytes(summary, index)
        return BatchKV.of_dense(k, v, loaded)

    def num_selected(self, k: int, num_tokens: int, num_fixed: int = 0) -> int:
        return min(k, num_tokens - num_fixed) + num_fixed

    def summary_bytes(self, summary: LayerSummary) -> int:
        """Device bytes held by ``summary``."""
        return summary.device_bytes

    def payload_bytes(self, summary: LayerSummary) -> int:
        """Host bytes held by ``summary``'s payload."""
        return summary.payload_bytes

    # ---- accounting ---------------------------------------------------------------------------
    @abstractmethod
    def footprint(self, num_tokens: int) -> Footprint:
        """GPU and host bytes of one layer's summary for ``num_tokens`` candidates (bf16 inputs)."""

    @abstractmethod
    def step_bytes(self, num_tokens: int, k: int) -> StepBytes:
        """Bytes one decode step moves for one layer at budget ``k`` (upper bound, no cache)."""

    @abstractmethod
    def load_bytes(self, summary: LayerSummary, index: torch.Tensor) -> int:
        """Host -> device bytes ``gather(summary, index)`` copies (no cache of earlier steps)."""

    def _check_batch(self, q: torch.Tensor, summaries: list[LayerSummary], ks: list[int]) -> None:
        if q.dim() != 3 or len(summaries) != q.shape[0] or len(ks) != q.shape[0]:
            raise ValueError(f"{self.name}: select_batch needs q [B, Hq, D] with one summary and budget per "
                             f"request, got q {tuple(q.shape)}, {len(summaries)} summaries, {len(ks)} budgets")

    def _check_q(self, q: torch.Tensor) -> None:
        if q.shape != (self.shape.num_q_heads, self.shape.head_dim):
            raise ValueError(f"{self.name}: expected q [{self.shape.num_q_heads}, {self.shape.head_dim}], "
                             f"got {tuple(q.shape)}")


class BatchSelection(NamedTuple):
    """``select_batch``'s result: request ``b`` selects ``index[b, :, :counts[b]]`` (per kv head,
    ascending, as ``select``); columns past ``counts[b]`` repeat one of its selected indices."""

    index: torch.Tensor  # int64 [B, num_kv_heads, max(counts)]
    counts: list[int]


class BatchKV(NamedTuple):
    """``gather_batch``'s result: the gathered key and value rows and where each selected token's
    row is. Request ``b``'s keys / values are ``k[b, :, :counts[b]]`` (:attr:`k`: ``k_rows[rows]``).
    A fused attention kernel reads the rows through ``rows`` instead (no copy into ``k``'s layout)."""

    k_rows: torch.Tensor  # [R, head_dim]: any row stride, last dimension contiguous
    v_rows: torch.Tensor  # [R, v_head_dim]
    rows: torch.Tensor  # int64 [B, num_kv_heads, max(counts)]: the row of each selected token
    # host -> device bytes the gather read (as ``load_bytes`` summed over requests, less cache hits)
    load_bytes: int | torch.Tensor  # with the device caches an int64 0-d device tensor (reading it waits for the GPU)
    cache_lookups: int = 0  # distinct payload rows looked up in the device caches (0 without them)
    cache_hits: int | torch.Tensor = 0  # of those, rows the caches already held (a device tensor, as load_bytes)

    @property
    def k(self) -> torch.Tensor:
        """Keys ``[B, num_kv_heads, max(counts), head_dim]`` (a new tensor)."""
        return self.k_rows[self.rows]

    @property
    def v(self) -> torch.Tensor:
        """Values ``[B, num_kv_heads, max(counts), v_head_dim]`` (a new tensor)."""
        return self.v_rows[self.rows]

    @classmethod
    def of_dense(cls, k: torch.Tensor, v: torch.Tensor, load_bytes: int) -> "BatchKV":
        """From keys and values already in ``[B, Hkv, n, D]`` layout (row ``i`` of the flattened
        tensors is token ``i`` in that order)."""
        rows = torch.arange(k.shape[0] * k.shape[1] * k.shape[2], device=k.device).view(k.shape[:3])
        return cls(k.reshape(-1, k.shape[-1]), v.reshape(-1, v.shape[-1]), rows, load_bytes)


def pad_selections(indices: list[torch.Tensor]) -> BatchSelection:
    """Stack per-request selections ``[Hkv, n_b]`` into a :class:`BatchSelection`."""
    counts = [int(i.shape[1]) for i in indices]
    width = max(counts)
    index = torch.stack([torch.cat([i, i[:, :1].expand(-1, width - i.shape[1])], 1) for i in indices])
    return BatchSelection(index, counts)


def group_max_softmax(logits: torch.Tensor, num_kv_heads: int) -> torch.Tensor:
    """Softmax over tokens per query head, then max over each GQA group.

    logits: ``[num_q_heads, num_tokens]`` (query heads of one kv head are contiguous, as in
    SGLang and Hugging Face). Returns float32 ``[num_kv_heads, num_tokens]``.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    return probs.view(num_kv_heads, -1, probs.shape[-1]).amax(dim=1)


def topk_sorted(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores per row, sorted ascending. scores: ``[rows, n]``."""
    k = min(k, scores.shape[-1])
    idx = torch.topk(scores, k, dim=-1, sorted=False).indices
    return torch.sort(idx, dim=-1).values


def blocks_to_tokens(block_scores: torch.Tensor, block_size: int, num_tokens: int, k: int,
                     fixed: torch.Tensor | None = None) -> torch.Tensor:
    """Token selection from block scores: blocks in descending score order, tokens filled block by
    block and cut at ``k`` (the last block taken may be partial), then the ``fixed`` tokens added.

    block_scores: ``[rows, ceil(num_tokens / block_size)]``, block ``b`` = tokens
    ``[b * block_size, (b + 1) * block_size)`` (the last block may be short); blocks holding
    ``fixed`` tokens must score below every other block (they are never counted towards ``k``).
    fixed: ``[rows, num_fixed]`` or None. Returns int64 ``[rows, min(k, num_tokens - num_fixed) + num_fixed]``
    ascending. Exact cut at ``k`` keeps the result rectangular when the last block is short.
    """
    return blocks_to_tokens_batch(block_scores[None], block_size, [num_tokens], [k], [fixed]).index[0]


_PAST_END = torch.iinfo(torch.int64).max  # a token id that sorts after every real one


def pad_columns(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    """``t [rows, n]`` (any integer dtype) with ``width - n`` columns of ``value`` appended (exact for
    every int64; ``torch.nn.functional.pad`` takes its value as a float)."""
    return torch.cat([t, t.new_full((t.shape[0], width - t.shape[1]), value)], dim=-1)


def blocks_to_tokens_batch(block_scores: torch.Tensor, block_size: int, num_tokens: list[int], ks: list[int],
                           fixed: list[torch.Tensor | None]) -> "BatchSelection":
    """:func:`blocks_to_tokens` for ``B`` requests at once, each with its own length, budget and fixed
    tokens, without a device sync.

    block_scores: ``[B, rows, num_blocks]`` with ``num_blocks * block_size >= max(num_tokens)``; a
    request's blocks past ``ceil(num_tokens[b] / block_size)`` (padding) must score below all of its
    other blocks, fixed ones included. fixed[b]: ``[rows, num_fixed_b]`` ascending, or None.
    Request ``b`` selects ``min(ks[b], num_tokens[b] - num_fixed_b) + num_fixed_b`` tokens per row.
    """
    batch, rows, num_blocks = block_scores.shape
    device = block_scores.device
    num_fixed = [0 if f is None else f.shape[1] for f in fixed]
    takes = [min(k, n - f) for k, n, f in zip(ks, num_tokens, num_fixed)]
    order = torch.argsort(block_scores, dim=-1, descending=True, stable=True)  # (B, rows, nb)
    table = torch.arange(num_blocks * block_size, device=device).view(num_blocks, block_size)
    tokens = table[order].reshape(batch, rows, -1)  # (B, rows, nb * bs) in block-rank order
    if any(num_blocks * block_size != n for n in num_tokens):
        # slots past a request's length (its short last block, its padding blocks) move to the end of
        # each row in a stable sort (no boolean indexing, so no device sync)
        past = torch.argsort((tokens >= device_ints(num_tokens, device)[:, None, None]).to(torch.uint8), dim=-1,
                             stable=True)
        tokens = tokens.gather(-1, past)
    picked = tokens[..., :max(takes)]
    if min(takes) < max(takes):
        column = torch.arange(picked.shape[-1], device=device)
        picked = picked.masked_fill(column >= device_ints(takes, device)[:, None, None], _PAST_END)
    if any(num_fixed):
        width = max(num_fixed)
        empty = picked.new_empty((rows, 0))
        pads = [pad_columns(empty if f is None else f.to(device=device, dtype=picked.dtype), width, _PAST_END)
                for f in fixed]
        picked = torch.cat([picked, torch.stack(pads)], dim=-1)
    counts = [t + f for t, f in zip(takes, num_fixed)]
    index = torch.sort(picked, dim=-1).values[..., :max(counts)]
    if min(counts) < max(counts):  # a request's columns past its count repeat its first selected token
        index = torch.where(index == _PAST_END, index[..., :1], index)
    return BatchSelection(index, counts)
