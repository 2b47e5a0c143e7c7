"""Reference sparse decode attention over per-kv-head token sets, in torch."""

from __future__ import annotations

import torch
from torch.nn.functional import scaled_dot_product_attention


def sparse_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention of one decode query over each kv head's own set of tokens.

    q: ``[num_q_heads, head_dim]``; k: ``[num_kv_heads, n, head_dim]``; v: ``[num_kv_heads, n, v_head_dim]``
    (token ``j`` of kv head ``h`` may be a different position for every head; query heads of one
    kv head are contiguous). Returns ``[num_q_heads, v_head_dim]``.

    Uses the same SDPA call and layout as SGLang's torch_native decode, so attending over every
    token in position order reproduces the stock output bit for bit.
    """
    if k.dtype != q.dtype:
        k, v = k.to(q.dtype), v.to(q.dtype)
    out = scaled_dot_product_attention(
        q.unsqueeze(1).unsqueeze(0),  # (1, Hq, 1, D)
        k.unsqueeze(0),  # (1, Hkv, n, D)
        v.unsqueeze(0),
        enable_gqa=q.shape[0] != k.shape[0],
        scale=scale,
    )
    return out[0, :, 0, :]
