"""The host arena: allocation, coalescing, exhaustion, and payload blocks."""

import pytest
import torch

from sglang_kv.store.host import ALIGN, HostArena, HostBlock, HostStoreFull


def test_alloc_free_coalesce_and_exhaustion():
    arena = HostArena(10 * ALIGN, pin=False)
    a = arena.alloc(ALIGN)  # 1 unit
    b = arena.alloc(3 * ALIGN + 1)  # rounds up to 4 units
    c = arena.alloc(5 * ALIGN)
    assert (a, b, c) == (0, ALIGN, 5 * ALIGN) and arena.used_bytes == 10 * ALIGN
    with pytest.raises(HostStoreFull, match="raise --kv-offload-host-mem"):
        arena.alloc(1)
    arena.free(b)
    arena.free(a)  # coalesces with b's range
    assert arena.alloc(5 * ALIGN) == 0  # the merged 5-unit hole
    arena.free(0)
    arena.free(c)
    assert arena.used_bytes == 0 and arena.alloc(10 * ALIGN) == 0  # everything merged back


def test_host_block_holds_a_copy_of_the_payload():
    torch.manual_seed(0)
    arena = HostArena(1 << 20, pin=False)
    payload = {"codes": torch.randint(0, 255, (37, 3, 16), dtype=torch.uint8),
               "scales": torch.randn(37, 3).half(), "v": torch.randn(37, 3, 64).bfloat16()}
    block = HostBlock(arena, payload)
    for name, t in payload.items():
        assert torch.equal(block.tensors[name], t) and block.tensors[name].data_ptr() != t.data_ptr()
    assert arena.used_bytes == block.nbytes >= sum(t.numel() * t.element_size() for t in payload.values())
    block.release()
    assert arena.used_bytes == 0 and block.tensors == {}
