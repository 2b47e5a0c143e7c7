"""HiggsQuantizer (torch path): packing, storage, round-trip error, score, zero vectors, bad input.

About 15 s (round trips of 2**16 values for each of the 8 grids and 2 group sizes).
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sglang_kv.quant import higgs
from sglang_kv.quant.grids import SUPPORTED_GRIDS, grid_file
from sglang_kv.quant.hadamard import hadamard_matrix
from sglang_kv.quant.higgs import HiggsCodes, HiggsQuantizer, pack_indices, unpack_indices


def stored_mse(p: int, bits: int) -> float:
    return json.loads(grid_file(p, bits).read_text())["mse_per_value"]


def relative_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return ((x - x_hat).double().norm() / x.double().norm()).item()


def reference_dequantize(quantizer: HiggsQuantizer, codes, scales) -> torch.Tensor:
    """x' = (s / n) H y' per group, with a dense H and an independent bit-stream unpacker."""
    n, w = quantizer.group_size, quantizer.index_bits
    grid = quantizer.grid().double()
    rows = []
    for row_codes, row_scales in zip(codes.reshape(-1, codes.shape[-1]), scales.reshape(-1, scales.shape[-1])):
        stream = int.from_bytes(bytes(row_codes.tolist()), "little")
        num_indices = row_codes.numel() * 8 // w
        indices = [(stream >> (j * w)) & ((1 << w) - 1) for j in range(num_indices)]
        y = grid[torch.tensor(indices)].reshape(-1, n)  # (G, n)
        rows.append((y @ hadamard_matrix(n, torch.float64)) * (row_scales.double() / n)[:, None])
    return torch.stack(rows).reshape(*codes.shape[:-1], -1)


# --- packing ---------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(index_bits=st.integers(1, 8), num_words=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_pack_is_a_little_endian_bit_stream(index_bits, num_words, seed):
    layout = higgs.packing_layout(index_bits)
    num_indices = num_words * layout.indices_per_word
    gen = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, 2 ** index_bits, (3, num_indices), generator=gen)
    packed = pack_indices(indices, index_bits)
    assert packed.dtype == torch.uint8 and packed.shape == (3, num_indices * index_bits // 8)
    for row, row_packed in zip(indices.tolist(), packed.tolist()):
        stream = sum(v << (j * index_bits) for j, v in enumerate(row))
        assert bytes(row_packed) == stream.to_bytes(len(row_packed), "little")
    torch.testing.assert_close(unpack_indices(packed, index_bits), indices, rtol=0, atol=0)


def test_pack_3_bit_example():
    # stream = 1 | 2<<3 | 3<<6 | 4<<9 | 5<<12 | 6<<15 | 7<<18 | 0<<21 = 0x1F58D1, bytes low first
    packed = pack_indices(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 0]]), 3)
    assert packed.tolist() == [[0xD1, 0x58, 0x1F]]


def test_pack_rejects_partial_word():
    with pytest.raises(ValueError, match="multiple of 8"):
        pack_indices(torch.zeros(1, 12, dtype=torch.int64), 3)


# --- storage ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("p,bits", SUPPORTED_GRIDS)
@pytest.mark.parametrize("group_size,channels", [(16, 48), (64, 192), (128, 1024), (1024, 1024)])
def test_storage_is_exactly_bits_per_value(p, bits, group_size, channels):
    quantizer = HiggsQuantizer(group_size, p, bits)
    x = torch.randn(5, channels)
    codes, scales = quantizer.quantize(x)
    assert codes.dtype == torch.uint8 and codes.shape == (5, channels * bits // 8)
    assert scales.dtype == torch.float16 and scales.shape == (5, channels // group_size)
    assert codes.numel() * 8 == x.numel() * bits  # exactly bits/8 bytes per value
    assert quantizer.bytes_per_vector(channels) == channels * bits // 8 + 2 * (channels // group_size)
    assert quantizer.code_bytes(channels) == codes.shape[-1]


def test_bytes_per_vector_follows_scale_dtype():
    assert HiggsQuantizer(128, 4, 2).bytes_per_vector(1024) == 256 + 8 * 2
    assert HiggsQuantizer(1024, 2, 4, torch.float32).bytes_per_vector(1024) == 512 + 4


# --- round trip ------------------------------------------------------------------------------------
@pytest.mark.parametrize("p,bits", SUPPORTED_GRIDS)
@pytest.mark.parametrize("group_size", [128, 512, 1024])
def test_round_trip_error_matches_grid_mse(p, bits, group_size):
    quantizer = HiggsQuantizer(group_size, p, bits)
    x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(p * 10 + bits))
    x_hat = quantizer.dequantize(*quantizer.quantize(x))
    expected = stored_mse(p, bits) ** 0.5
    assert abs(relative_error(x, x_hat) - expected) <= 0.05 * expected, (relative_error(x, x_hat), expected)


@pytest.mark.parametrize("p,bits", [(2, 4), (4, 2), (1, 3)])
def test_round_trip_matches_dense_reference(p, bits):
    quantizer = HiggsQuantizer(64, p, bits)
    x = torch.randn(2, 3, 192)
    codes, scales = quantizer.quantize(x)
    torch.testing.assert_close(quantizer.dequantize(codes, scales).double(),
                               reference_dequantize(quantizer, codes, scales), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale_dtype,factors", [
    (torch.float16, [1e-2, 1.0, 1e2]),
    (torch.bfloat16, [1e-20, 1.0, 1e20]),
    (torch.float32, [1e-6, 1.0, 1e6]),
])
def test_round_trip_error_is_independent_of_scale(scale_dtype, factors):
    quantizer = HiggsQuantizer(128, 2, 4, scale_dtype)
    x = torch.randn(32, 1024, generator=torch.Generator().manual_seed(0))
    errors = [relative_error(x * f, quantizer.dequantize(*quantizer.quantize(x * f))) for f in factors]
    assert max(errors) - min(errors) <= 0.01 * errors[1], errors


def test_power_of_two_rescaling_keeps_codes():
    quantizer = HiggsQuantizer(128, 4, 2, torch.float32)
    x = torch.randn(16, 256)
    codes, scales = quantizer.quantize(x)
    codes_big, scales_big = quantizer.quantize(x * 1024.0)
    torch.testing.assert_close(codes_big, codes, rtol=0, atol=0)
    torch.testing.assert_close(scales_big, scales * 1024.0, rtol=0, atol=0)


def test_per_head_groups_quantize_heads_independently():
    quantizer = HiggsQuantizer(128, 4, 2)
    x = torch.randn(9, 8, 128)  # (tokens, heads, head_dim)
    whole = quantizer.quantize(x.reshape(9, 1024))
    per_head = quantizer.quantize(x)
    torch.testing.assert_close(whole.codes, per_head.codes.reshape(9, -1), rtol=0, atol=0)
    torch.testing.assert_close(whole.scales, per_head.scales.reshape(9, -1), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input(dtype):
    quantizer = HiggsQuantizer(128, 2, 4)
    x = torch.randn(8, 256).to(dtype)
    codes, scales = quantizer.quantize(x)
    assert relative_error(x.float(), quantizer.dequantize(codes, scales)) < 1.05 * stored_mse(2, 4) ** 0.5
    assert quantizer.dequantize(codes, scales, dtype=dtype).dtype == dtype


def test_non_contiguous_input():
    quantizer = HiggsQuantizer(64, 2, 3)
    x = torch.randn(128, 10).t()  # (10, 128), not contiguous
    torch.testing.assert_close(quantizer.quantize(x).codes, quantizer.quantize(x.contiguous()).codes)


def test_zero_groups_dequantize_to_zero():
    quantizer = HiggsQuantizer(64, 4, 2)
    x = torch.randn(4, 192)
    x[1] = 0.0
    x[2, 64:128] = 0.0
    codes, scales = quantizer.quantize(x)
    x_hat = quantizer.dequantize(codes, scales)
    assert torch.isfinite(x_hat).all()
    assert scales[1].tolist() == [0.0, 0.0, 0.0] and scales[2, 1].item() == 0.0
    assert x_hat[1].abs().max() == 0 and x_hat[2, 64:128].abs().max() == 0
    q = torch.randn(4, 192)
    assert torch.isfinite(quantizer.score(q, codes, scales)).all()


def test_empty_input():
    quantizer = HiggsQuantizer(128, 2, 4)
    codes, scales = quantizer.quantize(torch.randn(0, 256))
    assert codes.shape == (0, 128) and scales.shape == (0, 2)
    assert quantizer.dequantize(codes, scales).shape == (0, 256)
    assert quantizer.score(torch.randn(3, 256), codes, scales).shape == (3, 0)


# --- score -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("p,bits", [(4, 2), (2, 4), (1, 3), (2, 3)])
@pytest.mark.parametrize("group_size,channels", [(64, 192), (128, 128), (1024, 1024)])
def test_score_equals_q_dot_dequantized(p, bits, group_size, channels):
    quantizer = HiggsQuantizer(group_size, p, bits)
    gen = torch.Generator().manual_seed(group_size + p)
    keys = 3 * torch.randn(2, 37, channels, generator=gen)
    q = torch.randn(2, 5, channels, generator=gen)
    codes, scales = quantizer.quantize(keys)
    scores = quantizer.score(q, codes, scales)
    expected = q @ quantizer.dequantize(codes, scales).mT
    assert scores.dtype == torch.float32 and scores.shape == (2, 5, 37)
    bound = q.norm(dim=-1, keepdim=True) * keys.norm(dim=-1)[:, None, :]  # |q . k'| <~ |q| |k|
    assert ((scores - expected).abs() <= 1e-6 * bound).all()


def test_score_chunks_and_broadcasts(monkeypatch):
    quantizer = HiggsQuantizer(128, 4, 2)
    gen = torch.Generator().manual_seed(5)
    keys = torch.randn(3, 50, 256, generator=gen)
    codes, scales = quantizer.quantize(keys)
    q = torch.randn(4, 256, generator=gen)  # broadcast over the batch of 3
    whole = quantizer.score(q, codes, scales)
    monkeypatch.setattr(higgs, "_SCORE_CHUNK_VALUES", 7 * 3 * 256)  # 7 tokens per chunk
    chunked = quantizer.score(q, codes, scales)
    assert whole.shape == chunked.shape == (3, 4, 50)
    # chunks change the float32 summation order only: the difference is rounding, far below |q| |k|
    bound = q.norm(dim=-1)[None, :, None] * keys.norm(dim=-1)[:, None, :]
    assert ((chunked - whole).abs() <= 1e-6 * bound).all()


def test_score_per_head_gqa_view():
    """Landmark layout [N, Hkv * 32 bytes]: per-head scores through a transposed view."""
    quantizer = HiggsQuantizer(128, 4, 2)
    num_tokens, num_kv_heads, group = 40, 2, 3
    keys = torch.randn(num_tokens, num_kv_heads, 128)
    codes, scales = quantizer.quantize(keys.reshape(num_tokens, -1))
    q = torch.randn(num_kv_heads, group, 128)
    codes_h = codes.view(num_tokens, num_kv_heads, -1).transpose(0, 1)  # (Hkv, N, 32)
    scales_h = scales.transpose(0, 1)[..., None]  # (Hkv, N, 1)
    scores = quantizer.score(q, codes_h, scales_h)
    keys_hat = quantizer.dequantize(codes, scales).view(num_tokens, num_kv_heads, 128).transpose(0, 1)
    torch.testing.assert_close(scores, q @ keys_hat.mT, rtol=1e-5, atol=1e-4)


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("group_size", [100, 48, 8, 8192, 0])
def test_rejects_bad_group_size(group_size):
    with pytest.raises(ValueError, match="group_size must be a power of two"):
        HiggsQuantizer(group_size, 2, 4)


@pytest.mark.parametrize("p,bits", [(3, 2), (4, 3), (2, 1)])
def test_rejects_unsupported_grid(p, bits):
    with pytest.raises(ValueError, match=r"\(p, bits\)"):
        HiggsQuantizer(128, p, bits)


def test_rejects_bad_scale_dtype():
    with pytest.raises(ValueError, match="scale_dtype"):
        HiggsQuantizer(128, 2, 4, torch.int8)


@pytest.mark.parametrize("channels", [130, 64, 1000])
def test_rejects_channels_not_multiple_of_group(channels):
    with pytest.raises(ValueError, match="multiple of group_size=128, got " + str(channels)):
        HiggsQuantizer(128, 2, 4).quantize(torch.randn(3, channels))


@pytest.mark.parametrize("dtype", [torch.int32, torch.float64, torch.uint8])
def test_rejects_wrong_input_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        HiggsQuantizer(128, 2, 4).quantize(torch.zeros(2, 128, dtype=dtype))


def test_rejects_bad_codes_and_scales():
    quantizer = HiggsQuantizer(128, 2, 4)
    codes, scales = quantizer.quantize(torch.randn(3, 256))
    with pytest.raises(ValueError, match="codes must be uint8"):
        quantizer.dequantize(codes.to(torch.int16), scales)
    with pytest.raises(ValueError, match="scales must have dtype"):
        quantizer.dequantize(codes, scales.float())
    with pytest.raises(ValueError, match="codes last dimension"):
        quantizer.dequantize(codes[:, :100], scales)
    with pytest.raises(ValueError, match="agree"):
        quantizer.dequantize(codes[:2], scales)
    with pytest.raises(ValueError, match="matching C"):
        quantizer.score(torch.randn(2, 128), codes, scales)
    with pytest.raises(ValueError, match="dtype"):
        quantizer.score(torch.randn(2, 256, dtype=torch.float64), codes, scales)


def test_codes_tuple():
    result = HiggsQuantizer(128, 4, 2).quantize(torch.randn(2, 128))
    assert isinstance(result, HiggsCodes) and result._fields == ("codes", "scales")
