"""The sparse decode attention over gathered rows (``kernels.attention.sparse_decode_attention_rows``)
equals its torch reference and the SDPA path the backend runs today on fresh random inputs: GQA groups
of 1, 3 and 4, head dims 64 and 128 (and odd ones), token counts that are not a multiple of the block,
no selected or no window tokens, strided row stores and pools, mixed dtypes, forced splits (the merge
kernel). Without CUDA the kernels run in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import attention
from sglang_kv.kernels.attention import AttentionConfig
from sglang_kv.select.attention import sparse_decode_attention
from tests.kernels.util import specialization

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
             torch.float16: dict(rtol=5e-3, atol=5e-3)}


def _tolerance(*dtypes):
    """The tolerance of the coarsest dtype among the inputs (16-bit K/V round the probabilities)."""
    return TOLERANCE[max(dtypes, key=lambda dtype: TOLERANCE[dtype]["rtol"])]


def _inputs(gen, batch, num_q_heads, num_kv_heads, head_dim, num_sel, num_win, q_dtype=torch.float32,
            sel_dtype=None, win_dtype=None, v_head_dim=None, pool_rows=64, index_dtype=torch.int64):
    """``(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows)``: the selected rows are column views of one
    wide store (row stride > D + Dv), the pool K/V are views of a ``[Hkv, 2, P, D]`` buffer (strided
    in dims 0 and 1); the row ids are distinct selected rows and random pool rows."""
    v_head_dim = v_head_dim or head_dim
    sel_dtype, win_dtype = sel_dtype or q_dtype, win_dtype or q_dtype
    q = (2.0 * torch.randn(batch, num_q_heads, head_dim, generator=gen)).to(DEVICE, q_dtype)
    num_rows = batch * num_kv_heads * num_sel + 7
    store = torch.randn(num_rows, head_dim + v_head_dim + 8, generator=gen).to(DEVICE, sel_dtype)
    sel_rows = torch.randperm(num_rows, generator=gen)[:batch * num_kv_heads * num_sel]
    pool = torch.randn(num_kv_heads, 2, pool_rows, max(head_dim, v_head_dim), generator=gen).to(DEVICE, win_dtype)
    win_rows = torch.randint(0, pool_rows, (batch, num_win), generator=gen)
    return (q, store[:, :head_dim], store[:, head_dim + 8:],
            sel_rows.view(batch, num_kv_heads, num_sel).to(DEVICE, index_dtype),
            pool[:, 0, :, :head_dim].transpose(0, 1), pool[:, 1, :, :v_head_dim].transpose(0, 1),
            win_rows.to(DEVICE, index_dtype))


def _sdpa_path(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows, scale):
    """What the decode path computes today: gather, cat, SDPA."""
    k_all = torch.cat([sel_k[sel_rows], win_k[win_rows].transpose(1, 2)], dim=2)
    v_all = torch.cat([sel_v[sel_rows], win_v[win_rows].transpose(1, 2)], dim=2)
    return sparse_decode_attention(q, k_all, v_all, scale)


@pytest.mark.parametrize("num_q_heads,num_kv_heads", [(4, 4), (6, 2), (8, 2)])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("config", [AttentionConfig(16, 4), AttentionConfig(32, 4, splits=3)], ids=str)
def test_sparse_decode_attention_rows_equals_reference(num_q_heads, num_kv_heads, head_dim, config):
    gen = torch.Generator().manual_seed(num_q_heads * 1000 + head_dim + config.splits)
    inputs = _inputs(gen, 3, num_q_heads, num_kv_heads, head_dim, num_sel=70, num_win=20)
    scale = head_dim ** -0.5
    got = attention.sparse_decode_attention_rows(*inputs, scale, config=config)
    assert got.shape == (3, num_q_heads, head_dim) and got.dtype == torch.float32
    torch.testing.assert_close(got, attention.sparse_decode_attention_rows_ref(*inputs, scale), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, _sdpa_path(*inputs, scale), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_sel,num_win", [(70, 0), (0, 20), (1, 0), (0, 1), (33, 5), (48, 16)])
@pytest.mark.parametrize("splits", [1, 2, 4])
def test_sparse_decode_attention_rows_token_counts(num_sel, num_win, splits):
    """No window, no selected rows, one token, splits that cut the selected rows, the window or their
    boundary (block 16: 33 + 5 tokens in 2 splits are [0, 32) and [32, 38))."""
    gen = torch.Generator().manual_seed(num_sel * 100 + num_win + splits)
    inputs = _inputs(gen, 2, 6, 2, 64, num_sel, num_win)
    got = attention.sparse_decode_attention_rows(*inputs, 0.125, config=AttentionConfig(16, 4, splits))
    torch.testing.assert_close(got, attention.sparse_decode_attention_rows_ref(*inputs, 0.125), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, _sdpa_path(*inputs, 0.125), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("q_dtype,sel_dtype,win_dtype", [
    (torch.bfloat16, torch.bfloat16, torch.bfloat16), (torch.float16, torch.float16, torch.float16),
    (torch.bfloat16, torch.float32, torch.bfloat16), (torch.float32, torch.bfloat16, torch.float16),
    (torch.float16, torch.bfloat16, torch.float32),
], ids=str)
@pytest.mark.parametrize("splits", [1, 3])
def test_sparse_decode_attention_rows_dtypes(q_dtype, sel_dtype, win_dtype, splits):
    """16-bit and mixed dtypes against the float32 reference over the same (rounded) inputs."""
    gen = torch.Generator().manual_seed(splits)
    inputs = _inputs(gen, 2, 8, 2, 64, 50, 12, q_dtype, sel_dtype, win_dtype)
    got = attention.sparse_decode_attention_rows(*inputs, 0.125, config=AttentionConfig(16, 4, splits))
    want = attention.sparse_decode_attention_rows_ref(*inputs, 0.125)
    assert got.dtype == q_dtype
    torch.testing.assert_close(got, want, **_tolerance(q_dtype, sel_dtype, win_dtype))


@pytest.mark.parametrize("head_dim,v_head_dim", [(64, 32), (40, 24), (128, 80)])
def test_sparse_decode_attention_rows_head_dims(head_dim, v_head_dim):
    """Value heads narrower than key heads, and dims that are not powers of two (masked lanes)."""
    gen = torch.Generator().manual_seed(head_dim + v_head_dim)
    inputs = _inputs(gen, 2, 3, 1, head_dim, 21, 9, v_head_dim=v_head_dim)
    for config in (AttentionConfig(16, 4, 1), AttentionConfig(16, 2, 2)):
        got = attention.sparse_decode_attention_rows(*inputs, 0.2, config=config)
        assert got.shape == (2, 3, v_head_dim)
        torch.testing.assert_close(got, attention.sparse_decode_attention_rows_ref(*inputs, 0.2),
                                   rtol=1e-5, atol=1e-5)


def test_sparse_decode_attention_rows_int32_rows_out_and_auto_config():
    gen = torch.Generator().manual_seed(11)
    inputs = _inputs(gen, 2, 4, 2, 64, 40, 8, index_dtype=torch.int32)
    want = attention.sparse_decode_attention_rows_ref(*inputs, 0.125)
    out = torch.full((2, 4, 64), float("nan"), device=DEVICE)
    got = attention.sparse_decode_attention_rows(*inputs, 0.125, out=out)  # config=None: picked
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    out = torch.full((2, 4, 80), float("nan"), device=DEVICE)[:, :, 8:72]  # a strided out
    attention.sparse_decode_attention_rows(*inputs, 0.125, out=out, config=AttentionConfig(16, 4, 2))
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_sparse_decode_attention_rows_empty_batch():
    gen = torch.Generator().manual_seed(12)
    got = attention.sparse_decode_attention_rows(*_inputs(gen, 0, 4, 2, 64, 5, 3), 0.125)
    assert got.shape == (0, 4, 64)


def test_decode_steps_reuse_one_compiled_variant():
    """Across consecutive decode steps (the selected count growing every few steps, the window every
    step, through every residue mod 16) the attention kernel's arguments keep one specialization, so a
    server compiles it once, not once per value class in its steady decode (as it did on the H200)."""
    from sglang_kv.kernels.attention_triton import sparse_decode_attention_kernel as kernel

    batch, num_q_heads, num_kv_heads, head_dim, block = 3, 8, 4, 64, 64
    keys, unflagged = set(), set()
    for step in range(40):
        num_sel, num_win = 1024 + step // 4, 70 + step  # n: 3.125% of a growing prompt; m: window + generated
        q = torch.empty(batch, num_q_heads, head_dim)
        width = num_sel + step % 3  # the selection's [B, Hkv, width] rows (the batch's largest count), sliced to n
        sel_rows = torch.empty(batch, num_kv_heads, width, dtype=torch.int64)[:, :, :num_sel]
        store = torch.empty(5000, 2, head_dim)
        pool = torch.empty(900, num_kv_heads, 2, head_dim)
        win_rows = torch.empty(batch, num_win, dtype=torch.int64)
        out = torch.empty(batch, num_q_heads, head_dim)
        per_split, _ = attention.split_tokens(num_sel + num_win, 3, block)
        args = attention.kernel_args(q, store[:, 0], store[:, 1], sel_rows, pool[:, :, 0], pool[:, :, 1], win_rows,
                                     0.125, out, out, out, per_split)
        keys.add(specialization(kernel, args))
        unflagged.add(specialization(kernel, args, honor_flags=False))
    assert len(keys) == 1
    assert len(unflagged) > 1  # the check can fail: without the kernel's flags the same steps need several


def test_split_count_rule():
    # 2 requests x 8 kv heads on 132 SMs: 17 splits wanted, 4096 tokens allow 4096 // (4 * 64) = 16
    assert attention.split_count(16, 4096, 64, 132) == 16
    assert attention.split_count(16, 300, 64, 132) == 1  # too few tokens to split
    assert attention.split_count(256, 2148, 64, 132) == 2
    assert attention.split_count(1024, 2148, 64, 132) == 1  # enough programs already
    assert attention.split_count(1, 10 ** 6, 32, 132) == attention.MAX_SPLITS
    assert attention.split_tokens(90, 3, 16) == (32, 3)
    assert attention.split_tokens(38, 4, 16) == (16, 3)  # 3 blocks: the 4th split would be empty


def test_sparse_decode_attention_rows_rejects_bad_input():
    gen = torch.Generator().manual_seed(13)
    q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows = inputs = _inputs(gen, 2, 4, 2, 64, 10, 3)
    run = attention.sparse_decode_attention_rows
    with pytest.raises(ValueError, match="sel_rows must be int32/int64"):
        run(q, sel_k, sel_v, sel_rows.float(), win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="sel_rows must be int32/int64"):
        run(q, sel_k, sel_v, sel_rows[:1], win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="win_rows must be int32/int64"):
        run(q, sel_k, sel_v, sel_rows, win_k, win_v, win_rows[:, :, None], 0.125)
    with pytest.raises(ValueError, match="not a multiple of 2 kv heads"):
        run(q[:, :3], sel_k, sel_v, sel_rows, win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="head dims differ"):
        run(q[..., :32], sel_k, sel_v, sel_rows, win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="value head dims differ"):
        run(q, sel_k, sel_v[:, :32], sel_rows, win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="q must be"):
        run(q.to(torch.float64), sel_k, sel_v, sel_rows, win_k, win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="win_k must be"):
        run(q, sel_k, sel_v, sel_rows, win_k.transpose(1, 2), win_v, win_rows, 0.125)
    with pytest.raises(ValueError, match="n \\+ m must be >= 1"):
        run(q, sel_k, sel_v, sel_rows[..., :0], win_k, win_v, win_rows[:, :0], 0.125)
    with pytest.raises(ValueError, match="scale must be positive"):
        run(*inputs, 0.0)
    with pytest.raises(ValueError, match="out: expected shape"):
        run(*inputs, 0.125, out=torch.empty(2, 4, 32, device=DEVICE))
    with pytest.raises(ValueError, match="out: expected dtype"):
        run(*inputs, 0.125, out=torch.empty(2, 4, 64, device=DEVICE, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="config"):
        run(*inputs, 0.125, config=AttentionConfig(8, 4))
    with pytest.raises(ValueError, match="config"):
        run(*inputs, 0.125, config=AttentionConfig(16, 4, splits=-1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("config", [None, *attention.ATTENTION_CONFIGS, AttentionConfig(64, 4, splits=4)], ids=str)
def test_gpu_sparse_decode_attention_rows_full_size(config):
    """32 requests x 2048 selected + 100 window tokens, Llama-3.1-8B heads (32 query, 8 kv, dim 128),
    bfloat16: the tuned config, every candidate and a forced split."""
    gen = torch.Generator().manual_seed(14)
    inputs = _inputs(gen, 32, 32, 8, 128, 2048, 100, torch.bfloat16, pool_rows=8192)
    got = attention.sparse_decode_attention_rows(*inputs, 128 ** -0.5, config=config)
    torch.testing.assert_close(got, attention.sparse_decode_attention_rows_ref(*inputs, 128 ** -0.5),
                               **TOLERANCE[torch.bfloat16])
