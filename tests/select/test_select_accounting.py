"""Memory accounting pinned against hand-computed bytes (Llama-3.1-8B and Qwen3-30B-A3B shapes), and
the analytic footprint against the bytes a real summary holds."""

import pytest
import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.select import ModelShape, RopeParams, make_selector

LLAMA = ModelShape(32, 8, 128)  # 8 kv heads x 128 = 1024 channels per token
QWEN_MOE = ModelShape(32, 4, 128)  # 4 kv heads x 128 = 512 channels per token
ROPE = RopeParams(theta=500000.0)
L = 32768  # candidate tokens of one layer


def _sel(method, shape, **kw):
    options = {k: kw.pop(k) for k in ("payload_group",) if k in kw}
    return make_selector(method, shape, OffloadConfig(method=method, **kw), ROPE, **options)


def test_llama_3_1_8b_per_layer_bytes():
    # yakv: landmarks 8 heads x (128 values x 2 bits = 32 B + fp16 scale 2 B) = 272 B/token;
    # payload K and V at 4 bits in one 1024-channel group: 2 x 512 = 1024 B/token of codes on the
    # host, their 2 x 2 B of scales on the GPU
    yakv = _sel("yakv", LLAMA, payload_group="token")
    assert yakv.footprint(L) == (L * (272 + 4), L * 1024)
    # PCIe at k = 1024: between 1024 and 8 x 1024 distinct token rows of 1024 B; the bound is 8 x 1024
    assert yakv.step_bytes(L, 1024) == (8 * 1024 * 1024, L * 272)
    # per-head payload groups: 2 x 8 x 64 = 1024 B/token of codes, 2 x 8 x 2 = 32 B of scales on the
    # GPU, and each head copies only its rows
    head = _sel("yakv", LLAMA)
    assert head.payload_group == "head"  # the default
    assert head.footprint(L) == (L * (272 + 32), L * 1024)
    assert head.step_bytes(L, 1024).pcie_bytes == 8 * 1024 * 2 * 64
    # residual landmarks, m = 4: per head a 2-bit mean every 4 tokens (34 B / 4) + a 1-bit residual
    # per token (16 B + 2 B): 8 x 26.5 = 212 B/token, plus the payload scales
    assert _sel("yakv", LLAMA, landmark_residual=4).footprint(L).gpu_bytes == L * (212 + 32)
    # fp8 / bf16 payload: 2 x 1024 x 1 B and 2 x 1024 x 2 B per token
    assert _sel("yakv", LLAMA, kv_bits=8).footprint(L).host_bytes == L * 2048
    assert _sel("yakv", LLAMA, kv_bits=16).footprint(L).host_bytes == L * 4096

    # shadowkv: landmarks 4096 chunks x 1024 x 2 B; A = L x 160 x 2 B; B = 160 x 1024 x 2 B;
    # 48 outlier chunks x 8 tokens x 1024 channels x (K + V) x 2 B; 8 x 48 int32 chunk ids
    shadow = _sel("shadowkv", LLAMA)
    gpu = 4096 * 2048 + L * 320 + 160 * 2048 + 48 * 8 * 4096 + 8 * 48 * 4
    assert gpu == 20_776_448  # 634.0 B/token
    assert shadow.footprint(L) == (gpu, L * 2048)  # host: bf16 values
    # PCIe at k = 512 (1.5625%): values only, 8 heads x 512 x 128 x 2 B
    assert shadow.step_bytes(L, 512).pcie_bytes == 8 * 512 * 256 == 1_048_576

    # quest: all K and V exact (4096 B/token) + min and max per 16-token page (2 x 2048 / 16 B/token)
    assert _sel("quest", LLAMA).footprint(L) == (L * 4096 + 2048 * 2 * 2048, 0)
    assert _sel("quest", LLAMA).step_bytes(L, 1024).pcie_bytes == 0
    # oracle: exact keys on GPU, exact values on host; PCIe = the selected values
    assert _sel("oracle", LLAMA).footprint(L) == (L * 2048, L * 2048)
    assert _sel("oracle", LLAMA).step_bytes(L, 1024).pcie_bytes == 8 * 1024 * 256


def test_qwen3_30b_a3b_per_layer_bytes():
    yakv = _sel("yakv", QWEN_MOE)
    assert yakv.payload_group == "head"  # the default: 4 groups of 128 channels per token
    assert yakv.footprint(L) == (L * (4 * 34 + 2 * 4 * 2), L * 2 * 4 * 64)  # 152 and 512 B/token
    assert yakv.step_bytes(L, 1024).pcie_bytes == 4 * 1024 * 2 * 64
    token = _sel("yakv", QWEN_MOE, payload_group="token")  # 512 channels: one Hadamard group per token
    assert token.footprint(L) == (L * (4 * 34 + 2 * 2), L * 2 * 256)  # 140 and 512 B/token
    assert token.step_bytes(L, 1024).pcie_bytes == 4 * 1024 * 512
    gpu = 4096 * 1024 + L * 320 + 160 * 1024 + 48 * 8 * 2048 + 4 * 48 * 4
    assert gpu == 15_631_104
    assert _sel("shadowkv", QWEN_MOE).footprint(L) == (gpu, L * 1024)
    assert _sel("quest", QWEN_MOE).footprint(L) == (L * 2048 + 2048 * 2 * 1024, 0)
    assert _sel("oracle", QWEN_MOE).footprint(L) == (L * 1024, L * 1024)


def test_small_contexts_clamp_rank_and_outliers():
    shadow = _sel("shadowkv", QWEN_MOE)
    assert shadow.rank_for(100) == 100 and shadow.outliers_for(100) == 12  # 100 // 8 full chunks
    assert shadow.rank_for(10_000) == 160 and shadow.rank_for(10_000) <= QWEN_MOE.kv_width


@pytest.mark.parametrize("shape", [ModelShape(8, 4, 32), ModelShape(9, 3, 64)])
@pytest.mark.parametrize("variant", [("oracle", {}), ("quest", {}), ("shadowkv", {"shadowkv_outliers": 5}),
                                     ("yakv", {}), ("yakv", {"landmark_residual": 4}), ("yakv", {"kv_bits": 8}),
                                     ("yakv", {"payload_group": "token"})])
def test_footprint_equals_the_bytes_a_bf16_summary_holds(shape, variant):
    method, kw = variant
    if kw.get("payload_group") == "token" and shape.kv_width & (shape.kv_width - 1):
        kw = {}
    sel = _sel(method, shape, **kw)
    num_tokens = 333  # not a multiple of chunk, page or residual group
    g = torch.Generator().manual_seed(0)
    k = torch.randn(num_tokens, shape.num_kv_heads, shape.head_dim, generator=g).bfloat16()
    summary = sel.build(k, k.clone())
    assert (summary.device_bytes, summary.payload_bytes) == tuple(sel.footprint(num_tokens))
