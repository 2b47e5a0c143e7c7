"""Served tokens must not depend on which kernel config won a timing race.

Two eager quest servers started together on the H200 decoded different greedy tokens from the same
prompts, each consistent with itself (``scripts/gpu/decode_graph_probe.py``, 2026-12-03). The likely
cause (after this fix the probe's four servers agreed, 2026-12-04): the decode attention picked its block size and warps
by timing (``pick_config``), and those change the order of its float32 sums. So:

- the attention and the selection's softmax, whose configs change their rounding, run a fixed config
  (``DEFAULT_CONFIG``) and never time one (on any device);
- every kernel that still picks by timing (quantize, dequantize-gather, score, top-k, row copy) gives
  the same bits with each of its candidates (on the GPU, where the compiled kernels run; the
  interpreter's numpy dots say nothing about the GPU's rounding).
"""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import _triton_utils
from sglang_kv.kernels import attention as ak
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import rows as rk
from sglang_kv.kernels import softmax as sk
from sglang_kv.kernels import topk as tk
from sglang_kv.quant.higgs import HiggsQuantizer

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled kernels' rounding)")


def _randn(*shape, seed, scale=1.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=gen)).to(device=DEVICE, dtype=dtype)


@pytest.fixture
def no_timed_pick(monkeypatch):
    """Fail any timed config pick (and forget earlier picks, so none is served from the cache)."""
    def refuse(key, candidates, run):
        raise AssertionError(f"timed config pick for {key}")

    monkeypatch.setattr(_triton_utils, "pick_config", refuse)
    for module in (ak, sk):
        if hasattr(module, "pick_config"):
            monkeypatch.setattr(module, "pick_config", refuse)
    monkeypatch.setattr(_triton_utils, "_CHOSEN", {})


def test_attention_runs_its_fixed_config(no_timed_pick):
    gen = torch.Generator().manual_seed(0)
    batch, hq, hkv, d, n, m = 3, 8, 2, 64, 150, 40
    q = torch.randn(batch, hq, d, generator=gen).to(DEVICE)
    store = torch.randn(batch * hkv * n, 2 * d, generator=gen).to(DEVICE)
    sel_rows = torch.randperm(batch * hkv * n, generator=gen).view(batch, hkv, n).to(DEVICE)
    pool = torch.randn(64, hkv, 2 * d, generator=gen).to(DEVICE)
    win_rows = torch.randint(0, 64, (batch, m), generator=gen).to(DEVICE)
    inputs = (q, store[:, :d], store[:, d:], sel_rows, pool[..., :d], pool[..., d:], win_rows, d ** -0.5)
    auto = ak.sparse_decode_attention_rows(*inputs)
    fixed = ak.sparse_decode_attention_rows(*inputs, config=ak.DEFAULT_CONFIG)
    assert torch.equal(auto, fixed)


def test_softmax_runs_its_fixed_config(no_timed_pick):
    logits = _randn(3, 8, 3000, seed=1, scale=4.0)
    lengths = torch.tensor([3000, 17, 2048], dtype=torch.int32, device=DEVICE)
    auto = sk.group_max_softmax_batch(logits, lengths, 2, 0.5)
    assert torch.equal(auto, sk.group_max_softmax_batch(logits, lengths, 2, 0.5, config=sk.DEFAULT_CONFIG))


def _same_bits(outputs: dict) -> None:
    (first_config, first), *rest = outputs.items()
    for config, got in rest:
        for a, b in zip(first if isinstance(first, tuple) else (first,), got if isinstance(got, tuple) else (got,)):
            assert torch.equal(a, b), f"{config} differs from {first_config}"


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("spec", [dict(group_size=1024, p=2, bits=4), dict(group_size=128, p=4, bits=2)],
                         ids=["store", "landmark"])
def test_gpu_quantize_configs_give_the_same_codes(spec):
    quantizer = HiggsQuantizer(**spec)
    x = _randn(8192, 1024, seed=2, scale=3.0, dtype=torch.bfloat16)
    _same_bits({c: tuple(hk.quantize(quantizer, x, config=c)) for c in hk.quantize_configs(quantizer.group_size)})


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("group_size", [128, 1024])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_dequantize_gather_configs_give_the_same_bits(group_size, dtype):
    quantizer = HiggsQuantizer(group_size, 2, 4)
    codes, scales = hk.quantize_ref(quantizer, _randn(32768, 1024, seed=3, scale=2.0))
    index = torch.randperm(32768, device=DEVICE)[:8192]
    _same_bits({c: hk.dequantize_gather(quantizer, codes, scales, index, dtype=dtype, config=c)
                for c in hk.dequantize_gather_configs(group_size)})


@pytest.mark.gpu
@gpu
def test_gpu_score_configs_give_the_same_bits():
    quantizer = HiggsQuantizer(128, 4, 2)
    lengths = [30_000, 65_536, 7]
    stores = [hk.quantize_ref(quantizer, _randn(n, 1024, seed=4 + n, scale=2.0)) for n in lengths]
    q = _randn(len(lengths), 32, 128, seed=5, scale=3.0, dtype=torch.bfloat16)
    outputs = {}
    for config in hk.SCORE_CONFIGS:
        got = hk.score_batch(quantizer, q, [c for c, _ in stores], [s for _, s in stores], config=config)
        outputs[config] = tuple(got[b, :, :n] for b, n in enumerate(lengths))
    _same_bits(outputs)


@pytest.mark.gpu
@gpu
def test_gpu_topk_configs_give_the_same_columns():
    scores = torch.softmax(_randn(256, 65536, seed=6, scale=6.0), dim=-1)  # many exact ties at 0.0
    counts = torch.randint(1, 4096, (256,), device=DEVICE, dtype=torch.int32)
    _same_bits({c: tk.topk_sorted_batch(scores, counts, int(counts.max()), config=c) for c in tk.TOPK_CONFIGS})


@pytest.mark.gpu
@gpu
def test_gpu_row_copy_configs_give_the_same_rows():
    src = [_randn(5000, 66, seed=7 + b).to(torch.bfloat16).cpu().pin_memory() for b in range(3)]
    request = torch.randint(0, 3, (20000,), device=DEVICE, dtype=torch.int32)
    src_index = torch.randint(0, 5000, (20000,), device=DEVICE)
    dst_index = torch.where(torch.rand(20000, device=DEVICE) < 0.9, torch.arange(20000, device=DEVICE), -1)
    outputs = {}
    for config in rk.COPY_CONFIGS:
        dst = torch.zeros(20000, 66, dtype=torch.bfloat16, device=DEVICE)
        rk.copy_rows_batch(src, [dst] * 3, request, src_index, dst_index, config=config)
        outputs[config] = dst
    _same_bits(outputs)
