"""The layer benchmark's bookkeeping, as a small CPU smoke run (the measurement runs on the GPU)."""

import json

import pytest

from sglang_kv.bench.__main__ import main


def test_layer_bench_smoke_on_cpu(tmp_path):
    """Through ``python -m sglang_kv.bench layer``, the documented entry."""
    out = tmp_path / "layer.json"
    args = ["layer", "--cpu", "--batches", "2", "--contexts", "1024", "--budgets", "0.03125", "1.0",
            "--iters", "1", "--host-gib", "0.1", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    result = json.loads(out.read_text())
    assert result["command"].startswith("python -m sglang_kv.bench layer --cpu")
    rows = result["figures"]["rows"]
    assert [r["budget"] for r in rows] == [0.03125, 1.0]
    small, full = rows
    assert small["k"] == 32 and full["k"] == 1024
    # the bytes read from host grow with the selection and the floor with them
    assert 0 < small["pcie_bytes"] < full["pcie_bytes"]
    assert small["floor_ms"] < full["floor_ms"]
    assert all(r["offload_ms"] > 0 and r["full_ms"] > 0 for r in rows)


def test_layer_bench_with_the_device_cache_on_cpu(tmp_path):
    """A repeated query hits the cache fully after the warm-up; a drifting one partly; host bytes
    fall with the hits and the uncached floor keeps the bytes without the cache."""
    out = tmp_path / "layer.json"
    args = ["layer", "--cpu", "--batches", "2", "--contexts", "1024", "--budgets", "0.0625", "--cache", "0.5",
            "--drifts", "0", "2", "--iters", "2", "--warmup-steps", "2", "--host-gib", "0.1", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    fixed, drifting = json.loads(out.read_text())["figures"]["rows"]
    assert fixed["cache_hit_rate"] == 1.0 and fixed["pcie_bytes"] == 0
    assert 0 < drifting["cache_hit_rate"] < 1
    assert 0 < drifting["pcie_bytes"] < drifting["pcie_bytes_uncached"]
    assert drifting["floor_ms"] < drifting["floor_uncached_ms"]


def test_layer_bench_chunked_step_counts_the_same_bytes(tmp_path):
    """The step split into chunks of requests (``--chunks``) reads the same host bytes as the whole
    step, and each row says how it was split; a chunk count past the batch is refused."""
    out = tmp_path / "layer.json"
    args = ["layer", "--cpu", "--batches", "3", "--contexts", "1024", "--budgets", "0.0625", "--iters", "1",
            "--host-gib", "0.1", "--out", str(out), "--chunks"]
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["1", "2", "3"])
    assert exit_info.value.code == 0
    rows = json.loads(out.read_text())["figures"]["rows"]
    assert [r["chunks"] for r in rows] == [1, 2, 3]
    assert rows[0]["pcie_bytes"] > 0 and len({r["pcie_bytes"] for r in rows}) == 1
    with pytest.raises(ValueError, match="--chunks"):
        main(args + ["4"])
    with pytest.raises(SystemExit) as exit_info:  # each chunk count with each finish SM limit
        main(args + ["1", "2", "--finish-sms", "0", "1"])
    assert exit_info.value.code == 0
    rows = json.loads(out.read_text())["figures"]["rows"]
    assert [(r["chunks"], r["finish_sms"]) for r in rows] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert len({r["pcie_bytes"] for r in rows}) == 1
    with pytest.raises(ValueError, match="--finish-sms"):
        main(args + ["2", "--finish-sms", "-1"])
