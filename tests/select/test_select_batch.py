"""Batched selection (``select_batch`` / ``gather_batch``, what serving calls per layer) equals the
per-request ``select`` / ``gather``: the default loop for every selector, and YAKV's batched kernels
(one score, top-k and gather launch per layer; the Triton interpreter on CPU, compiled on CUDA)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.select import ModelShape, make_selector
from sglang_kv.select.base import pad_selections
from sglang_kv.select.rope import RopeParams

SHAPE = ModelShape(8, 2, 32)  # GQA 4; token width 64 (a power of two: whole-token payload groups)
ROPE = RopeParams(theta=10000.0)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _requests(sel, lengths, seed):
    gen = torch.Generator().manual_seed(seed)
    summaries = []
    for n in lengths:
        keys = torch.randn(n, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen).to(DEVICE)
        values = torch.randn(n, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen).to(DEVICE)
        summaries.append(sel.build(keys, values))
    q = (3 * torch.randn(len(lengths), SHAPE.num_q_heads, SHAPE.head_dim, generator=gen)).to(DEVICE)
    return q, summaries


def _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv):
    for b, (summary, k) in enumerate(zip(summaries, ks)):
        index = sel.select(q[b], summary, k, 0.2)
        n = selection.counts[b]
        assert n == index.shape[1]
        assert torch.equal(selection.index[b, :, :n], index), f"request {b}"
        assert (selection.index[b, :, n:] == index[:, :1]).all()  # padding repeats a selected index
        k_ref, v_ref = sel.gather(summary, index)
        torch.testing.assert_close(kv.k[b, :, :n], k_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(kv.v[b, :, :n], v_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["oracle", "yakv", "quest", "shadowkv"])
def test_default_batch_is_the_per_request_loop(method):
    sel = make_selector(method, SHAPE, OffloadConfig(method=method), rope=ROPE)
    lengths, ks = [70, 33, 120], [16, 40, 24]
    q, summaries = _requests(sel, lengths, seed=1)
    selection = super(type(sel), sel).select_batch(q, summaries, ks, 0.2) if method == "yakv" else \
        sel.select_batch(q, summaries, ks, 0.2)
    kv = super(type(sel), sel).gather_batch(summaries, selection) if method == "yakv" else \
        sel.gather_batch(summaries, selection)
    assert kv.load_bytes == sum(sel.load_bytes(s, selection.index[b, :, :n])
                                for b, (s, n) in enumerate(zip(summaries, selection.counts)))
    _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)


@pytest.mark.parametrize("outliers,lengths,ks", [
    (6, [70, 33, 120], [16, 40, 24]),  # 6, 4 and 6 outlier chunks; rank 16 for all
    (2, [70, 5, 120, 21], [30, 3, 8, 99]),  # 5 tokens: no full chunk (no outliers), rank 5 (rebuilt alone)
    (0, [64, 64], [16, 16]),
])
def test_shadowkv_batch_equals_the_loop(outliers, lengths, ks):
    """ShadowKV's batched select (stacked, padded landmarks) and gather (one rebuild of every request's
    keys) equal ``select`` and ``gather`` per request, with unequal lengths, outlier counts and ranks."""
    config = OffloadConfig(method="shadowkv", shadowkv_rank=16, shadowkv_outliers=outliers)
    sel = make_selector("shadowkv", SHAPE, config, rope=ROPE)
    q, summaries = _requests(sel, lengths, seed=4)
    selection = sel.select_batch(q, summaries, ks, 0.2)
    assert selection.counts == [sel.num_selected(k, n, 0 if s.fixed is None else s.fixed.shape[1])
                                for k, n, s in zip(ks, lengths, summaries)]
    kv = sel.gather_batch(summaries, selection)
    assert kv.load_bytes == sum(sel.load_bytes(s, selection.index[b, :, :n])
                                for b, (s, n) in enumerate(zip(summaries, selection.counts)))
    _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)
    width = selection.index.shape[2]
    for b, n in enumerate(selection.counts):  # padding columns gather zeros
        assert not kv.k[b, :, n:width].any() and not kv.v[b, :, n:width].any()


def test_shadowkv_batch_counts_the_rows_it_copies(monkeypatch):
    """ShadowKV's batched gather copies no padding column and no outlier token from the host, and the
    bytes it counts without a sync are the rows its one copy reads."""
    from sglang_kv.kernels import rows as row_kernels

    sel = make_selector("shadowkv", SHAPE, OffloadConfig(method="shadowkv", shadowkv_outliers=2), rope=ROPE)
    q, summaries = _requests(sel, [70, 33, 120], seed=3)
    assert all(s.fixed is not None for s in summaries)
    selection = sel.select_batch(q, summaries, [16, 40, 24], 0.2)
    copied = []
    real_copy = row_kernels.copy_rows_batch_ref

    def counting_copy(src, dst, request, src_index, dst_index):
        copied.append(int((dst_index >= 0).sum()))
        real_copy(src, dst, request, src_index, dst_index)

    monkeypatch.setattr(row_kernels, "copy_rows_batch_ref", counting_copy)
    monkeypatch.setattr(row_kernels, "copy_rows_batch", counting_copy)
    kv = sel.gather_batch(summaries, selection)
    row_bytes = SHAPE.head_dim * summaries[0].payload["values"].element_size()
    fixed = sum(s.fixed.numel() for s in summaries)
    assert copied == [SHAPE.num_kv_heads * sum(selection.counts) - fixed]
    assert kv.load_bytes == copied[0] * row_bytes


@pytest.mark.parametrize("payload_group", ["token", "head"])
@pytest.mark.parametrize("lengths,ks", [([70, 33, 120], [16, 40, 24]), ([50, 50], [12, 12])])
def test_yakv_batched_kernels_equal_the_loop(payload_group, lengths, ks):
    """Requests of different lengths and budgets (one budget above its request's length)."""
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv", payload_group=payload_group))
    q, summaries = _requests(sel, lengths, seed=2)
    selection = sel._select_batch_kernels(q, summaries, ks, 0.2)
    assert selection.counts == [min(k, n) for k, n in zip(ks, lengths)]
    kv = sel._gather_batch_rows(summaries, selection, torch.float32, kernels=True)
    expected = sum(sel.load_bytes(s, selection.index[b, :, :n])
                   for b, (s, n) in enumerate(zip(summaries, selection.counts)))
    assert kv.load_bytes == expected
    _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)


