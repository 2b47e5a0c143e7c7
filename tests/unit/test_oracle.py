"""The oracle selector and the reference sparse decode attention, on fresh random inputs."""

import math

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention

from sglang_kv.select import ModelShape, make_selector
from sglang_kv.select.attention import sparse_decode_attention
from sglang_kv.select.base import group_max_softmax, topk_sorted

SHAPES = [ModelShape(4, 2, 32), ModelShape(9, 3, 64), ModelShape(8, 8, 16)]


def _dense(q, k, v, scale):
    # q (Hq, D); k, v (L, Hkv, D): plain attention with the GQA expansion written out
    g = q.shape[0] // k.shape[1]
    kk = k.transpose(0, 1).repeat_interleave(g, 0).float()
    vv = v.transpose(0, 1).repeat_interleave(g, 0).float()
    p = torch.softmax(torch.einsum("hd,hld->hl", q.float(), kk) * scale, dim=-1)
    return torch.einsum("hl,hld->hd", p, vv)


@pytest.mark.parametrize("shape", SHAPES)
def test_full_budget_reproduces_exact_attention(shape):
    torch.manual_seed(0)
    L = 203
    q = torch.randn(shape.num_q_heads, shape.head_dim)
    k = torch.randn(L, shape.num_kv_heads, shape.head_dim)
    v = torch.randn(L, shape.num_kv_heads, shape.head_dim)
    sel = make_selector("oracle", shape, None)
    idx = sel.select(q, sel.build(k, v), k=L + 50, scale=1 / math.sqrt(shape.head_dim))
    assert idx.shape == (shape.num_kv_heads, L)
    assert torch.equal(idx, torch.arange(L).expand_as(idx))
    heads = torch.arange(shape.num_kv_heads)[:, None]
    out = sparse_decode_attention(q, k[idx, heads], v[idx, heads], 1 / math.sqrt(shape.head_dim))
    torch.testing.assert_close(out.float(), _dense(q, k, v, 1 / math.sqrt(shape.head_dim)), atol=1e-5, rtol=1e-5)


def test_bf16_full_selection_matches_stock_sdpa_bitwise():
    torch.manual_seed(1)
    q = torch.randn(4, 1, 32, dtype=torch.bfloat16)
    k = torch.randn(300, 2, 32, dtype=torch.bfloat16)
    v = torch.randn(300, 2, 32, dtype=torch.bfloat16)
    stock = scaled_dot_product_attention(q[None], k.movedim(0, 1)[None], v.movedim(0, 1)[None],
                                         enable_gqa=True, scale=0.17)[0, :, 0]
    idx = torch.arange(300).expand(2, -1)
    heads = torch.arange(2)[:, None]
    ours = sparse_decode_attention(q[:, 0], k[idx, heads], v[idx, heads], 0.17)
    assert torch.equal(ours, stock)


@pytest.mark.parametrize("shape", SHAPES)
def test_oracle_picks_the_top_group_max_softmax_tokens(shape):
    torch.manual_seed(2)
    L, budget = 157, 11
    q = torch.randn(shape.num_q_heads, shape.head_dim)
    k = torch.randn(L, shape.num_kv_heads, shape.head_dim)
    sel = make_selector("oracle", shape, None)
    idx = sel.select(q, sel.build(k, k), budget, scale=0.3)
    assert idx.shape == (shape.num_kv_heads, budget)
    assert torch.all(idx[:, 1:] > idx[:, :-1])  # sorted, distinct
    g = shape.group_size
    for h in range(shape.num_kv_heads):
        logits = q[h * g:(h + 1) * g] @ k[:, h].T * 0.3  # (G, L)
        scores = torch.softmax(logits, -1).max(0).values
        expected = torch.sort(torch.topk(scores, budget).indices).values
        assert torch.equal(idx[h], expected)


def test_group_max_softmax_and_topk_helpers():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 0.0]])
    scores = group_max_softmax(logits, num_kv_heads=2)
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(scores, torch.stack([p[:2].max(0).values, p[2:].max(0).values]))
    assert torch.equal(topk_sorted(torch.tensor([[0.1, 0.9, 0.5, 0.7]]), 2), torch.tensor([[1, 3]]))
    assert torch.equal(topk_sorted(torch.tensor([[0.1, 0.9]]), 5), torch.tensor([[0, 1]]))


def test_unknown_selector_is_rejected():
    with pytest.raises(ValueError, match="unknown selector 'nope'"):
        make_selector("nope", SHAPES[0], None)
