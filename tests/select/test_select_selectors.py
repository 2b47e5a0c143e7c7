"""Selectors on fresh random inputs: the interface contract, each method against a brute-force
reference of its definition, and budget >= context reproducing exact attention. About 30 s on 2 cores."""

import math
from types import SimpleNamespace

import pytest
import torch

from sglang_kv.quant.higgs import HiggsQuantizer
from sglang_kv.select import ModelShape, RopeParams, make_selector
from sglang_kv.select.attention import windowed_decode_attention
from sglang_kv.select.base import blocks_to_tokens, blocks_to_tokens_batch, group_max_softmax, topk_sorted
from sglang_kv.select.rope import apply_rope, inverse_rope

ROPE = RopeParams(theta=10000.0)
SHAPES = [ModelShape(4, 2, 32), ModelShape(9, 3, 64), ModelShape(8, 8, 16)]
# every method, with the variants that change what build/select/gather do
VARIANTS = [("oracle", {}), ("quest", {}), ("shadowkv", {}), ("yakv", {}), ("yakv", {"key_rope": "pre"}),
            ("yakv", {"payload_group": "token"})]
BF16_TOL = dict(atol=2e-2, rtol=1.6e-2)


def _config(**overrides):
    """A test double with only the fields selectors may read (the OffloadConfig defaults)."""
    base = dict(budget=0.03125, local=64, sink=0, kv_bits=4, landmark_bits=2, landmark_residual=0, payload_group="head", cache=0.0,
                shadowkv_rank=160, shadowkv_chunk=8, shadowkv_outliers=48, quest_page=16)
    return SimpleNamespace(**{**base, **overrides})


