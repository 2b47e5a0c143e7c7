"""Selectors on CUDA (the serving path): Triton kernels for landmark scores, quantization and the
zero-copy dequantize-gather from a pinned host store, against the CPU torch reference.
GPU host only; skipped without CUDA."""

import dataclasses

import pytest
import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.select import ModelShape, make_selector
from sglang_kv.store.host import HostArena, HostBlock

pytestmark = pytest.mark.gpu

SHAPES = [ModelShape(32, 8, 128), ModelShape(9, 3, 64)]  # Llama-3.1-8B (token groups), SmolLM2 (head groups)


@pytest.mark.parametrize("shape", SHAPES)
def test_yakv_cuda_path_matches_cpu_reference(shape):
    torch.manual_seed(0)
    L, k = 5000, 160
    keys = torch.randn(L, shape.num_kv_heads, shape.head_dim, dtype=torch.bfloat16)
    values = torch.randn(L, shape.num_kv_heads, shape.head_dim, dtype=torch.bfloat16)
    q = torch.randn(shape.num_q_heads, shape.head_dim, dtype=torch.bfloat16)
    sel = make_selector("yakv", shape, OffloadConfig(method="yakv"))
    gpu = sel.build(keys.cuda(), values.cuda())  # Triton quantize
    arena = HostArena(1 << 28, pin=True)
    block = HostBlock(arena, gpu.payload)  # the serving layout: payload pinned on the host
    gpu = dataclasses.replace(gpu, payload=block.tensors)
    assert all(t.is_pinned() for t in gpu.payload.values())
    # scores: the Triton kernel on CUDA vs the torch reference on CPU, over the same codes
    scores = sel.landmark_scores(q.cuda(), gpu)
    torch.testing.assert_close(scores.cpu(), sel.landmark_scores(q, _to_cpu(gpu)), atol=2e-2, rtol=1e-3)
    index = sel.select(q.cuda(), gpu, k, 0.088)
    assert index.shape == (shape.num_kv_heads, k) and index.is_cuda
    k_gpu, v_gpu = sel.gather(gpu, index, dtype=torch.float32)
    k_ref, v_ref = sel.gather(_to_cpu(gpu), index.cpu(), dtype=torch.float32)
    torch.testing.assert_close(k_gpu.cpu(), k_ref, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(v_gpu.cpu(), v_ref, atol=1e-3, rtol=1e-3)


def _to_cpu(summary):
    return dataclasses.replace(summary, device={n: t.cpu() for n, t in summary.device.items()},
                               payload={n: t.cpu() for n, t in summary.payload.items()},
                               positions=summary.positions.cpu())