def test_yakv_logits_rows_are_aligned(monkeypatch):
    """The softmax and top-k get logits and scores whose rows are a multiple of 128 columns wide at any
    request length (Triton then compiles aligned row loads), and the selection still equals the loop."""
    from sglang_kv.kernels import softmax, topk
    from sglang_kv.select.yakv import LOGITS_ALIGN

    seen = []
    for module, name in ((softmax, "group_max_softmax_batch"), (topk, "topk_sorted_batch")):
        def spy(x, *args, _real=getattr(module, name), **kwargs):
            seen.append(x.stride(-2))
            return _real(x, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv", payload_group="head"))
    lengths, ks = [70, 33, 121], [16, 40, 24]
    q, summaries = _requests(sel, lengths, seed=7)
    selection = sel._select_batch_kernels(q, summaries, ks, 0.2)
    assert seen == [128, 128] and LOGITS_ALIGN == 128  # 121 columns rounded up to 128
    kv = sel._gather_batch_rows(summaries, selection, torch.float32, kernels=True)
    _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)


def test_yakv_head_rows_of_unequal_counts_need_no_unique(monkeypatch):
    """Per-head rows with unequal selection counts (requests of different lengths): the padding columns
    get keys of their own and read nothing, so the gather needs no ``torch.unique`` (which waits for
    the GPU); it still equals the loop and counts only the selected rows' bytes."""
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv", payload_group="head"))
    q, summaries = _requests(sel, [70, 33, 120], seed=6)
    ks = [16, 40, 24]
    selection = sel._select_batch_kernels(q, summaries, ks, 0.2)
    assert len(set(selection.counts)) > 1

    def no_unique(*args, **kwargs):
        raise AssertionError("torch.unique called")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "unique", no_unique)
        kv = sel._gather_batch_rows(summaries, selection, torch.float32, kernels=True)
    row_bytes = sel.payload_row_bytes()
    assert kv.load_bytes == SHAPE.num_kv_heads * sum(selection.counts) * row_bytes
    _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)


@pytest.mark.parametrize("kernels", [False, True], ids=["torch", "triton"])
@pytest.mark.parametrize("payload_group,cache,ks", [("token", 0.3, [16, 40, 24]), ("head", 0.3, [16, 40, 24]),
                                                    ("head", 0.3, [16, 16, 16]), ("token", 0.05, [16, 40, 24])])
