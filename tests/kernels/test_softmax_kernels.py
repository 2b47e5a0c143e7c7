"""The selection's fused softmax + GQA max (``kernels.softmax.group_max_softmax_batch``) equals its torch
reference on fresh random logits: requests of different lengths, GQA groups of 1, 3 and 4, garbage past
each length, blocks shorter than a row. Without CUDA the kernel runs in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import softmax
from sglang_kv.kernels.higgs import KernelConfig
from sglang_kv.select.base import group_max_softmax

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _logits(gen, batch, num_q_heads, lengths, scale=4.0):
    width = max(lengths)
    logits = scale * torch.randn(batch, num_q_heads, width, generator=gen)
    for b, n in enumerate(lengths):
        logits[b, :, n:] = torch.randn(num_q_heads, width - n, generator=gen) * 1e4  # never read
    return logits.to(DEVICE)


@pytest.mark.parametrize("num_q_heads,num_kv_heads", [(8, 2), (9, 3), (4, 4)])
@pytest.mark.parametrize("config", [KernelConfig(16, 4), KernelConfig(64, 2)], ids=str)
def test_group_max_softmax_batch_equals_reference(num_q_heads, num_kv_heads, config):
    gen = torch.Generator().manual_seed(num_q_heads + config.block)
    lengths = [70, 1, 33, 128]
    logits = _logits(gen, len(lengths), num_q_heads, lengths)
    lengths_dev = torch.tensor(lengths, dtype=torch.int32, device=DEVICE)
    got = softmax.group_max_softmax_batch(logits, lengths_dev, num_kv_heads, 0.3, config=config)
    want = softmax.group_max_softmax_batch_ref(logits, lengths_dev, num_kv_heads, 0.3)
    assert got.shape == (len(lengths), num_kv_heads, max(lengths)) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    for b, n in enumerate(lengths):  # the per-request torch path the batch replaces
        single = group_max_softmax(logits[b, :, :n] * 0.3, num_kv_heads)
        torch.testing.assert_close(got[b, :, :n], single, rtol=1e-5, atol=1e-7)
        assert (got[b, :, n:] == -1).all()
    assert torch.allclose(got[1, :, 0], torch.ones(num_kv_heads, device=DEVICE))  # one token: probability 1


def test_group_max_softmax_batch_into_out_and_rejects_bad_input():
    gen = torch.Generator().manual_seed(3)
    logits = _logits(gen, 2, 4, [5, 9])
    lengths = torch.tensor([5, 9], dtype=torch.int32, device=DEVICE)
    out = torch.empty(2, 2, 9, device=DEVICE)
    got = softmax.group_max_softmax_batch(logits, lengths, 2, 1.0, out=out)
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got, softmax.group_max_softmax_batch_ref(logits, lengths, 2, 1.0))
    with pytest.raises(ValueError, match="float32"):
        softmax.group_max_softmax_batch(logits.half(), lengths, 2, 1.0)
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        softmax.group_max_softmax_batch(logits, lengths, 3, 1.0)
    with pytest.raises(ValueError, match="lengths must be int32"):
        softmax.group_max_softmax_batch(logits, lengths.long(), 2, 1.0)
    with pytest.raises(ValueError, match="scale must be positive"):
        softmax.group_max_softmax_batch(logits, lengths, 2, 0.0)
    with pytest.raises(ValueError, match="out: expected shape"):
        softmax.group_max_softmax_batch(logits, lengths, 2, 1.0, out=torch.empty(2, 4, 9, device=DEVICE))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_group_max_softmax_batch_full_size():
    """32 requests of 64K and 40K tokens, Llama-3.1-8B heads (32 query, 8 kv), tuned config."""
    gen = torch.Generator().manual_seed(5)
    lengths = [65536 if b % 2 else 40000 for b in range(32)]
    logits = _logits(gen, 32, 32, lengths, scale=8.0)
    lengths_dev = torch.tensor(lengths, dtype=torch.int32, device=DEVICE)
    got = softmax.group_max_softmax_batch(logits, lengths_dev, 8, 128 ** -0.5)
    torch.testing.assert_close(got, softmax.group_max_softmax_batch_ref(logits, lengths_dev, 8, 128 ** -0.5),
                               rtol=1e-5, atol=1e-9)
