"""Selection fidelity: how close each selector's sparse attention comes to exact attention.

For every layer, decode query, selector variant and budget (``k = ceil(budget * prompt_len)``
selected tokens per kv head, on top of the method's exact windows), with ``p_h`` the exact softmax of
query head ``h`` over every token it attends to (prompt and generated), ``A_g`` the tokens kv head
``g`` attends to (sink, local and generated windows plus the selection) and ``S_g`` the selection:

* ``mass``: ``mean_h sum_{t in A_g(h)} p_h(t)``, the exact attention mass the attended set captures,
  averaged over query heads (then over queries and layers). 1 means nothing was missed.
* ``recall``: the same mass measured on the selection alone and relative to the best possible
  selection of the same size: ``sum_g sum_{t in S_g} s_g(t) / sum_g max_{|T| = |S_g|} sum_{t in T} s_g(t)``
  with ``s_g(t) = max_{h in g} softmax_h(t)`` over the candidate tokens, the exact group-max score every
  selector approximates. The oracle selector picks exactly that maximum, so its recall is 1 and no
  selector can exceed it (with the per-head ``mass`` a selector could, by a hair: the group max is not
  the group mean).
* ``out_err``: ``||o - o*|| / ||o*||`` over all query heads of one query, ``o`` the attention output over
  ``[sink | selected | local | generated]`` with the K/V the method delivers (``Selector.gather``:
  dequantized, rebuilt), ``o*`` exact attention; ``out_err_exact_kv``: the same with exact K/V on the
  selected tokens (the part of the error due to selection alone).
* ``target_recall`` (synthetic layers): the share of the tokens a kv head's query heads look for that
  it attends to.
* bytes: ``gpu_bytes_per_token`` (device summary plus the exact windows, per prompt token and layer),
  ``host_bytes_per_token``, ``pcie_bytes_per_step`` (measured ``load_bytes`` of the selections, per
  layer and for the whole model, no cache of earlier steps) and the analytic bound ``step_bytes``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

from sglang_kv.bench.shapes import ModelSpec
from sglang_kv.bench.synthetic import LayerData
from sglang_kv.config import OffloadConfig
from sglang_kv.select import make_selector
from sglang_kv.select.attention import windowed_decode_attention
from sglang_kv.select.base import EXACT_BYTES, Selector

DEFAULT_SELECTORS = ("oracle", "yakv", "yakv:key_rope=pre", "yakv:landmark_residual=4", "shadowkv", "quest")
DEFAULT_BUDGETS = (0.015625, 0.03125, 0.0625)
METRICS = ("recall", "mass", "target_recall", "out_err", "out_err_exact_kv", "pcie_bytes_per_step_layer")


@dataclass(frozen=True)
class Variant:
    """A selector with its config and method options, e.g. ``yakv:key_rope=pre,landmark_residual=4``."""

    label: str
    method: str
    config: OffloadConfig
    options: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Variant":
        method, _, rest = text.partition(":")
        fields = {f.name for f in dataclasses.fields(OffloadConfig)}
        overrides, options = {}, {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--selectors: expected name:key=value[,key=value], got {text!r}")
            (overrides if key in fields else options)[key] = _parse_value(value)
        try:
            config = OffloadConfig(method=method, **overrides)
        except TypeError as e:
            raise ValueError(f"--selectors {text!r}: {e}") from e
        return cls(text, method, config, options)

    def make(self, model: ModelSpec) -> Selector:
        return make_selector(self.method, model.shape, self.config, model.rope, **self.options)


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def budget_tokens(budget: float, prompt_len: int) -> int:
    """Selected tokens per kv head, as ``OffloadConfig.budget_tokens``."""
    return max(1, math.ceil(budget * prompt_len)) if budget <= 1 else int(budget)


def _exact(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact attention of one query: probs float32 ``[Hq, T]`` and output ``[Hq, D]``.
    q ``[Hq, D]``, keys/values ``[T, Hkv, D]``."""
    group = q.shape[0] // keys.shape[1]
    k = keys.float().repeat_interleave(group, dim=1)  # (T, Hq, D)
    v = values.float().repeat_interleave(group, dim=1)
    probs = torch.softmax(torch.einsum("hd,thd->ht", q.float(), k) * scale, dim=-1)
    return probs, torch.einsum("ht,thd->hd", probs, v)


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref).norm() / ref.norm().clamp_min(1e-30))