def test_yakv_device_cache_reads_what_the_host_holds(payload_group, cache, ks, kernels):
    """Decode steps with drifting queries: the cached gather returns what ``gather`` does, copies only
    the rows the caches did not hold, and hits rows selected again (cache 0.05: fewer slots than
    selected rows, so some rows bypass it; equal per-head counts: the gather's sort path)."""
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv", payload_group=payload_group, cache=cache))
    lengths = [70, 33, 120]
    q, summaries = _requests(sel, lengths, seed=5)
    rows_per_token = 1 if payload_group == "token" else SHAPE.num_kv_heads
    for s, n in zip(summaries, lengths):
        assert s.device["cache_row"].shape == (sel.cache_slots(n),) == (math.ceil(n * cache) * rows_per_token,)
    assert summaries[0].device_bytes == sel.footprint(lengths[0]).gpu_bytes
    row_bytes = sel.token_row_bytes() // rows_per_token
    gen = torch.Generator().manual_seed(6)
    hits = 0
    for step in range(4):
        q = q + 0.3 * torch.randn(q.shape, generator=gen).to(DEVICE)
        selection = sel.select_batch(q, summaries, ks, 0.2)
        kv = sel._gather_batch_rows(summaries, selection, torch.float32, kernels=kernels)
        _assert_batch_equals_loop(sel, q, summaries, ks, selection, kv)
        uncached = sum(sel.load_bytes(s, selection.index[b, :, :n])
                       for b, (s, n) in enumerate(zip(summaries, selection.counts)))
        assert kv.cache_lookups * row_bytes == uncached
        assert kv.load_bytes == (kv.cache_lookups - kv.cache_hits) * row_bytes
        hits += kv.cache_hits
        for s in summaries:  # every filled slot holds its row's bytes
            rows = s.device["cache_row"]
            filled = (rows >= 0).nonzero().squeeze(1)
            host, scales = sel._payload_rows(s.payload, s.device)  # K|V records
            assert torch.equal(s.device["cache_kv_codes"].view(rows.numel(), -1)[filled], host[rows[filled]])
            assert torch.equal(s.device["cache_kv_scales"].view(rows.numel(), -1)[filled], scales[rows[filled]])
    assert hits > 0


@pytest.mark.parametrize("shape", [ModelShape(9, 3, 64), ModelShape(8, 2, 32)], ids=["smollm2-head", "token"])
def test_yakv_device_cache_is_bit_exact_in_bf16(shape):
    """What serving attends to: the cached gather's bf16 K/V equal the uncached per-request gather's
    bit for bit (torch path, the one CPU serving runs), so the cache cannot change a greedy token."""
    sel = make_selector("yakv", shape, OffloadConfig(method="yakv", cache=0.25))
    gen = torch.Generator().manual_seed(7)
    summaries = [sel.build(torch.randn(n, shape.num_kv_heads, shape.head_dim, generator=gen).bfloat16(),
                           torch.randn(n, shape.num_kv_heads, shape.head_dim, generator=gen).bfloat16())
                 for n in (3000, 5000, 4000)]
    q = torch.randn(3, shape.num_q_heads, shape.head_dim, generator=gen)
    hits = 0
    for _ in range(4):
        q = q + 0.3 * torch.randn(q.shape, generator=gen)
        selection = sel.select_batch(q, summaries, [100, 150, 120], 0.125)
        cached = sel.gather_batch(summaries, selection, torch.bfloat16)
        plain = super(type(sel), sel).gather_batch(summaries, selection, torch.bfloat16)
        for b, n in enumerate(selection.counts):
            assert torch.equal(cached.k[b, :, :n], plain.k[b, :, :n])
            assert torch.equal(cached.v[b, :, :n], plain.v[b, :, :n])
        hits += cached.cache_hits
    assert hits > 0


def test_yakv_cache_needs_four_bit_payload():
    with pytest.raises(ValueError, match="kv-offload-cache"):
        OffloadConfig(method="yakv", kv_bits=8, cache=0.1)
    with pytest.raises(ValueError, match="kv-offload-cache"):
        OffloadConfig(method="oracle", cache=0.1)
    with pytest.raises(ValueError, match="kv-offload-cache"):
        OffloadConfig(method="yakv", cache=1.5)
    with pytest.raises(ValueError, match="key_rope='post'"):
        make_selector("yakv", SHAPE, OffloadConfig(method="yakv", cache=0.1), rope=ROPE, key_rope="pre")


def test_pad_selections_and_bad_batches():
    padded = pad_selections([torch.tensor([[1, 4, 5], [0, 2, 3]]), torch.tensor([[7], [9]])])
    assert padded.counts == [3, 1]
    assert padded.index.tolist() == [[[1, 4, 5], [0, 2, 3]], [[7, 7, 7], [9, 9, 9]]]
    sel = make_selector("oracle", SHAPE)
    q, summaries = _requests(sel, [10], seed=3)
    with pytest.raises(ValueError, match="one summary and budget per request"):
        sel.select_batch(q, summaries, [4, 4], 0.2)


