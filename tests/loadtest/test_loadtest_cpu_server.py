"""Headless Locust runs against a real CPU SGLang server with ``--kv-offload oracle`` (tiny random Llama).

About 2 minutes on 2 cores: one server start (30-50 s), a 15 s clean run with chat, a 10 s run with
/generate token ids, and a run that kills the server. Every Locust run is bounded by 60 s.
"""

from __future__ import annotations

import time

import pytest

from loadtest_harness import check_clean_run, finish_locust, run_locust, start_locust
from sglang_kv.cpu.server import cpu_server

pytestmark = pytest.mark.server

OFFLOAD = ["--kv-offload", "oracle", "--kv-offload-budget", "0.05", "--kv-offload-min-prompt", "64"]
# ~100 random words: about 500 prompt tokens with the tiny model's byte tokenizer
WORKLOAD = ["--random-input-len", "100", "--random-output-len", "16"]


@pytest.fixture(scope="module")
def offload_server(tiny_model, server_log_dir):
    with cpu_server(tiny_model, OFFLOAD, log_dir=server_log_dir) as server:
        yield server


def test_headless_chat_run_with_kv_offload(offload_server, tmp_path):
    before = offload_server.offload_stats()
    prefix = tmp_path / "chat"
    run = run_locust(offload_server.url, prefix, ["-u", "2", "-r", "2", "-t", "15s", "--json-file",
                                                  f"{prefix}_locust", *WORKLOAD])
    figures = check_clean_run(run)
    assert figures["total_input_tokens"] > 64 * figures["completed"]  # long enough to be offloaded
    assert figures["total_output_tokens"] == 16 * figures["completed"]  # ignore_eos: the full budget
    stats = offload_server.offload_stats()
    assert stats["method"] == "oracle"
    # every completed request went through the offload path (runs cut at the end add a few more)
    assert stats["requests_offloaded"] - before["requests_offloaded"] >= figures["completed"]
    assert run.summary()["workload"]["server_info"]["internal_states"][0]["kv_offload"]["method"] == "oracle"


def test_headless_generate_run_with_token_ids(offload_server, tmp_path):
    prefix = tmp_path / "gen"
    run = run_locust(offload_server.url, prefix, ["-u", "2", "-r", "2", "-t", "10s", "--endpoint", "generate",
                                                  "--input-ids", "--vocab-size", "256", "--json-file",
                                                  f"{prefix}_locust", *WORKLOAD])
    figures = check_clean_run(run)
    assert figures["total_input_tokens"] == 100 * figures["completed"]  # token ids: exact lengths


def test_killing_the_server_fails_the_run_without_hanging(offload_server, tmp_path):
    """Runs last in this module: the server does not survive it."""
    prefix = tmp_path / "kill"
    started = time.monotonic()
    process = start_locust(offload_server.url, prefix, ["-u", "2", "-r", "2", "-t", "50s",
                                                        "--abort-after-failures", "10", "--request-timeout", "10",
                                                        "--json-file", f"{prefix}_locust", *WORKLOAD])
    time.sleep(8)
    offload_server.kill()
    run = finish_locust(process, prefix, started)
    assert run.returncode != 0
    assert run.wall_s < 40, f"stopped only after {run.wall_s:.0f} s"
    figures = run.summary()["figures"]
    assert figures["failed"] >= 10
    assert run.locust_totals() == (figures["completed"] + figures["failed"], figures["failed"])