def _data(shape, num_tokens, seed=0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(shape.num_q_heads, shape.head_dim, generator=g)
    k = torch.randn(num_tokens, shape.num_kv_heads, shape.head_dim, generator=g)
    v = torch.randn(num_tokens, shape.num_kv_heads, shape.head_dim, generator=g)
    k = apply_rope(k, torch.arange(num_tokens), ROPE)  # engines hand over post-RoPE keys
    return q.to(dtype), k.to(dtype), v.to(dtype)


def _dense(q, k, v, scale):
    # q (Hq, D); k, v (L, Hkv, D): plain attention with the GQA expansion written out
    g = q.shape[0] // k.shape[1]
    kk = k.transpose(0, 1).repeat_interleave(g, 0).float()
    vv = v.transpose(0, 1).repeat_interleave(g, 0).float()
    p = torch.softmax(torch.einsum("hd,hld->hl", q.float(), kk) * scale, dim=-1)
    return torch.einsum("hl,hld->hd", p, vv)


def _heads(n):
    return torch.arange(n)[:, None]


def _make_or_refused(method, shape, options):
    """The selector, or None where token payload groups are refused (a token width that is not a
    power of two, e.g. 3 x 64 channels): that refusal is the only one expected."""
    if options.get("payload_group") == "token" and shape.kv_width & (shape.kv_width - 1):
        with pytest.raises(ValueError, match="payload_group='token'"):
            make_selector(method, shape, _config(), ROPE, **options)
        return None
    return make_selector(method, shape, _config(), ROPE, **options)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method,options", VARIANTS)
def test_contract_sorted_distinct_and_sized(method, options, shape):
    sel = _make_or_refused(method, shape, options)
    if sel is None:
        return
    q, k, v = _data(shape, 437)
    summary = sel.build(k, v)
    for budget in (1, 5, 40, 436, 437, 10_000):
        idx = sel.select(q, summary, budget, 0.125)
        n = sel.num_selected(budget, 437, summary.num_fixed)
        assert idx.dtype == torch.int64 and idx.shape == (shape.num_kv_heads, n)
        assert torch.all(idx[:, 1:] > idx[:, :-1]) and idx.min() >= 0 and idx.max() < 437
        if summary.fixed is not None:  # the fixed tokens are always attended
            assert all(set(summary.fixed[h].tolist()) <= set(idx[h].tolist()) for h in range(shape.num_kv_heads))
        gk, gv = sel.gather(summary, idx)
        assert gk.shape == gv.shape == (shape.num_kv_heads, n, shape.head_dim) and gk.dtype == torch.float32
        assert sel.load_bytes(summary, idx) <= sel.step_bytes(437, budget).pcie_bytes
    assert sel.summary_bytes(summary) == summary.device_bytes > 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method,options", VARIANTS)
def test_budget_at_least_context_selects_everything_and_is_exact(method, options, shape):
    q, k, v = _data(shape, 203, seed=3)
    scale = 1 / math.sqrt(shape.head_dim)
    sel = _make_or_refused(method, shape, options)
    if sel is None:
        return
    summary = sel.build(k, v)
    idx = sel.select(q, summary, 203 + 50, scale)
    assert torch.equal(idx, torch.arange(203).expand(shape.num_kv_heads, -1))
    ref = _dense(q, k, v, scale)
    heads = _heads(shape.num_kv_heads)
    exact_kv = windowed_decode_attention(q.float(), (k[idx, heads].float(), v[idx, heads].float()), scale)
    torch.testing.assert_close(exact_kv, ref, atol=1e-5, rtol=1e-5)
    delivered = windowed_decode_attention(q.float(), sel.gather(summary, idx), scale)
    if method == "yakv":  # 4-bit payload: within the quantizer's error, exact with kv_bits=16 (below)
        assert (delivered - ref).norm() / ref.norm() < 0.15
    elif method == "shadowkv" and shape.kv_width > 160:  # rank 160 < width: the factors are lossy
        assert (delivered - ref).norm() / ref.norm() < 0.15
    else:
        torch.testing.assert_close(delivered, ref, **BF16_TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_payload_variants_reproduce_exact_attention(shape):
    q, k, v = _data(shape, 203, seed=4)
    scale = 1 / math.sqrt(shape.head_dim)
    ref = _dense(q, k, v, scale)
    for method, cfg in (("yakv", _config(kv_bits=16)), ("shadowkv", _config(shadowkv_rank=shape.kv_width))):
        sel = make_selector(method, shape, cfg, ROPE)
        summary = sel.build(k, v)
        idx = sel.select(q, summary, 203, scale)
        torch.testing.assert_close(windowed_decode_attention(q.float(), sel.gather(summary, idx), scale), ref, **BF16_TOL)


def test_windowed_attention_matches_dense_over_the_union():
    shape = ModelShape(6, 2, 32)
    q, k, v = _data(shape, 100, seed=5, dtype=torch.float32)
    idx = torch.stack([torch.tensor([10, 20, 33, 50]), torch.tensor([11, 12, 13, 70])])  # candidate = 4..89
    heads = _heads(2)
    out = windowed_decode_attention(q, (k[idx, heads], v[idx, heads]), 0.2, sink=(k[:4], v[:4]),
                                    local=(k[90:95], v[90:95]), generated=(k[95:], v[95:]))
    for h in range(2):
        keep = torch.cat([torch.arange(4), idx[h], torch.arange(90, 100)])
        ref = _dense(q[3 * h: 3 * h + 3], k[keep][:, h: h + 1], v[keep][:, h: h + 1], 0.2)
        torch.testing.assert_close(out[3 * h: 3 * h + 3], ref, atol=1e-5, rtol=1e-5)


# ---- helpers --------------------------------------------------------------------------------------
def test_blocks_to_tokens_ranks_blocks_and_cuts_at_k():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.1, 0.3]])  # 3 blocks of 4 over 10 tokens (last has 2)
    assert blocks_to_tokens(scores, 4, 10, 6).tolist() == [[4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 8, 9]]
    assert blocks_to_tokens(scores, 4, 10, 5).tolist() == [[4, 5, 6, 7, 8], [0, 1, 2, 3, 8]]
    assert blocks_to_tokens(scores, 4, 10, 99).tolist() == [list(range(10))] * 2
    fixed = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    masked = torch.tensor([[-1.0, 0.9, 0.5], [0.8, -1.0, 0.3]])
    assert blocks_to_tokens(masked, 4, 10, 3, fixed).tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 4, 5, 6, 7]]


