"""Sparse decode attention read straight from the selected rows and the KV pool, in one launch (two with
splits).

- :func:`sparse_decode_attention_rows`: per request ``b`` and kv head ``h``, the attention of the
  head's GQA query heads over its ``n`` selected tokens (rows ``sel_rows[b, h]`` of ``sel_k`` /
  ``sel_v``) and the request's ``m`` exact window tokens (pool rows ``win_rows[b]`` of ``win_k`` /
  ``win_v`` at head ``h``). It replaces the decode path's gather of the selected rows
  (``kv_rows[0][inverse]``), the gather of the window from the pool, their ``torch.cat`` and the SDPA
  call: on the H200 at 32 requests x 2048 selected tokens the index and the cat each cost 0.4-0.66
  ms per layer, far above the bytes they move; the kernel reads every K/V row once, through the row
  ids.
- :func:`sparse_decode_attention_rows_ref`: its torch path (gather, cat, float32 softmax attention;
  the reference the kernel is tested against).

Splits: a program handles one (kv head, request) pair, so a small batch leaves most SMs idle. The
wrapper then cuts each pair's ``n + m`` tokens into ``splits`` contiguous ranges, one program each,
which write float32 partial results (unnormalized output, running max and sum) that a second kernel
merges into ``out``. :func:`split_count` picks the count: enough programs for ``PROGRAMS_PER_SM``
per SM, each range at least ``MIN_SPLIT_BLOCKS`` blocks long, at most ``MAX_SPLITS``; with one split
the first kernel writes ``out`` itself (one launch). A config may force the count (``splits > 0``).

``config=None`` runs ``DEFAULT_CONFIG``, never a timed pick: the block size and the warps change the
order of the softmax's and the output's float32 sums, so with a pick by timing (``pick_config``) the
rounding depends on which config won in that process. The likely cause of two servers started
together decoding different greedy tokens from the same prompts (on the H200,
``scripts/gpu/decode_graph_probe.py``, 2026-12-03; with the fixed config all four probe servers agreed,
2026-12-04). ``DEFAULT_CONFIG`` was the fastest of ``ATTENTION_CONFIGS`` at 32 x 64K, 3.125%
(``scripts/gpu/attention_sweep.py``). ``ATTENTION_CONFIGS`` are the other configs the
kernel supports (tested, and benchmarked by passing ``config``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sglang_kv.kernels._triton_utils import (
    cdiv, check_config, check_kernel_device, check_out, device_sms, is_interpreter, next_pow2,
)
from sglang_kv.kernels.higgs import INDEX_DTYPES, OUT_DTYPES

FLOAT_DTYPES = OUT_DTYPES  # bfloat16, float16, float32 (queries, K/V rows and outputs)


class AttentionConfig(NamedTuple):
    block: int  # tokens per loop iteration (a power of two >= 16: a tl.dot operand dimension)
    num_warps: int
    splits: int = 0  # programs per (kv head, request), each over a contiguous token range; 0: split_count
    num_stages: int = 3  # software-pipelining depth of the token loops (Triton's default)


ATTENTION_CONFIGS = [AttentionConfig(block, warps) for block in (64, 32, 128) for warps in (4, 8)]
# what config=None runs: the results depend only on the shapes. (No timed pick of this kernel was
# logged; its speed against the others at the served shapes is not yet measured.)
DEFAULT_CONFIG = ATTENTION_CONFIGS[0]

PROGRAMS_PER_SM = 2  # split_count aims for this many programs per SM ...
MIN_SPLIT_BLOCKS = 4  # ... without cutting a token range below this many blocks
MAX_SPLITS = 32


def split_count(programs: int, num_tokens: int, block: int, sms: int) -> int:
    """Token-range splits per (kv head, request) for ``programs`` such pairs of ``num_tokens`` tokens
    each: ``ceil(PROGRAMS_PER_SM * sms / programs)``, at most ``num_tokens // (MIN_SPLIT_BLOCKS *
    block)`` and ``MAX_SPLITS``, at least 1."""
    wanted = cdiv(PROGRAMS_PER_SM * sms, programs)
    longest = num_tokens // (MIN_SPLIT_BLOCKS * block)
    return max(1, min(wanted, longest, MAX_SPLITS))


def split_tokens(num_tokens: int, splits: int, block: int) -> tuple[int, int]:
    """``(tokens per split, splits)``: ``splits`` ranges rounded up to whole blocks, then only as many as
    hold a token (so no split is empty)."""
    per_split = cdiv(cdiv(num_tokens, block), splits) * block
    return per_split, cdiv(num_tokens, per_split)


def sparse_decode_attention_rows_ref(q: torch.Tensor, sel_k: torch.Tensor, sel_v: torch.Tensor,
                                     sel_rows: torch.Tensor, win_k: torch.Tensor, win_v: torch.Tensor,
                                     win_rows: torch.Tensor, scale: float) -> torch.Tensor:
    """Torch path of :func:`sparse_decode_attention_rows` (``[B, Hq, Dv]`` in q's dtype)."""
    batch, num_q_heads, head_dim = q.shape
    num_kv_heads = win_k.shape[1]
    k = torch.cat([sel_k[sel_rows.long()], win_k[win_rows.long()].transpose(1, 2)], dim=2)  # (B, Hkv, n+m, D)
    v = torch.cat([sel_v[sel_rows.long()], win_v[win_rows.long()].transpose(1, 2)], dim=2)  # (B, Hkv, n+m, Dv)
    q_groups = q.float().view(batch, num_kv_heads, num_q_heads // num_kv_heads, head_dim)  # (B, Hkv, GQA, D)
    probs = torch.softmax(q_groups @ k.float().transpose(-1, -2) * scale, dim=-1)  # (B, Hkv, GQA, n+m)
    return (probs @ v.float()).view(batch, num_q_heads, v.shape[-1]).to(q.dtype)


def sparse_decode_attention_rows(q: torch.Tensor, sel_k: torch.Tensor, sel_v: torch.Tensor,
                                 sel_rows: torch.Tensor, win_k: torch.Tensor, win_v: torch.Tensor,
                                 win_rows: torch.Tensor, scale: float, *, out: torch.Tensor | None = None,
                                 config: AttentionConfig | None = None) -> torch.Tensor:
    """Decode attention of each kv head's query heads over its selected rows and the request's window.

    q: ``[B, Hq, D]`` (query heads ``h * GQA .. h * GQA + GQA - 1`` belong to kv head ``h``). sel_k
    ``[R, D]``, sel_v ``[R, Dv]``: the selected rows; sel_rows int64/int32 ``[B, Hkv, n]``: row of
    token ``j`` of kv head ``h`` of request ``b``. win_k ``[P, Hkv, D]``, win_v ``[P, Hkv, Dv]``: the KV
    pool; win_rows int64/int32 ``[B, m]``: pool rows of request ``b``'s window, shared by its kv heads.
    ``n + m >= 1``; row ids are not checked on the device. Float tensors are bfloat16, float16 or
    float32 (K/V converted on load; a 16-bit dot where q and K, or p and V, share a 16-bit dtype, else
    float32), any strides but a contiguous last dimension. Returns ``out [B, Hq, Dv]`` in q's dtype:
    ``softmax(scale * q k^T) v`` over the ``n + m`` tokens, equal to
    :func:`sparse_decode_attention_rows_ref` to rounding.
    """
    batch, num_q_heads, head_dim, v_head_dim, num_kv_heads = _check_inputs(
        q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, scale)
    if config is not None:
        check_attention_config(config)
    shape = (batch, num_q_heads, v_head_dim)
    if out is None:
        out = torch.empty(shape, dtype=q.dtype, device=q.device)
    check_out(out, shape, (q.dtype,), q.device, "out")
    if batch == 0:
        return out
    from sglang_kv.kernels.attention_triton import merge_splits_kernel, sparse_decode_attention_kernel

    num_sel, num_win = sel_rows.shape[2], win_rows.shape[1]
    num_tokens = num_sel + num_win
    gqa = num_q_heads // num_kv_heads

    def run(cfg: AttentionConfig) -> None:
        splits = cfg.splits or split_count(batch * num_kv_heads, num_tokens, cfg.block, device_sms(q.device))
        per_split, splits = split_tokens(num_tokens, splits, cfg.block)
        if splits > 1:
            part_acc = torch.empty((batch, num_q_heads, splits, v_head_dim), dtype=torch.float32, device=q.device)
            part_stats = torch.empty((2, batch, num_q_heads, splits), dtype=torch.float32, device=q.device)
        else:
            part_acc = part_stats = out  # not written
        sparse_decode_attention_kernel[(num_kv_heads, batch, splits)](
            *kernel_args(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, scale, out, part_acc, part_stats,
                         per_split),
            GQA=gqa, GQA_PAD=max(16, next_pow2(gqa)), D=head_dim, D_PAD=max(16, next_pow2(head_dim)),
            DV=v_head_dim, DV_PAD=max(16, next_pow2(v_head_dim)), BLOCK=cfg.block, SPLIT=splits > 1,
            DOT_BF16=not is_interpreter(),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages)
        if splits > 1:
            merge_splits_kernel[(num_q_heads, batch)](
                part_acc, part_stats, out, splits, out.stride(0), out.stride(1),
                DV=v_head_dim, DV_PAD=next_pow2(v_head_dim), SPLITS_PAD=next_pow2(splits), num_warps=4)

    run(DEFAULT_CONFIG if config is None else config)
    return out


def kernel_args(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, scale, out, part_acc, part_stats,
                per_split) -> tuple:
    """The positional (non-constexpr) arguments of ``sparse_decode_attention_kernel``, in its order."""
    return (q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, out, part_acc, part_stats,
            sel_rows.shape[2], win_rows.shape[1], per_split, float(scale),
            q.stride(0), q.stride(1), sel_k.stride(0), sel_v.stride(0), *sel_rows.stride(),
            win_k.stride(0), win_k.stride(1), win_v.stride(0), win_v.stride(1), *win_rows.stride(),
            out.stride(0), out.stride(1))


def check_attention_config(config: AttentionConfig) -> None:
    """Raise ``ValueError`` unless the kernel can run ``config``."""
    check_config(config, 16)
    if config.splits < 0 or config.num_stages < 1:
        raise ValueError(f"config: need splits >= 0 (0: automatic) and num_stages >= 1, got {config}")


def _check_inputs(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, scale) -> tuple[int, int, int, int, int]:
    """Raise ``ValueError`` unless the kernel can read the inputs; ``(B, Hq, D, Dv, Hkv)``."""
    for name, t, dims in (("q", q, "[B, Hq, D]"), ("sel_k", sel_k, "[R, D]"), ("sel_v", sel_v, "[R, Dv]"),
                          ("win_k", win_k, "[P, Hkv, D]"), ("win_v", win_v, "[P, Hkv, Dv]")):
        if t.dim() != dims.count(",") + 1 or t.dtype not in FLOAT_DTYPES or (t.numel() and t.stride(-1) != 1):
            raise ValueError(f"{name} must be {dims} in one of {FLOAT_DTYPES} with a contiguous last "
                             f"dimension, got {t.dtype} {tuple(t.shape)} strides {t.stride()}")
    batch, num_q_heads, head_dim = q.shape
    num_kv_heads, v_head_dim = win_k.shape[1], win_v.shape[2]
    if sel_k.shape[1] != head_dim or win_k.shape[2] != head_dim:
        raise ValueError(f"head dims differ: q {head_dim}, sel_k {sel_k.shape[1]}, win_k {win_k.shape[2]}")
    if sel_v.shape[1] != v_head_dim or v_head_dim < 1:
        raise ValueError(f"value head dims differ: sel_v {sel_v.shape[1]}, win_v {v_head_dim}")
    if sel_v.shape[0] != sel_k.shape[0] or win_v.shape[:2] != win_k.shape[:2]:
        raise ValueError(f"K and V rows differ: sel_k {tuple(sel_k.shape)} / sel_v {tuple(sel_v.shape)}, "
                         f"win_k {tuple(win_k.shape)} / win_v {tuple(win_v.shape)}")
    if num_kv_heads < 1 or num_q_heads < 1 or num_q_heads % num_kv_heads:
        raise ValueError(f"{num_q_heads} query heads are not a multiple of {num_kv_heads} kv heads (win_k dim 1)")
    if sel_rows.dtype not in INDEX_DTYPES or sel_rows.dim() != 3 or sel_rows.shape[:2] != (batch, num_kv_heads):
        raise ValueError(f"sel_rows must be int32/int64 [{batch}, {num_kv_heads}, n], got {sel_rows.dtype} "
                         f"{tuple(sel_rows.shape)}")
    if win_rows.dtype not in INDEX_DTYPES or win_rows.dim() != 2 or win_rows.shape[0] != batch:
        raise ValueError(f"win_rows must be int32/int64 [{batch}, m], got {win_rows.dtype} {tuple(win_rows.shape)}")
    if sel_rows.shape[2] + win_rows.shape[1] < 1:
        raise ValueError("no tokens to attend: sel_rows and win_rows are both empty (n + m must be >= 1)")
    for name, t in (("sel_k", sel_k), ("sel_v", sel_v), ("sel_rows", sel_rows), ("win_k", win_k),
                    ("win_v", win_v), ("win_rows", win_rows)):
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device}, q on {q.device}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    check_kernel_device(q.device, "q")
    return batch, num_q_heads, head_dim, v_head_dim, num_kv_heads
