"""Synthetic context-intensive attention layers at real model shapes.

What a layer is (all draws seeded by ``(seed, layer)``; the record layout by ``seed`` alone, as the
same prompt feeds every layer):

* **Records.** The prompt is a run of records of ``record_len`` tokens (uniform in the range, so
  records do not line up with 8-token chunks or 16-token pages). Token ``j`` of every record plays the
  same role (a field name, a separator, the record's identifier at offsets
  ``[id_offset, id_offset + id_len)``), like the rows of an invoice table or a JSON array.
* **Keys (pre-RoPE, all kv heads concatenated, ``C = Hkv * D`` channels).**
  ``k = sqrt(1 - rho) * T[j] W + sqrt(rho) * z``: ``T[j] W`` is the template of offset ``j``, shared by
  every record and confined to a ``template_rank``-dimensional subspace common to all kv heads (the
  shared low-rank structure); ``z ~ N(0, I_C)`` is the token's own content (the small distinct part,
  ``rho = distinct_share`` of the energy, full rank). Each channel has unit variance.
* **Outlier channels.** ``outlier_channels`` channels per kv head carry a constant offset of
  ``outlier_scale`` standard deviations (random sign) on every token, as the few large-magnitude key
  channels of real LLMs; they are placed in the low-frequency rotary pairs, where such channels sit
  in real models (massive values concentrate in low RoPE frequencies).
* **RoPE** at the model's frequencies (``rope.inv_freq``, Llama-3 scaling included) at positions
  ``0..L-1``; queries at position ``L`` (each query is a possible first decode step).
* **Values** are built like keys (own templates and content, no outliers, no RoPE).
* **Queries.** Each decode query targets ``targets_per_query`` random records: per query head,
  ``q = a * (template of the identifier field) + b * sum_r w_r (content of record r's identifier
  tokens)`` with random per-head weights ``w_r`` in [0.5, 1.5], restricted to the *content pairs*:
  the rotary pairs that turn by at most a quarter turn over the context (``inv_freq * L <= pi / 2``),
  so a content match keeps its sign at every distance, as it must in a head that retrieves by
  content. ``a`` and ``b`` are set per query head from the generated keys so that, in the post-RoPE
  logits, every record's identifier tokens stand on average ``field_logit`` nats above the mean token
  and the targets a further ``target_logit`` nats above the other identifiers.

Why this models the failure modes of the methods compared:

* near-duplicates: hundreds of identifier tokens share the template and differ only in their small,
  full-rank content; a selector must resolve that content to find the targets. Low-rank keys
  (ShadowKV) keep the template and lose most of the content; chunk/page summaries (ShadowKV means,
  Quest min/max) mix a target with the neighbouring tokens of its record; coarse quantization
  (YAKV landmarks) adds noise of the order of the content.
* outlier channels set the L2 scale of each key (HIGGS quantizes relative to it) and widen every
  page's min/max box (Quest) without telling tokens apart.
* RoPE at real frequencies and positions: the methods see post-RoPE keys as in serving, ShadowKV
  must un-rotate and re-rotate, and far targets score lower than near ones as in a real model.
* GQA: the query heads of one kv head weigh the targets differently, so the group max matters.

The parameters are fixed a priori (the defaults below) and not fitted to any model or result; the
capture path (``bench capture``) is the check against real activations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

from sglang_kv.bench.shapes import ModelSpec
from sglang_kv.select.rope import RopeParams, apply_rope, inv_freq


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic layers (see the module docstring for their meaning)."""

    num_tokens: int
    num_queries: int = 8
    record_len: tuple[int, int] = (48, 80)  # tokens per record, uniform in [lo, hi]
    id_offset: int = 2  # first token of the identifier field within a record
    id_len: int = 2  # identifier tokens per record
    template_rank: int = 32  # rank of the structure shared by all records (over all kv heads)
    distinct_share: float = 0.25  # share of each key's/value's energy that is its own content
    outlier_channels: int = 4  # per kv head
    outlier_scale: float = 8.0  # outlier offset in units of a normal channel's standard deviation
    targets_per_query: int = 4  # records each decode query looks for
    field_logit: float = 4.0  # identifier tokens over the mean token (nats)
    target_logit: float = 6.0  # targets over the other identifier tokens (nats)
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.record_len
        if not 0 < self.id_offset + self.id_len <= lo <= hi:
            raise ValueError(f"record_len {self.record_len} must fit the identifier field "
                             f"[{self.id_offset}, {self.id_offset + self.id_len})")
        if self.num_tokens < 2 * hi:
            raise ValueError(f"num_tokens {self.num_tokens} too small for records of up to {hi} tokens")
        if not 0 < self.distinct_share < 1:
            raise ValueError(f"distinct_share must be in (0, 1), got {self.distinct_share}")

    def to_dict(self) -> dict:
        return asdict(self)


class LayerData(NamedTuple):
    """One attention layer of one request: the prompt's K/V and decode queries (all post-RoPE)."""

    keys: torch.Tensor  # [num_tokens, num_kv_heads, head_dim]
    values: torch.Tensor  # [num_tokens, num_kv_heads, head_dim]
    positions: torch.Tensor  # [num_tokens] int64
    queries: torch.Tensor  # [num_queries, num_q_heads, head_dim]
    query_positions: torch.Tensor  # [num_queries] int64
    scale: float  # softmax scale
    targets: torch.Tensor | None = None  # [num_queries, num_kv_heads, n] prompt indices the group's heads look for
    generated: int = 0  # the last `generated` tokens are decoded ones (always exact), not prompt