@dataclass
class _Acc:
    """Per (variant, budget): per-query metric values."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    select_s: float = 0.0

    def add(self, **kw: float) -> None:
        for k, v in kw.items():
            self.values[k].append(v)


def evaluate(layers: Iterable[LayerData], model: ModelSpec, variants: Sequence[Variant], budgets: Sequence[float],
             log=print) -> dict[str, Any]:
    """Run every variant and budget over ``layers``; returns the figures (see the module docstring)."""
    accs = {(v.label, b): _Acc() for v in variants for b in budgets}
    builds: dict[str, dict[str, Any]] = {v.label: {"build_s": 0.0} for v in variants}
    selectors = {v.label: v.make(model) for v in variants}
    regime: list[dict[str, float]] = []
    prompt_len = None
    for li, data in enumerate(layers):
        prompt_len = data.keys.shape[0] - data.generated
        ends = [int(qp) + 1 if data.generated else prompt_len for qp in data.query_positions]
        exact = [_exact(q, data.keys[:end], data.values[:end], data.scale) for q, end in zip(data.queries, ends)]
        if data.targets is not None:
            regime.append(_regime(data, exact, model))
        for variant in variants:
            sel, cfg = selectors[variant.label], variant.config
            sink, local = min(cfg.sink, prompt_len), cfg.local
            cand_end = max(sink, prompt_len - local)
            if cand_end - sink <= 0:
                raise ValueError(f"{variant.label}: prompt of {prompt_len} tokens leaves no candidates "
                                 f"(sink {sink}, local {local})")
            t0 = time.perf_counter()
            summary = sel.build(data.keys[sink:cand_end], data.values[sink:cand_end], data.positions[sink:cand_end])
            builds[variant.label]["build_s"] += time.perf_counter() - t0
            if li == 0:
                builds[variant.label].update(measured_gpu_bytes=summary.device_bytes,
                                             measured_host_bytes=summary.payload_bytes,
                                             num_candidates=cand_end - sink)
            for qi, (q, qp) in enumerate(zip(data.queries, data.query_positions)):
                probs, out_ref = exact[qi]
                end = probs.shape[1]
                cand_logits = torch.einsum("gjd,tgd->gjt", q.float().view(model.shape.num_kv_heads, -1, model.shape.head_dim),
                                           data.keys[sink:cand_end].float()) * data.scale
                s_group = torch.softmax(cand_logits, dim=-1).amax(dim=1)  # (Hkv, Lc) exact group-max scores
                for budget in budgets:
                    k = budget_tokens(budget, prompt_len)
                    t0 = time.perf_counter()
                    idx = sel.select(q, summary, k, data.scale)  # (Hkv, n)
                    acc = accs[(variant.label, budget)]
                    acc.select_s += time.perf_counter() - t0
                    acc.add(**_query_metrics(sel, summary, data, q, idx, probs, out_ref, s_group,
                                             sink, cand_end, end, qi, model))
        log(f"  layer {li}: done")
    return _figures(accs, builds, selectors, variants, budgets, model, prompt_len, regime)


def _query_metrics(sel, summary, data, q, idx, probs, out_ref, s_group, sink, cand_end, end, qi, model) -> dict:
    hkv, group = model.shape.num_kv_heads, model.shape.group_size
    n = idx.shape[1]
    best = torch.topk(s_group, n, dim=-1).values.sum()
    recall = float(s_group.gather(1, idx).sum() / best)
    attended = torch.zeros(hkv, end, dtype=torch.bool)
    attended[:, :sink] = True
    attended[:, cand_end:] = True
    attended.scatter_(1, idx + sink, True)
    mass = float((probs * attended.repeat_interleave(group, 0)).sum(-1).mean())
    target_recall = float("nan")
    if data.targets is not None:
        target_recall = float(attended.gather(1, data.targets[qi]).float().mean())
    prompt_len = data.keys.shape[0] - data.generated
    windows = dict(sink=_window(data, 0, sink), local=_window(data, cand_end, prompt_len),
                   generated=_window(data, prompt_len, end))
    qf = q.float()
    out = windowed_decode_attention(qf, sel.gather(summary, idx), data.scale, **windows)
    heads = torch.arange(hkv)[:, None]
    exact_sel = (data.keys[idx + sink, heads].float(), data.values[idx + sink, heads].float())
    out_exact_kv = windowed_decode_attention(qf, exact_sel, data.scale, **windows)
    return dict(recall=recall, mass=mass, target_recall=target_recall, out_err=_rel_err(out, out_ref),
                out_err_exact_kv=_rel_err(out_exact_kv, out_ref),
                pcie_bytes_per_step_layer=float(sel.load_bytes(summary, idx)))


def _window(data: LayerData, start: int, stop: int):
    if stop <= start:
        return None
    return data.keys[start:stop].float(), data.values[start:stop].float()


def _regime(data: LayerData, exact, model: ModelSpec) -> dict[str, float]:
    """How the exact attention of the synthetic queries is spread (describes the workload)."""
    group = model.shape.group_size
    target_mass, top1 = [], []
    for qi, (probs, _) in enumerate(exact):
        mask = torch.zeros(model.shape.num_kv_heads, probs.shape[1], dtype=torch.bool)
        mask.scatter_(1, data.targets[qi], True)
        target_mass.append(float((probs * mask.repeat_interleave(group, 0)).sum(-1).mean()))
        top1.append(float(probs.topk(max(1, probs.shape[1] // 100), dim=-1).values.sum(-1).mean()))
    return {"target_mass": sum(target_mass) / len(target_mass), "top_1pct_mass": sum(top1) / len(top1)}


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else None


def _figures(accs, builds, selectors, variants, budgets, model, prompt_len, regime) -> dict[str, Any]:
    rows = []
    width_bytes = model.shape.kv_width * EXACT_BYTES
    for variant in variants:
        sel, cfg = selectors[variant.label], variant.config
        num_cand = builds[variant.label]["num_candidates"]
        foot = sel.footprint(num_cand)
        windows = min(cfg.sink, prompt_len) + min(cfg.local, prompt_len)
        for budget in budgets:
            acc = accs[(variant.label, budget)]
            k = budget_tokens(budget, prompt_len)
            pcie_layer = _mean(acc.values["pcie_bytes_per_step_layer"])
            rows.append({
                "selector": variant.label,
                "budget": budget,
                "budget_tokens": k,
                "local": cfg.local,
                "sink": cfg.sink,
                "num_queries": len(acc.values["recall"]),
                "recall": _mean(acc.values["recall"]),
                "recall_min": min(acc.values["recall"]),
                "mass": _mean(acc.values["mass"]),
                "target_recall": _mean(acc.values["target_recall"]),
                "out_err": _mean(acc.values["out_err"]),
                "out_err_exact_kv": _mean(acc.values["out_err_exact_kv"]),
                "gpu_bytes_per_token": (foot.gpu_bytes + 2 * windows * width_bytes) / prompt_len,
                "summary_gpu_bytes_per_candidate": foot.gpu_bytes / num_cand,
                "host_bytes_per_token": foot.host_bytes / prompt_len,
                "pcie_bytes_per_step_layer": pcie_layer,
                "pcie_bytes_per_step_model": pcie_layer * model.num_layers,
                "pcie_bound_per_step_layer": sel.step_bytes(num_cand, k).pcie_bytes,
                "hbm_bytes_per_step_layer": sel.step_bytes(num_cand, k).hbm_bytes,
                "select_ms_per_query": 1000 * acc.select_s / max(1, len(acc.values["recall"])),
            })
    return {
        "rows": rows,
        "stock_bf16_bytes_per_token": 2 * width_bytes,
        "builds": {label: {**b, "footprint": selectors[label].footprint(b["num_candidates"])._asdict()}
                   for label, b in builds.items()},
        "exact_attention": ({k: sum(r[k] for r in regime) / len(regime) for k in regime[0]} if regime else None),
    }


def format_table(figures: dict[str, Any]) -> str:
    """The rows as a Markdown table (the README's results table)."""
    head = ("| selector | budget | k | recall | mass | target recall | out err | out err (exact KV) "
            "| GPU B/token | host B/token | PCIe MB/step (model) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in figures["rows"]:
        tr = "-" if r["target_recall"] is None else f"{r['target_recall']:.3f}"
        lines.append(f"| {r['selector']} | {r['budget']:.4%} | {r['budget_tokens']} | {r['recall']:.3f} | {r['mass']:.3f} "
                     f"| {tr} | {r['out_err']:.3f} | {r['out_err_exact_kv']:.3f} | {r['gpu_bytes_per_token']:.0f} "
                     f"| {r['host_bytes_per_token']:.0f} | {r['pcie_bytes_per_step_model'] / 1e6:.1f} |")
    return "\n".join(lines)
