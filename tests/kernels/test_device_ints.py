"""``devices.device_ints``: the values on the device; on CUDA one kept tensor per (values, dtype,
device, stream), evicted least recently used."""

from __future__ import annotations

import pytest
import torch

from sglang_kv import devices

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="the kept tables exist on CUDA only")


def test_values_rows_and_dtype():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    got = devices.device_ints([(1, 2, 3), (4, 5, 6)], device)
    assert got.dtype == torch.int64 and got.device.type == device.type
    assert got.cpu().tolist() == [[1, 2, 3], [4, 5, 6]]
    got = devices.device_ints([[7, 8], [9, 10]], device, torch.int32)  # list rows too
    assert got.dtype == torch.int32 and got.cpu().tolist() == [[7, 8], [9, 10]]


@CUDA
def test_equal_values_share_one_tensor_per_stream():
    device = torch.device("cuda")
    a = devices.device_ints([(11, 12), (13, 14)], device)
    assert devices.device_ints([(11, 12), (13, 14)], device) is a
    assert devices.device_ints([[11, 12], [13, 14]], device) is a  # rows as lists: the same key
    assert devices.device_ints([(11, 12), (13, 15)], device) is not a
    assert devices.device_ints([(11, 12), (13, 14)], device, torch.int32) is not a
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        b = devices.device_ints([(11, 12), (13, 14)], device)
    torch.cuda.synchronize()
    assert b is not a and b.tolist() == a.tolist() == [[11, 12], [13, 14]]


@CUDA
def test_least_recently_used_tables_are_evicted(monkeypatch):
    device = torch.device("cuda")
    monkeypatch.setattr(devices, "CACHE_ENTRIES", 3)
    monkeypatch.setattr(devices, "_cache", type(devices._cache)())
    first = devices.device_ints([1001], device)
    second = devices.device_ints([1002], device)
    devices.device_ints([1003], device)
    assert devices.device_ints([1001], device) is first  # a use makes it recent
    devices.device_ints([1004], device)  # evicts [1002], the least recently used
    assert len(devices._cache) == 3
    assert devices.device_ints([1001], device) is first
    again = devices.device_ints([1002], device)
    assert again is not second and again.tolist() == [1002]


@CUDA
def test_current_stream_handle_is_torchs_current_stream():
    device = torch.device("cuda")
    assert devices.current_stream_handle(device) == torch.cuda.current_stream(device).cuda_stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        assert devices.current_stream_handle(torch.device("cuda", 0)) == side.cuda_stream != 0
