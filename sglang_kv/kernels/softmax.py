"""The batched selection's softmax and GQA max in one launch.

- :func:`group_max_softmax_batch`: per request ``b`` and kv head ``h``, the softmax over the request's
  ``length_b`` tokens of each query head's scaled logits, then the max over the GQA group; columns
  past ``length_b`` get ``-1`` (below every probability, so a top-k never picks them). It replaces
  four torch passes over the ``[B, Hq, L]`` logits (scale, softmax, max, mask) with two reads of the
  valid columns and one write of ``[B, Hkv, L]``.
- :func:`group_max_softmax_batch_ref`: its torch path (the reference the kernel is tested against).

``config=None`` runs ``DEFAULT_CONFIG`` (below: why never a timed pick); ``SOFTMAX_CONFIGS`` are the
block sizes the kernel supports (tested, and benchmarked by passing ``config``).
"""

from __future__ import annotations

import torch

from sglang_kv.kernels._triton_utils import (
    check_config, check_kernel_device, check_out, next_pow2,
)
from sglang_kv.kernels.higgs import KernelConfig

SOFTMAX_CONFIGS = [KernelConfig(1024, 4), KernelConfig(2048, 8), KernelConfig(512, 4), KernelConfig(4096, 8)]
# what config=None runs, never a timed pick: the block size changes the order of the running sums of
# exponentials, so the probabilities' last bits, and a selection at near-ties, would depend on timing.
# The timed pick's winner at Llama-3.1-8B's 32 x 64K (results/logs/profile_head_32x64k_h200_61964a1.log):
# 0.202 ms, against 0.206 for 2048 / 8 warps and 0.318 for 1024 / 4 warps.
DEFAULT_CONFIG = KernelConfig(4096, 8)


def group_max_softmax_batch_ref(logits: torch.Tensor, lengths: torch.Tensor, num_kv_heads: int,
                                scale: float) -> torch.Tensor:
    """Torch path of :func:`group_max_softmax_batch` (float32 ``[B, Hkv, L]``)."""
    batch, num_q_heads, width = logits.shape
    valid = torch.arange(width, device=logits.device) < lengths.to(logits.device).long()[:, None, None]
    probs = torch.softmax(torch.where(valid, logits.float() * scale, float("-inf")), dim=-1)
    scores = probs.view(batch, num_kv_heads, num_q_heads // num_kv_heads, width).amax(dim=2)
    return scores.masked_fill(~valid, -1.0)


def group_max_softmax_batch(logits: torch.Tensor, lengths: torch.Tensor, num_kv_heads: int, scale: float, *,
                            out: torch.Tensor | None = None, config: KernelConfig | None = None) -> torch.Tensor:
    """Selection scores of a batch from its landmark logits.

    logits: float32 ``[B, Hq, L]`` (query heads of one kv head contiguous; last dimension contiguous;
    columns at or past ``lengths[b]`` are never read, so they may hold anything). lengths: int32
    ``[B]`` on the logits' device, each in ``[1, L]`` (not checked on the device). Returns float32
    ``out [B, Hkv, L]``: ``max_i softmax(scale * logits[b, h * g + i, :lengths[b]])`` padded with
    ``-1``, equal to :func:`group_max_softmax_batch_ref` to float32 rounding.
    """
    if logits.dim() != 3 or logits.dtype != torch.float32 or logits.stride(-1) != 1:
        raise ValueError(f"logits must be float32 [B, Hq, L] with a contiguous last dimension, got "
                         f"{logits.dtype} {tuple(logits.shape)} strides {logits.stride()}")
    batch, num_q_heads, width = logits.shape
    if num_kv_heads < 1 or num_q_heads % num_kv_heads:
        raise ValueError(f"{num_q_heads} query heads are not a multiple of num_kv_heads={num_kv_heads}")
    if lengths.dtype != torch.int32 or lengths.shape != (batch,) or lengths.device != logits.device:
        raise ValueError(f"lengths must be int32 [{batch}] on {logits.device}, got {lengths.dtype} "
                         f"{tuple(lengths.shape)} on {lengths.device}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    check_kernel_device(logits.device, "logits")
    shape = (batch, num_kv_heads, width)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32, device=logits.device)
    check_out(out, shape, (torch.float32,), logits.device, "out")
    if batch == 0 or width == 0:
        return out
    from sglang_kv.kernels.softmax_triton import group_max_softmax_kernel

    gqa = num_q_heads // num_kv_heads

    def run(cfg: KernelConfig) -> None:
        group_max_softmax_kernel[(num_kv_heads, batch)](
            logits, lengths, out, width, logits.stride(0), logits.stride(1), out.stride(0), out.stride(1),
            float(scale), GQA=gqa, GQA_PAD=next_pow2(gqa), BLOCK=cfg.block,
            num_warps=cfg.num_warps)

    config = DEFAULT_CONFIG if config is None else config
    check_config(config, 1)
    run(config)
    return out
