"""Oracle: exact top-k by exact attention scores, the upper bound any selector can reach."""

from __future__ import annotations

import torch

from sglang_kv.select.base import Selector, group_max_softmax, topk_sorted


class OracleSelector(Selector):
    """Keeps the exact candidate keys; selects by their exact attention scores.

    Summary: ``keys`` as ``[num_kv_heads, num_tokens, head_dim]`` (a full-precision copy, so its
    device bytes equal the stock key cache of those tokens).
    """

    name = "oracle"

    def build(self, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return keys.transpose(0, 1).contiguous()  # (Hkv, L, D)

    def select(self, q: torch.Tensor, summary: torch.Tensor, k: int, scale: float) -> torch.Tensor:
        hkv, num_tokens, d = summary.shape
        q_grouped = q.view(hkv, -1, d).to(summary.dtype)  # (Hkv, G, D)
        logits = torch.einsum("hgd,hld->hgl", q_grouped.float(), summary.float()) * scale
        scores = group_max_softmax(logits.reshape(-1, num_tokens), hkv)  # (Hkv, L)
        return topk_sorted(scores, k)

    def summary_bytes(self, summary: torch.Tensor) -> int:
        return summary.numel() * summary.element_size()
