"""Quest: pages of keys summarized by their elementwise min and max; all K/V stays on the GPU.

Page score per query head ``sum_d max(q_d * min_d, q_d * max_d)`` (an upper bound of ``q . k`` over
the page's keys). Quest's paper (MHA models) takes the top pages per head on the raw bound; for GQA we
follow the shared convention of ``base``: softmax of ``scale * bound`` over the pages per query head,
max over the GQA group, top pages per kv head, tokens of the ranked pages cut at ``k``.

Summary: ``device["kmin"]``, ``device["kmax"]`` ``[num_pages, num_kv_heads, head_dim]`` and the exact
``device["keys"]``, ``device["values"]`` ``[num_tokens, num_kv_heads, head_dim]``; no payload.
Per token and layer (``L`` a multiple of the page): GPU ``Hkv * D * 2 * (2 + 2 / page)`` B, host 0 B,
PCIe 0 B per step (Quest saves bandwidth, not capacity).
"""

from __future__ import annotations

import math

import torch

from sglang_kv.select.base import (EXACT_BYTES, Footprint, LayerSummary, Selector, StepBytes, blocks_to_tokens,
                                   group_max_softmax, knob)


class QuestSelector(Selector):
    name = "quest"

    def __init__(self, shape, config=None, rope=None):
        super().__init__(shape, config, rope)
        self.page = knob(config, "quest_page", self.name)

    def _build(self, keys, values, positions) -> LayerSummary:
        num_tokens, hkv, d = keys.shape
        num_pages = math.ceil(num_tokens / self.page)
        pad = num_pages * self.page - num_tokens
        kf = keys.float()
        # a short last page is padded with its own last key, which changes neither min nor max
        padded = torch.cat([kf, kf[-1:].expand(pad, -1, -1)]) if pad else kf
        pages = padded.view(num_pages, self.page, hkv, d)
        return LayerSummary(
            num_tokens=num_tokens,
            positions=positions,
            device={"kmin": pages.amin(1).to(keys.dtype), "kmax": pages.amax(1).to(keys.dtype),
                    "keys": keys.contiguous(), "values": values.contiguous()},
        )

    def select(self, q, summary, k, scale):
        self._check_q(q)
        kmin, kmax = summary.device["kmin"].float(), summary.device["kmax"].float()  # (P, Hkv, D)
        hkv, d = self.shape.num_kv_heads, self.shape.head_dim
        qg = q.float().view(hkv, -1, d)  # (Hkv, G, D)
        lo = torch.einsum("hgd,phd->hgpd", qg, kmin)
        hi = torch.einsum("hgd,phd->hgpd", qg, kmax)
        bound = torch.maximum(lo, hi).sum(-1) * scale  # (Hkv, G, P)
        scores = group_max_softmax(bound.reshape(-1, bound.shape[-1]), hkv)  # (Hkv, P)
        return blocks_to_tokens(scores, self.page, summary.num_tokens, k)

    def gather(self, summary, index, dtype=torch.float32):
        heads = torch.arange(index.shape[0], device=index.device)[:, None]
        return summary.device["keys"][index, heads].to(dtype), summary.device["values"][index, heads].to(dtype)

    def footprint(self, num_tokens):
        num_pages = math.ceil(num_tokens / self.page)
        width = self.shape.kv_width * EXACT_BYTES
        return Footprint(gpu_bytes=2 * num_tokens * width + 2 * num_pages * width, host_bytes=0)

    def step_bytes(self, num_tokens, k):
        num_pages = math.ceil(num_tokens / self.page)
        width = self.shape.kv_width * EXACT_BYTES
        n = min(k, num_tokens)
        return StepBytes(pcie_bytes=0, hbm_bytes=2 * num_pages * width + 2 * n * width)

    def load_bytes(self, summary, index):
        return 0