def content_pairs(rope: RopeParams, head_dim: int, context_len: int) -> torch.Tensor:
    """bool ``[head_dim // 2]``: rotary pairs that turn by at most pi/2 over ``context_len`` positions."""
    mask = inv_freq(rope, head_dim) * context_len <= math.pi / 2
    if not mask.any():
        raise ValueError(f"no rotary pair turns by less than pi/2 over {context_len} positions")
    return mask


def record_layout(spec: SyntheticSpec) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(record index ``[L]``, offset within the record ``[L]``, number of records) of every token."""
    gen = torch.Generator().manual_seed(spec.seed)
    lo, hi = spec.record_len
    lengths = []
    while sum(lengths) < spec.num_tokens:
        lengths.append(int(torch.randint(lo, hi + 1, (1,), generator=gen)))
    record = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))[: spec.num_tokens]
    starts = torch.cumsum(torch.tensor([0] + lengths[:-1]), 0)
    offset = torch.arange(spec.num_tokens) - starts[record]
    return record, offset, len(lengths)


def make_layer(spec: SyntheticSpec, model: ModelSpec, layer: int = 0) -> LayerData:
    """One synthetic layer at the shape and RoPE of ``model``; bf16 keys, values and queries."""
    hq, hkv, d = model.shape
    group, width, n = model.shape.group_size, model.shape.kv_width, spec.num_tokens
    gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + layer + 1)
    record, offset, num_records = record_layout(spec)
    rho = spec.distinct_share
    max_len = spec.record_len[1]

    def structured() -> tuple[torch.Tensor, torch.Tensor]:
        templates = torch.randn(max_len, spec.template_rank, generator=gen)
        basis = torch.randn(spec.template_rank, width, generator=gen) / math.sqrt(spec.template_rank)
        shared = math.sqrt(1 - rho) * (templates @ basis)  # (max_len, C), per-channel variance ~1 - rho
        return shared[offset] + math.sqrt(rho) * torch.randn(n, width, generator=gen), shared

    k_pre, k_shared = structured()
    v, _ = structured()
    k_pre, k_shared = k_pre.view(-1, hkv, d), k_shared.view(-1, hkv, d)

    pairs = content_pairs(model.rope, d, n)
    content = torch.cat([pairs, pairs]).float()  # (D,) 1 on the channels of the content pairs
    is_id = (offset >= spec.id_offset) & (offset < spec.id_offset + spec.id_len)
    ident = torch.randn(n, hkv, d, generator=gen) * content * is_id[:, None, None].float()
    k_pre += ident
    content_idx = torch.nonzero(content).flatten()
    for h in range(hkv):
        chans = content_idx[torch.randperm(content_idx.numel(), generator=gen)[: spec.outlier_channels]]
        signs = torch.randint(0, 2, (chans.numel(),), generator=gen).float() * 2 - 1
        k_pre[:, h, chans] += spec.outlier_scale * signs

    positions = torch.arange(n)
    keys = apply_rope(k_pre, positions, model.rope)  # (L, Hkv, D) float32
    scale = 1.0 / math.sqrt(d)

    complete = [r for r in range(num_records) if int(((record == r) & is_id).sum()) == spec.id_len]
    id_template = k_shared[spec.id_offset: spec.id_offset + spec.id_len].sum(0) * content  # (Hkv, D)
    num_per_head = min(group, spec.targets_per_query)
    q_pos = torch.full((spec.num_queries,), n)
    queries = torch.empty(spec.num_queries, hq, d)
    targets = torch.empty(spec.num_queries, hkv, num_per_head * spec.id_len, dtype=torch.int64)
    for i in range(spec.num_queries):
        chosen = torch.tensor(complete)[torch.randperm(len(complete), generator=gen)[: spec.targets_per_query]]
        for g in range(hkv):
            head_records = [int(chosen[(g + j) % len(chosen)]) for j in range(group)]
            targets[i, g] = torch.sort(torch.nonzero(is_id & torch.isin(record, torch.tensor(head_records))).flatten()).values
            for j, r in enumerate(head_records):
                target_mask = is_id & (record == r)
                own = ident[target_mask, g].sum(0)
                parts = apply_rope(torch.stack([id_template[g], own])[:, None], torch.full((2,), n), model.rope)[:, 0]
                logit_t, logit_o = (parts @ keys[:, g].T * scale).unbind(0)  # (L,) each
                a = spec.field_logit / _gap(logit_t[is_id].mean(), logit_t.mean(), "field")
                b = spec.target_logit / _gap(logit_o[target_mask].mean(), logit_o[is_id & ~target_mask].mean(), "target")
                queries[i, g * group + j] = a * id_template[g] + b * own
    queries = apply_rope(queries.reshape(-1, 1, d), q_pos.repeat_interleave(hq), model.rope).view(-1, hq, d)
    bf16 = torch.bfloat16
    return LayerData(keys.to(bf16), v.view(-1, hkv, d).to(bf16), positions, queries.to(bf16), q_pos, scale, targets)


def _gap(high: torch.Tensor, low: torch.Tensor, what: str) -> float:
    gap = float(high - low)
    if gap <= 0:
        raise ValueError(f"synthetic query calibration: the {what} direction does not separate its tokens "
                         f"(gap {gap:.3g}): too few rotary pairs turn slowly enough over this context (head_dim, rope theta)")
    return gap
