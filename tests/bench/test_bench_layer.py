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