def test_blocks_to_tokens_batch_cuts_each_request_at_its_own_length_and_budget():
    """Two requests in one call: request 0 as above (10 tokens, 3 blocks of 4, fixed tokens), request 1
    of 6 tokens (2 blocks; its third block is padding, ranked last) with a smaller budget and no fixed
    tokens; its columns past its count repeat its first token."""
    scores = torch.tensor([[[-1.0, 0.9, 0.5]],
                           [[0.2, 0.7, -2.0]]])  # (B, rows, blocks)
    fixed = [torch.tensor([[0, 1, 2, 3]]), None]
    selection = blocks_to_tokens_batch(scores, 4, [10, 6], [3, 5], fixed)
    assert selection.counts == [7, 5]
    assert selection.index[0].tolist() == [[0, 1, 2, 3, 4, 5, 6]]
    assert selection.index[1].tolist() == [[0, 1, 2, 4, 5, 0, 0]]  # block 1 (4, 5), then 0, 1, 2 of block 0
    for b, (n, k) in enumerate(zip([10, 6], [3, 5])):  # each request alone gives the same tokens
        alone = blocks_to_tokens(scores[b, :, : -(-n // 4)], 4, n, k, fixed[b])
        assert selection.index[b, :, :selection.counts[b]].tolist() == alone.tolist()


def test_unknown_and_unservable_configurations_fail_at_construction():
    with pytest.raises(ValueError, match="unknown selector"):
        make_selector("nope", SHAPES[0])
    with pytest.raises(ValueError, match="rope parameters"):
        make_selector("shadowkv", SHAPES[0], _config())
    with pytest.raises(ValueError, match="power-of-two head_dim"):
        make_selector("yakv", ModelShape(4, 2, 96), _config())
    with pytest.raises(ValueError, match="payload_group='token'"):
        make_selector("yakv", ModelShape(9, 3, 64), _config(), payload_group="token")
    with pytest.raises(ValueError, match="key_rope='pre'"):
        make_selector("yakv", SHAPES[0], _config(), key_rope="pre")
    with pytest.raises(ValueError, match="landmark_bits >= 2"):
        make_selector("yakv", SHAPES[0], _config(landmark_bits=1, landmark_residual=4))


# ---- quest -----------------------------------------------------------------------------------------
def test_quest_bound_holds_and_selection_matches_reference():
    shape = ModelShape(6, 2, 16)
    q, k, v = _data(shape, 150, seed=6, dtype=torch.float32)
    sel = make_selector("quest", shape, _config(quest_page=16), None)
    summary = sel.build(k, v)
    kmin, kmax = summary.device["kmin"], summary.device["kmax"]
    assert kmin.shape == (10, 2, 16)  # ceil(150 / 16) pages
    for p in range(10):
        page = k[16 * p: 16 * p + 16]
        torch.testing.assert_close(kmin[p], page.amin(0))
        bound = torch.maximum(q.view(2, 3, 16) * kmin[p][:, None], q.view(2, 3, 16) * kmax[p][:, None]).sum(-1)
        actual = torch.einsum("hgd,thd->hgt", q.view(2, 3, 16), page).amax(-1)
        assert torch.all(bound >= actual - 1e-5)
    # reference: softmax of the bound over pages per query head, group max, top pages, cut at k
    bounds = torch.stack([torch.maximum(q.view(2, 3, 16) * kmin[p][:, None], q.view(2, 3, 16) * kmax[p][:, None]).sum(-1)
                          for p in range(10)], -1) * 0.3  # (Hkv, G, P)
    scores = torch.softmax(bounds, -1).amax(1)
    for k_tokens in (16, 40):
        idx = sel.select(q, summary, k_tokens, 0.3)
        for h in range(2):
            order = torch.argsort(scores[h], descending=True).tolist()
            tokens = [t for p in order for t in range(16 * p, min(16 * p + 16, 150))][:k_tokens]
            assert idx[h].tolist() == sorted(tokens)


# ---- shadowkv ---------------------------------------------------------------------------------------
def test_shadowkv_landmarks_outliers_and_factors_follow_the_definition():
    shape = ModelShape(4, 2, 32)
    q, k, v = _data(shape, 203, seed=7, dtype=torch.float32)
    k[40:48, 1] = k[40, 1] + 0.1 * k[40:48, 1]  # chunk 5 of head 1: near-identical keys ...
    k[44, 1] = -k[40, 1]  # ... but one opposite to their mean
    cfg = _config(shadowkv_rank=24, shadowkv_outliers=3)
    sel = make_selector("shadowkv", shape, cfg, ROPE)
    summary = sel.build(k, v)
    lm = summary.device["landmarks"]
    assert lm.shape == (26, 2, 32)  # ceil(203 / 8)
    torch.testing.assert_close(lm[3], k[24:32].mean(0))
    torch.testing.assert_close(lm[25], k[200:203].mean(0))  # short last chunk
    # outliers: per head, the 3 full chunks with the lowest min cosine to their landmark
    for h in range(2):
        chunks = k[:200, h].view(25, 8, 32)
        worst = torch.nn.functional.cosine_similarity(chunks, chunks.mean(1, keepdim=True), dim=-1).amin(1)
        expected = sorted(torch.topk(worst, 3, largest=False).indices.tolist())
        assert summary.device["outlier_chunks"][h].tolist() == expected
        assert summary.fixed[h].tolist() == [8 * c + i for c in expected for i in range(8)]
    assert 5 in summary.device["outlier_chunks"][1].tolist()
    # factors: the best rank-24 approximation of the pre-RoPE keys over both heads (Eckart-Young)
    x = inverse_rope(k, torch.arange(203), ROPE).reshape(203, 64)
    u, s, vh = torch.linalg.svd(x.double(), full_matrices=False)
    best = (u[:, :24] * s[:24]) @ vh[:24]
    ours = summary.device["factor_a"].double() @ summary.device["factor_b"].double()
    torch.testing.assert_close(ours, best, atol=1e-4, rtol=1e-4)
    # gather: rebuilt keys with RoPE at their positions; outliers exact; values exact
    idx = sel.select(q, summary, 30, 0.2)
    gk, gv = sel.gather(summary, idx)
    heads = _heads(2)
    rebuilt = apply_rope(best.float().view(203, 2, 32), torch.arange(203), ROPE)
    expected_k = torch.where(torch.isin(idx, summary.fixed[0])[..., None] & (heads == 0)[..., None]
                             | torch.isin(idx, summary.fixed[1])[..., None] & (heads == 1)[..., None],
                             k[idx, heads], rebuilt[idx, heads])
    torch.testing.assert_close(gk, expected_k, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gv, v[idx, heads])


def test_shadowkv_selection_matches_reference_and_counts_only_misses():
    shape = ModelShape(6, 3, 16)
    q, k, v = _data(shape, 160, seed=8, dtype=torch.float32)
    sel = make_selector("shadowkv", shape, _config(shadowkv_outliers=2), ROPE)
    summary = sel.build(k, v)
    idx = sel.select(q, summary, 24, 0.25)
    logits = torch.einsum("hgd,chd->hgc", q.view(3, 2, 16), summary.device["landmarks"]) * 0.25
    for h in range(3):
        out = summary.device["outlier_chunks"][h].tolist()
        logits[h][:, out] = float("-inf")
        order = [c for c in torch.argsort(torch.softmax(logits[h], -1).amax(0), descending=True).tolist() if c not in out]
        expected = sorted([8 * c + i for c in order[:3] for i in range(8)] + summary.fixed[h].tolist())
        assert idx[h].tolist() == expected
    assert sel.load_bytes(summary, idx) == 3 * 24 * 16 * 4  # selected values only; outliers are on the GPU


def test_shadowkv_depends_on_relative_positions_only():
    shape = ModelShape(4, 2, 32)
    q, k, v = _data(shape, 120, seed=9, dtype=torch.float32)
    sel = make_selector("shadowkv", shape, _config(shadowkv_rank=16), ROPE)
    a, b = sel.build(k, v), sel.build(k, v, torch.arange(120) + 64)  # e.g. a 64-token sink before them
    idx = sel.select(q, a, 40, 0.2)
    assert torch.equal(idx, sel.select(q, b, 40, 0.2))
    torch.testing.assert_close(sel.gather(a, idx)[0], sel.gather(b, idx)[0], atol=1e-4, rtol=1e-4)


# ---- yakv ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [ModelShape(4, 2, 32), ModelShape(9, 3, 64)])
@pytest.mark.parametrize("residual", [0, 4])
def test_yakv_selects_by_the_dequantized_landmarks(shape, residual):
    q, k, v = _data(shape, 301, seed=10)
    sel = make_selector("yakv", shape, _config(landmark_residual=residual), None)
    summary = sel.build(k, v)
    d, hkv = shape.head_dim, shape.num_kv_heads
    main = HiggsQuantizer(d, 4, 2)
    dev = summary.device
    if residual:
        res = HiggsQuantizer(d, 4, 1)
        means = k.float().view(-1)[: 300 * hkv * d].view(75, 4, hkv, d).mean(1)
        means = torch.cat([means, k[300:].float().mean(0, keepdim=True)])  # short last group
        c = main.quantize(means.transpose(0, 1))
        assert torch.equal(c.codes, dev["mean_codes"])
        landmark = main.dequantize(dev["mean_codes"], dev["mean_scales"]).repeat_interleave(4, 1)[:, :301]
        landmark = landmark + res.dequantize(dev["residual_codes"], dev["residual_scales"])
    else:
        assert dev["landmark_codes"].shape == (hkv, 301, d * 2 // 8)  # head-major, as the kernel reads fastest
        assert dev["landmark_scales"].shape == (hkv, 301)
        landmark = main.dequantize(dev["landmark_codes"], dev["landmark_scales"][..., None])  # (Hkv, L, D)
    logits = torch.einsum("hgd,hld->hgl", q.float().view(hkv, -1, d), landmark)
    torch.testing.assert_close(sel.landmark_scores(q, summary), logits, atol=1e-3, rtol=1e-4)
    expected = topk_sorted(group_max_softmax(logits.reshape(-1, 301) * 0.2, hkv), 17)
    assert torch.equal(sel.select(q, summary, 17, 0.2), expected)


@pytest.mark.parametrize("group", ["token", "head"])
def test_yakv_gather_dequantizes_only_the_selected_rows(group):
    shape = ModelShape(8, 4, 32)
    q, k, v = _data(shape, 150, seed=11)
    sel = make_selector("yakv", shape, _config(), None, payload_group=group)
    summary = sel.build(k, v)
    width_group = 128 if group == "token" else 32
    hq = HiggsQuantizer(width_group, 2, 4)
    assert list(summary.payload) == ["kv_codes"]  # only the codes go to the host
    rows = 1 if group == "token" else 4  # payload rows per token, each a K|V record
    codes = summary.payload["kv_codes"].view(150, rows, 2, -1)  # (L, rows, K|V, group / 2)
    scales = summary.device["kv_scales"]  # (L, rows, K|V)
    assert scales.shape == (150, rows, 2)
    full_k = hq.dequantize(codes[:, :, 0], scales[..., 0:1]).view(150, 4, 32)
    full_v = hq.dequantize(codes[:, :, 1], scales[..., 1:2]).view(150, 4, 32)
    idx = sel.select(q, summary, 9, 0.2)
    gk, gv = sel.gather(summary, idx)
    heads = _heads(4)
    torch.testing.assert_close(gk, full_k[idx, heads])
    torch.testing.assert_close(gv, full_v[idx, heads])
    rel = (gk - k[idx, heads].float()).norm() / k[idx, heads].float().norm()
    assert rel < math.sqrt(0.0077) * 1.5  # EDEN2-256: MSE 0.0077 per value on N(0, 1)
    row = 2 * 128 // 2 if group == "token" else 2 * 32 // 2  # K and V codes: the scales stay on the GPU
    rows = torch.unique(idx).numel() if group == "token" else idx.numel()
    assert sel.load_bytes(summary, idx) == rows * row


def test_yakv_pre_rope_payload_is_rerotated():
    shape = ModelShape(4, 2, 64)
    q, k, v = _data(shape, 90, seed=12, dtype=torch.float32)
    post = make_selector("yakv", shape, _config(kv_bits=16), ROPE)
    pre = make_selector("yakv", shape, _config(kv_bits=16), ROPE, key_rope="pre")
    positions = torch.arange(90) + 1000
    a, b = post.build(k, v, positions), pre.build(k, v, positions)
    torch.testing.assert_close(b.payload["k"], inverse_rope(k, positions, ROPE))
    idx = post.select(q, a, 30, 0.2)
    torch.testing.assert_close(pre.gather(b, idx)[0], post.gather(a, idx)[0], atol=1e-5, rtol=1e-5)


def test_yakv_default_payload_group_and_fp8():
    assert make_selector("yakv", ModelShape(32, 8, 128), _config()).payload_group == "head"
    assert make_selector("yakv", ModelShape(9, 3, 64), _config()).payload_group == "head"  # 192 channels
    shape = ModelShape(4, 2, 32)
    q, k, v = _data(shape, 64, seed=13)
    sel = make_selector("yakv", shape, _config(kv_bits=8), None)
    summary = sel.build(k, v)
    assert summary.payload["k"].dtype == torch.float8_e4m3fn
    idx = sel.select(q, summary, 10, 0.2)
    gk, _ = sel.gather(summary, idx)
    torch.testing.assert_close(gk, k[idx, _heads(2)].float(), atol=0.15, rtol=0.07)


def test_payload_can_move_to_host_memory_and_back():
    shape = ModelShape(4, 2, 32)
    q, k, v = _data(shape, 80, seed=14)
    sel = make_selector("yakv", shape, _config(), None)
    summary = sel.build(k, v)
    moved = summary.with_payload_on("cpu")
    idx = sel.select(q, moved, 10, 0.2)
    for a, b in zip(sel.gather(summary, idx), sel.gather(moved, idx)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="indexed by token"):
        type(summary)(num_tokens=5, positions=torch.arange(5), payload={"v": torch.zeros(4, 2)})


def test_yakv_payload_group_comes_from_the_config_and_the_option_overrides_it():
    from sglang_kv.config import OffloadConfig

    shape = ModelShape(32, 8, 128)
    assert make_selector("yakv", shape, OffloadConfig(method="yakv", payload_group="head")).payload_group == "head"
    assert make_selector("yakv", shape, OffloadConfig(method="yakv")).payload_group == "head"
    assert make_selector("yakv", shape, OffloadConfig(method="yakv", payload_group="token")).payload_group == "token"
    assert make_selector("yakv", shape, OffloadConfig(method="yakv", payload_group="head"),
                         payload_group="token").payload_group == "token"
    with pytest.raises(ValueError, match="payload_group='token'"):
        make_selector("yakv", ModelShape(9, 3, 64), OffloadConfig(method="yakv", payload_group="token"))
