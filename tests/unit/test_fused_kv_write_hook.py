"""The hook that keeps models' fused RoPE + KV store off the tiered pool (it would write at slots)."""

import torch
from sglang.srt.model_executor import forward_context
from sglang.srt.models import utils as model_utils

from sglang_kv import hooks
from sglang_kv.store.device import TieredKVPool


class _StockPool:
    dtype = torch.bfloat16


def _with_pool(monkeypatch, pool):
    monkeypatch.setattr(model_utils, "_is_cuda", True)  # the fused store's CUDA conditions
    monkeypatch.setattr(model_utils, "is_prefill_context_parallel_enabled", lambda: False)
    for module in (model_utils, forward_context):
        monkeypatch.setattr(module, "get_token_to_kv_pool", lambda: pool)


_fused_enabled = model_utils.enable_fused_set_kv_buffer  # SGLang's function (no hooks applied in tests)


def test_stock_pool_keeps_the_fused_store(monkeypatch):
    _with_pool(monkeypatch, _StockPool())
    batch = object()
    assert _fused_enabled(batch) is True  # SGLang would fuse on CUDA with a bf16 pool ...
    assert hooks.fused_kv_write(_fused_enabled, batch) is True  # ... and the hook leaves that alone


def test_tiered_pool_turns_the_fused_store_off(monkeypatch):
    tiered = TieredKVPool.__new__(TieredKVPool)  # type only: the hook looks at nothing else
    tiered.dtype = torch.bfloat16
    _with_pool(monkeypatch, tiered)
    batch = object()
    assert _fused_enabled(batch) is True  # without the hook the model would write at slots
    assert hooks.fused_kv_write(_fused_enabled, batch) is False
