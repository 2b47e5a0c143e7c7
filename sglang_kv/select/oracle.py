"""Oracle: exact top-k by exact attention scores, the upper bound any selector can reach."""

from __future__ import annotations

import torch

from sglang_kv.select.base import (EXACT_BYTES, Footprint, LayerSummary, Selector, StepBytes, group_max_softmax, take,
                                   topk_sorted)


class OracleSelector(Selector):
    """Keeps the exact candidate keys on the GPU and selects by their exact attention scores.

    Summary: ``device["keys"]`` ``[num_kv_heads, num_tokens, head_dim]`` (an exact copy, as many bytes
    as the stock key cache of those tokens); ``payload["values"]`` ``[num_tokens, num_kv_heads,
    head_dim]`` exact. Per token and layer: GPU ``Hkv * D * 2`` B, host ``Hkv * D * 2`` B; per step the
    selected values, ``Hkv * k * D * 2`` B.
    """

    name = "oracle"

    def _build(self, keys, values, positions) -> LayerSummary:
        return LayerSummary(
            num_tokens=keys.shape[0],
            positions=positions,
            device={"keys": keys.transpose(0, 1).contiguous()},  # (Hkv, L, D)
            payload={"values": values.contiguous()},  # (L, Hkv, D)
        )

    def select(self, q: torch.Tensor, summary: LayerSummary, k: int, scale: float) -> torch.Tensor:
        self._check_q(q)
        keys = summary.device["keys"]
        hkv, num_tokens, d = keys.shape
        q_grouped = q.view(hkv, -1, d)  # (Hkv, G, D)
        logits = torch.einsum("hgd,hld->hgl", q_grouped.float(), keys.float()) * scale
        scores = group_max_softmax(logits.reshape(-1, num_tokens), hkv)  # (Hkv, L)
        return topk_sorted(scores, k)

    def gather(self, summary, index, dtype=torch.float32):
        heads = torch.arange(index.shape[0], device=index.device)[:, None]
        k = summary.device["keys"][heads, index]
        v = take(summary.payload["values"], index, heads)
        return k.to(dtype), v.to(dtype)

    def footprint(self, num_tokens: int) -> Footprint:
        per_token = self.shape.kv_width * EXACT_BYTES
        return Footprint(gpu_bytes=num_tokens * per_token, host_bytes=num_tokens * per_token)

    def step_bytes(self, num_tokens: int, k: int) -> StepBytes:
        n = min(k, num_tokens)
        head_bytes = self.shape.head_dim * EXACT_BYTES
        return StepBytes(pcie_bytes=self.shape.num_kv_heads * n * head_bytes,
                         hbm_bytes=num_tokens * self.shape.kv_width * EXACT_BYTES + self.shape.num_kv_heads * n * head_bytes)

    def load_bytes(self, summary, index) -> int:
        return index.numel() * self.shape.head_dim * summary.payload["values"].element_size()