def _pinned_requests(sel, shape, lengths, gen):
    """bf16 requests of ``lengths`` tokens built on the GPU, their payloads moved to pinned host
    blocks (as serving stores them) -> (summaries, the blocks, to keep alive)."""
    from sglang_kv.store.host import HostArena, HostBlock

    arena = HostArena(1 << 28, pin=True)
    summaries, blocks = [], []
    for n in lengths:
        keys = torch.randn(n, shape.num_kv_heads, shape.head_dim, generator=gen).cuda().bfloat16()
        summary = sel.build(keys, torch.randn_like(keys))
        blocks.append(HostBlock(arena, summary.payload))
        summaries.append(dataclasses.replace(summary, payload=blocks[-1].tensors))
    return summaries, blocks


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", [ModelShape(32, 8, 128), ModelShape(9, 3, 64)])
@pytest.mark.parametrize("cache", [0.0, 0.05])
def test_gpu_yakv_batch_from_pinned_host_equals_the_loop(shape, cache):
    """Compiled kernels, payload in pinned host memory; with the device cache, over three steps of
    drifting queries (misses copied in, hits read from the GPU, some rows bypassing a full cache)."""
    sel = make_selector("yakv", shape, OffloadConfig(method="yakv", cache=cache))
    gen = torch.Generator().manual_seed(4)
    lengths, ks = [3000, 700, 5000], [96, 800, 160]
    summaries, _blocks = _pinned_requests(sel, shape, lengths, gen)
    q = torch.randn(len(lengths), shape.num_q_heads, shape.head_dim, generator=gen).cuda()
    hits = 0
    for step in range(3 if cache else 1):
        q = q + 0.5 * torch.randn(q.shape, generator=gen).cuda()
        selection = sel.select_batch(q, summaries, ks, shape.head_dim ** -0.5)
        kv = sel.gather_batch(summaries, selection, torch.bfloat16)
        hits += kv.cache_hits
        for b, (summary, k) in enumerate(zip(summaries, ks)):
            index = sel.select(q[b], summary, k, shape.head_dim ** -0.5)
            n = selection.counts[b]
            assert torch.equal(selection.index[b, :, :n], index)
            k_ref, v_ref = sel.gather(summary, index, dtype=torch.bfloat16)
            # one bf16 ulp (or 1e-6 near zero) at most: kernel configs tuned for different launches
            # may sum the transform's float32 products in another order
            torch.testing.assert_close(kv.k[b, :, :n], k_ref, rtol=2 ** -7, atol=1e-6)
            torch.testing.assert_close(kv.v[b, :, :n], v_ref, rtol=2 ** -7, atol=1e-6)
    assert (hits > 0) == bool(cache)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("lengths,ks", [([3000, 700, 5003], [96, 800, 160]), ([2016], [32])])
def test_gpu_shadowkv_batch_from_pinned_host_equals_the_loop(lengths, ks):
    """ShadowKV's batched select equals ``select`` per request; its values, read in one zero-copy row
    copy from pinned host memory (the compiled kernel), equal the per-request ``gather``'s host round
    trip, and its keys, rebuilt for all requests at once, equal the per-request rebuild up to the
    rounding of the batched float32 product (one bf16 step); the bytes are counted without a sync.
    A batch of one request (its request index an expanded view) crashed the 8 x 16K server at 8d322c5."""
    shape = ModelShape(32, 8, 128)
    sel = make_selector("shadowkv", shape, OffloadConfig(method="shadowkv"), rope=ROPE)
    gen = torch.Generator().manual_seed(5)
    summaries, _blocks = _pinned_requests(sel, shape, lengths, gen)
    assert summaries[0].payload["values"].is_pinned()
    q = torch.randn(len(lengths), shape.num_q_heads, shape.head_dim, generator=gen).cuda()
    selection = sel.select_batch(q, summaries, ks, shape.head_dim ** -0.5)
    kv = sel.gather_batch(summaries, selection, torch.bfloat16)
    assert kv.load_bytes == sum(sel.load_bytes(s, selection.index[b, :, :n])
                                for b, (s, n) in enumerate(zip(summaries, selection.counts)))
    for b, summary in enumerate(summaries):
        n = selection.counts[b]
        assert torch.equal(selection.index[b, :, :n], sel.select(q[b], summary, ks[b], shape.head_dim ** -0.5))
        k_ref, v_ref = sel.gather(summary, selection.index[b, :, :n].contiguous(), dtype=torch.bfloat16)
        assert torch.equal(kv.v[b, :, :n], v_ref)
        torch.testing.assert_close(kv.k[b, :, :n], k_ref, rtol=2 ** -7, atol=1e-5)
        print(f"request {b}: keys bit-equal to the per-request rebuild: {torch.equal(kv.k[b, :, :n], k_ref)}")
