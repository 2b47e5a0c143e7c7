"""sparse_decode_attention: per-kv-head token sets, GQA, batched; on CUDA without cuDNN's backend."""

import math

import pytest
import torch

from sglang_kv.select.attention import sparse_decode_attention


def reference(q, k, v, scale):
    """float32 softmax(q k^T * scale) v per query head; q [B, Hq, D], k / v [B, Hkv, n, D]."""
    group = q.shape[1] // k.shape[1]
    k, v = k.float().repeat_interleave(group, 1), v.float().repeat_interleave(group, 1)
    weights = torch.softmax(torch.einsum("bhd,bhnd->bhn", q.float(), k) * scale, dim=-1)
    return torch.einsum("bhn,bhnd->bhd", weights, v)


def _inputs(batch, hq, hkv, n, d, device, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(shape, generator=gen).to(device, dtype)
               for shape in ((batch, hq, d), (batch, hkv, n, d), (batch, hkv, n, d)))
    return q, k, v


@pytest.mark.parametrize("hq,hkv", [(8, 2), (6, 6)])
def test_matches_reference_batched_and_single(hq, hkv):
    q, k, v = _inputs(3, hq, hkv, 37, 16, "cpu", torch.float32, seed=hq)
    scale = 1 / math.sqrt(16)
    torch.testing.assert_close(sparse_decode_attention(q, k, v, scale), reference(q, k, v, scale),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse_decode_attention(q[1], k[1], v[1], scale), reference(q, k, v, scale)[1],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)
def test_cuda_growing_key_length_skips_cudnn():
    """A decode step's key length grows each step: every length attends without cuDNN's SDPA
    (whose graph is rebuilt per length) and matches the float32 reference to bf16 rounding."""
    from torch.profiler import ProfilerActivity, profile

    scale = 1 / math.sqrt(128)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for n in (1100, 1101, 1102, 1163):
            q, k, v = _inputs(32, 32, 4, n, 128, "cuda", torch.bfloat16, seed=n)
            out = sparse_decode_attention(q, k, v, scale)
            torch.testing.assert_close(out.float(), reference(q, k, v, scale), atol=2e-2, rtol=2e-2)
    ops = {event.key for event in prof.key_averages()}
    assert not any("cudnn" in op for op in ops), sorted(op for op in ops if "attention" in op)
    assert any("scaled_dot_product" in op for op in ops)


@pytest.mark.parametrize("sink", [0, 4])
def test_selected_attention_fused_kernel_equals_the_sdpa_path(sink):
    """The backend's call: a subset of the batch's requests (``members``), its selected rows read
    through a permuted ``BatchKV.rows`` and only the first ``n`` of each row list, the window from a
    KV pool by row ids with ``sink`` tokens before the selection; the fused kernel (CUDA's path, the
    Triton interpreter here) against the SDPA over the rows concatenated (CPU's path)."""
    from sglang_kv.select.attention import selected_attention
    from sglang_kv.select.base import BatchKV

    gen = torch.Generator().manual_seed(sink + 1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # the fused kernel's device
    batch, hq, hkv, d, width, n, pool_rows, window = 3, 8, 2, 64, 40, 33, 50, 12
    q = torch.randn(batch, hq, d, generator=gen).to(device)
    num_rows = batch * hkv * width
    k_rows, v_rows = torch.randn(2, num_rows, d, generator=gen).to(device)
    rows = torch.randperm(num_rows, generator=gen).view(batch, hkv, width).to(device)
    selected = BatchKV(k_rows, v_rows, rows, load_bytes=0)
    pool_k, pool_v = torch.randn(2, pool_rows, hkv, d, generator=gen).to(device)
    members = torch.tensor([2, 0], device=device)
    win_rows = torch.randint(0, pool_rows, (2, window), generator=gen).to(device)
    args = (q[members], selected, members, n, pool_k, pool_v, win_rows, sink, d ** -0.5)
    fused = selected_attention(*args, fused=True)
    unfused = selected_attention(*args, fused=False)
    assert fused.shape == (2, hq, d)
    torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-5)
    # and the SDPA path is the reference over the tokens in position order
    k_win, v_win = pool_k[win_rows].transpose(1, 2), pool_v[win_rows].transpose(1, 2)
    sel = rows[members, :, :n]
    k_all = torch.cat([k_win[:, :, :sink], k_rows[sel], k_win[:, :, sink:]], dim=2)
    v_all = torch.cat([v_win[:, :, :sink], v_rows[sel], v_win[:, :, sink:]], dim=2)
    torch.testing.assert_close(unfused, reference(q[members], k_all, v_all, d ** -0.5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "sdpa"])
def test_selected_attention_writes_the_given_out(fused):
    """With ``out`` (what the backend passes when a group is every row of the batch), both paths write
    it in place, return it, and equal the call without ``out``."""
    from sglang_kv.select.attention import selected_attention
    from sglang_kv.select.base import BatchKV

    gen = torch.Generator().manual_seed(9)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, hq, hkv, d, width, n, pool_rows, window = 2, 8, 2, 64, 24, 20, 40, 10
    q = torch.randn(batch, hq, d, generator=gen).to(device)
    k_rows, v_rows = torch.randn(2, batch * hkv * width, d, generator=gen).to(device)
    rows = torch.randperm(batch * hkv * width, generator=gen).view(batch, hkv, width).to(device)
    pool_k, pool_v = torch.randn(2, pool_rows, hkv, d, generator=gen).to(device)
    win_rows = torch.randint(0, pool_rows, (batch, window), generator=gen).to(device)
    args = (q, BatchKV(k_rows, v_rows, rows, load_bytes=0), slice(None), n, pool_k, pool_v, win_rows, 3, d ** -0.5)
    out = torch.full((batch + 1, hq, d), float("nan"), device=device)[1:]  # a view, as the backend's chunk is
    got = selected_attention(*args, fused=fused, out=out)
    assert got is out and not out.isnan().any()
    torch.testing.assert_close(out, selected_attention(*args, fused=fused), rtol=0, atol=0)
