"""The serving benchmark end to end, as a CPU smoke run on the tiny model (about 1.5 minutes)."""

import json

import pytest

from sglang_kv.bench import serve

pytestmark = pytest.mark.server


def test_serve_bench_records_stock_and_offload_runs(tiny_model, tmp_path):
    out = tmp_path / "serve.json"
    code = serve.main(["--cpu", "--model", str(tiny_model), "--methods", "none,yakv", "--num-requests", "3",
                       "--prompt-len", "700", "--output-len", "6", "--vocab", "250",
                       "--offload-args", "--kv-offload-min-prompt 256 --kv-offload-decode-timing 2", "--out", str(out),
                       "--log-dir", str(tmp_path / "logs")])
    record = json.loads(out.read_text())
    runs = {r["method"]: r for r in record["figures"]["runs"]}
    assert code == 0, runs
    for method in ("none", "yakv"):
        run = runs[method]
        assert run["completed"] == 3 and run["failed"] == 0
        assert run["output_throughput_tok_s"] > 0 and run["max_running_requests"] >= 1
        assert run["ttft_s"]["max"] <= run["e2e_s"]["max"]
        assert run["steady_decode"]["batch"] >= 1 and run["steady_decode"]["tok_s"] > 0  # SGLang logged them
    assert runs["none"]["kv_offload"] is None
    assert runs["none"]["decode_timing"] is None  # stock has no offload backend to time
    timing = runs["yakv"]["decode_timing"]  # the offload backend logged its attention time
    assert timing["layers"] == json.loads((tiny_model / "config.json").read_text())["num_hidden_layers"]
    assert timing["batch"] >= 1 and timing["attention_ms_per_step"] > 0
    assert list(timing["stages_ms_per_step"]) == ["kv_write", "select", "gather", "attend", "other"]
    assert runs["yakv"]["kv_offload"]["requests_offloaded"] == 3 + 1  # and the warm-up request
    assert "KV capacity" in runs["yakv"]["capacity_log"]
    assert record["workload"]["prompt_len"] == 700 and record["workload"]["decode_log_interval"] == 4 and "command" in record
