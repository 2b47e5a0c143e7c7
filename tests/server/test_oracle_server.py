"""--kv-offload oracle served by a real SGLang server on CPU (tiny random-weight Llama).

About 3 minutes on 2 cores: three server starts (~30 s each) plus the invalid-flag launches.
"""

from __future__ import annotations

import concurrent.futures as cf

import pytest
import requests

from sglang_kv.cpu.server import cpu_server, run_cli
from tests.server.conftest import BATCH, PROMPT_LENS, greedy_outputs
from tests.server.util import generate, prompt_ids, wait_for

pytestmark = pytest.mark.server

FULL_BUDGET = ["--kv-offload", "oracle", "--kv-offload-budget", "1.0", "--kv-offload-min-prompt", "16",
               "--kv-offload-local", "8", "--kv-offload-sink", "2"]


def test_full_budget_oracle_matches_stock_greedy_tokens(tiny_model, server_log_dir, stock_outputs):
    with cpu_server(tiny_model, FULL_BUDGET, log_dir=server_log_dir) as server:
        outputs = greedy_outputs(server.url)
        stats = server.offload_stats()
    assert outputs == stock_outputs
    num_requests = len(PROMPT_LENS) + len(BATCH)
    assert stats["method"] == "oracle"
    assert stats["requests_offloaded"] >= num_requests
    assert stats["decode_steps"] >= num_requests * 23  # every decode step after the first token
    assert stats["live_requests"] == 0 and stats["device_bytes"] == 0 and stats["host_bytes_in_use"] == 0


@pytest.fixture(scope="module")
def small_budget_server(tiny_model, server_log_dir):
    args = ["--kv-offload", "oracle", "--kv-offload-budget", "0.05", "--kv-offload-min-prompt", "400",
            "--chunked-prefill-size", "128"]
    with cpu_server(tiny_model, args, log_dir=server_log_dir) as server:
        yield server


def test_small_budget_serves_batches_chunked_prefill_and_prefix_hits(small_budget_server):
    url = small_budget_server.url
    before = small_budget_server.offload_stats()
    prompts = [prompt_ids(n, seed=7 * n) for n in (150, 389, 640, 1000, 1203)]
    with cf.ThreadPoolExecutor(len(prompts)) as pool:  # concurrent: continuous batching
        results = list(pool.map(lambda p: generate(url, p, max_new_tokens=20), prompts))
    assert all(len(r["output_ids"]) == 20 for r in results)
    # Offloaded prompts stay out of the radix cache (their exact rows go); a short, cached prompt
    # is reused as the prefix of a long one.
    short = prompt_ids(300, seed=77)
    generate(url, short, max_new_tokens=2)
    again = generate(url, short + prompt_ids(700, seed=78), max_new_tokens=20)
    assert again["meta_info"]["cached_tokens"] >= 300
    assert len(again["output_ids"]) == 20
    stats = small_budget_server.offload_stats()
    started = stats["requests_offloaded"] - before["requests_offloaded"]
    assert started == sum(len(p) >= 400 for p in prompts) + 1  # the long ones and the prefix hit
    # 5% of the prompt per kv head (2 heads, 2 layers), 19 sparse steps each, plus the exact windows
    assert stats["selected_tokens"] > before["selected_tokens"]
    assert stats["live_requests"] == 0 and stats["device_bytes"] == 0
    assert stats["requests_released"] - before["requests_released"] == started


def test_aborted_request_releases_its_state(small_budget_server):
    url = small_budget_server.url
    payload = {"input_ids": prompt_ids(800, seed=5), "stream": True, "rid": "abort-me",
               "sampling_params": {"max_new_tokens": 5000, "temperature": 0, "ignore_eos": True}}
    response = requests.post(f"{url}/generate", json=payload, stream=True, timeout=120)
    lines = response.iter_lines()
    for _ in range(3):  # a few streamed chunks: the request is decoding
        next(lines)
    live = small_budget_server.offload_stats()
    assert live["live_requests"] == 1 and live["device_bytes"] > 0
    requests.post(f"{url}/abort_request", json={"rid": "abort-me"}, timeout=30).raise_for_status()
    response.close()
    stats = wait_for(lambda: (s := small_budget_server.offload_stats())["live_requests"] == 0 and s)
    assert stats["device_bytes"] == 0
    assert stats["requests_released"] == stats["requests_offloaded"]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--kv-offload", "magic"], "--kv-offload: invalid choice: 'magic'"),
        (["--kv-offload", "oracle", "--kv-offload-budget", "-1"], "--kv-offload-budget: must be > 0"),
        (["--kv-offload", "oracle", "--kv-offload-budget", "abc"], "--kv-offload-budget: invalid float value"),
        (["--kv-offload", "oracle", "--kv-offload-local", "-5"], "--kv-offload-local: must be an integer >= 0"),
        (["--kv-offload", "oracle", "--kv-offload-kv-bits", "5"], "--kv-offload-kv-bits: must be one of"),
        (["--kv-offload", "oracle", "--kv-offload-host-mem", "lots"], "--kv-offload-host-mem: expected GiB"),
        (["--kv-offload-budget", "0.1"], "--kv-offload-budget: given without --kv-offload"),
        (["--kv-offload", "oracle", "--kv-offload-bogus", "1"], "--kv-offload-bogus: unknown sglang-kv flag"),
        (["--kv-offload", "oracle", "--enable-hierarchical-cache"], "cannot be combined with --enable-hierarchical-cache"),
        (["--kv-offload", "yakv", "--kv-cache-dtype", "fp8_e4m3"], "cannot be combined with --kv-cache-dtype fp8_e4m3"),
    ],
)
def test_invalid_flags_fail_at_startup_naming_the_flag(tiny_model, flags, expected):
    result = run_cli(tiny_model, flags, timeout=240)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-2000:]
