"""The torch stand-in for sgl-kernel's CPU ops: each op against its semantics; others raise."""

import importlib.util

import pytest
import torch

from sglang_kv.cpu.server import STUB_DIR


@pytest.fixture(scope="module")
def stub():
    spec = importlib.util.spec_from_file_location("sgl_kernel_stub_under_test", STUB_DIR / "sgl_kernel" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_assign_req_to_token_pool_cpu(stub):
    torch.manual_seed(0)
    rows, pool_len = 7, 50
    req_to_token = torch.full((rows, pool_len), -1, dtype=torch.int32)
    req_pool_indices = torch.tensor([3, 0, 5])
    start = torch.tensor([0, 10, 47])
    end = torch.tensor([4, 13, 50])
    out_cache_loc = torch.randint(0, 1000, (10,), dtype=torch.int64)
    expected = req_to_token.clone()
    off = 0
    for r, s, e in zip(req_pool_indices.tolist(), start.tolist(), end.tolist()):
        expected[r, s:e] = out_cache_loc[off:off + e - s].int()
        off += e - s
    stub.assign_req_to_token_pool_cpu(req_pool_indices, req_to_token, start, end, out_cache_loc, pool_len)
    assert torch.equal(req_to_token, expected)
    with pytest.raises(ValueError, match="out_cache_loc has 10 entries"):
        stub.assign_req_to_token_pool_cpu(req_pool_indices, req_to_token, start, end - 1, out_cache_loc, pool_len)


def test_unimplemented_ops_import_but_raise_when_called(stub):
    op = stub.rmsnorm_cpu  # importable: SGLang imports many ops it never calls on this path
    with pytest.raises(NotImplementedError, match="sgl_kernel.rmsnorm_cpu is not implemented"):
        op(torch.zeros(1))
    with pytest.raises(AttributeError):
        stub.__wrapped__
