"""python -m sglang_kv.quant.bench: the CPU table and, on CPU under the Triton interpreter, every step
of the GPU kernel section with tiny sizes (timing stubbed), so the unattended GPU run cannot fail on
bench logic. About 20-40 s.
"""

from __future__ import annotations

import json

import pytest
import torch

from sglang_kv.quant import bench

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def triton_interpreter_without_gpu():
    """Without CUDA, TRITON_INTERPRET=1 while this module's tests run (the bench imports the kernels
    at its first launch), restored afterwards so processes other tests start do not inherit it."""
    if torch.cuda.is_available():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")
        yield


def test_cpu_table_and_result_file(tmp_path, capsys):
    out = tmp_path / "quant_bench_cpu.json"
    assert bench.main(["--device", "cpu", "--accuracy-tokens", "32", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert {"command", "commit", "machine", "date", "workload", "figures"} <= set(record)
    assert record["command"] == f"python -m sglang_kv.quant.bench --device cpu --accuracy-tokens 32 --out {out}"
    rows = record["figures"]["accuracy"]
    assert len(rows) == 16  # 8 grids x (per-head, whole-token groups)
    for row in rows:
        bits = row["bits"]
        groups = 1024 // row["group_size"]
        assert row["bytes_per_token"] == 1024 * bits // 8 + 2 * groups
        assert abs(row["rel_error_gaussian"] - row["sqrt_grid_mse"]) <= 0.1 * row["sqrt_grid_mse"]
    assert "kernels" not in record["figures"]
    assert "p4_b2" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU host runs the real benchmark instead")
def test_kernel_section_runs_every_step(monkeypatch):
    monkeypatch.setattr(bench, "_do_bench", lambda fn: (fn(), 1.0)[1])
    monkeypatch.setattr(bench, "copy_bandwidth_gbps", lambda device: 4000.0)
    monkeypatch.setattr(bench, "NUM_Q_HEADS", 16)  # smaller interpreter tiles, same code path
    monkeypatch.setattr(bench, "BF16_REL", 2 ** -7)  # the interpreter truncates float32 -> bfloat16
    lines = []
    results = bench.bench_kernels([48], torch.device("cpu"), lines.append)
    kernels = {r["kernel"] for r in results["records"]}
    assert kernels == {"quantize_store_p2b4_g1024", "quantize_landmark_p4b2_g128",
                       "dequantize_gather_store_all_random", "dequantize_gather_store_all_sorted",
                       "dequantize_gather_store_head_all_random", "dequantize_gather_store_head_all_sorted",
                       "score_landmark_batch1_triton", "score_landmark_batch8_triton",
                       "score_landmark_batch32_triton"}  # the CUDA score needs a GPU: not run here
    assert all(r["matches_reference"] for r in results["records"]), results["records"]
    for r in results["records"]:
        assert r["bytes"] > 0 and r["gbps"] == pytest.approx(r["bytes"] / 1e6)  # 1 ms per run
    head_rows = [r for r in results["records"] if r["kernel"].startswith("dequantize_gather_store_head")]
    assert all(r["rows"] == 48 * 8 and r["group_size"] == 128 for r in head_rows)  # a row per (token, kv head)
    assert all(r["bytes"] == 48 * 8 * (64 + 2 + 8 + 256) for r in head_rows)  # codes, scale, index, bf16 out
    # pinned host memory needs CUDA: that step is recorded as an error and the run goes on
    assert [e["kernel"] for e in results["errors"]] == ["dequantize_gather_pinned"]
    assert results["tuning"] == []  # the interpreter takes the first config, nothing is timed
    json.dumps(results)
