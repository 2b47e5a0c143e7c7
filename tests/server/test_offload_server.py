"""yakv / shadowkv / quest served by a real SGLang server on CPU (tiny random-weight Llama).

About 6 minutes on 2 cores (six server starts).
"""

from __future__ import annotations

import concurrent.futures as cf
import re

import pytest
import requests

from sglang_kv.cpu.server import cpu_server
from tests.server.conftest import BATCH, PROMPT_LENS, greedy_outputs, token_agreement
from tests.server.util import generate, prompt_ids, wait_for

pytestmark = pytest.mark.server


def _full_budget(method: str, kv_bits: int) -> list[str]:
    return ["--kv-offload", method, "--kv-offload-budget", "1.0", "--kv-offload-min-prompt", "16",
            "--kv-offload-kv-bits", str(kv_bits)]


@pytest.mark.parametrize("method", ["yakv", "shadowkv", "quest"])
def test_full_budget_16bit_matches_stock(method, tiny_model, server_log_dir, stock_outputs):
    with cpu_server(tiny_model, _full_budget(method, 16), log_dir=server_log_dir) as server:
        outputs = greedy_outputs(server.url)
        stats = server.offload_stats()
    assert outputs == stock_outputs
    assert stats["method"] == method
    assert stats["requests_offloaded"] >= len(PROMPT_LENS) + len(BATCH)
    assert stats["live_requests"] == 0 and stats["host_bytes_in_use"] == 0


def test_full_budget_4bit_yakv_agreement_is_measured(tiny_model, server_log_dir, stock_outputs):
    with cpu_server(tiny_model, _full_budget("yakv", 4), log_dir=server_log_dir) as server:
        outputs = greedy_outputs(server.url)
        stats = server.offload_stats()
    agreement = token_agreement(outputs, stock_outputs)
    print(f"yakv 4-bit K/V, budget >= context: {100 * agreement:.1f}% of greedy tokens agree with stock")
    assert 0.0 <= agreement <= 1.0
    assert stats["loaded_bytes"] > 0  # the 4-bit payload was read from the host store


def test_device_cache_and_decode_chunks_change_no_output(tiny_model, server_log_dir):
    """--kv-offload-cache serves hits from copies of the same bytes, and --kv-offload-decode-chunks
    only splits the decode batch (--kv-offload-decode-finish-sms only shrinks the gathers' grids): the
    greedy tokens are those of the plain server; the cache reads
    fewer payload bytes from the host, the chunked server the same bytes."""
    args = ["--kv-offload", "yakv", "--kv-offload-budget", "0.1", "--kv-offload-min-prompt", "16"]
    with cpu_server(tiny_model, args, log_dir=server_log_dir) as server:
        plain, plain_stats = greedy_outputs(server.url), server.offload_stats()
    with cpu_server(tiny_model, [*args, "--kv-offload-cache", "0.5"], log_dir=server_log_dir) as server:
        cached, stats = greedy_outputs(server.url), server.offload_stats()
    chunk_args = ["--kv-offload-decode-chunks", "3", "--kv-offload-decode-finish-sms", "1"]
    with cpu_server(tiny_model, [*args, *chunk_args], log_dir=server_log_dir) as server:
        chunked, chunked_stats = greedy_outputs(server.url), server.offload_stats()
    assert cached == plain
    assert plain_stats["cache_lookups"] == 0
    assert 0 < stats["cache_hits"] < stats["cache_lookups"]
    assert stats["loaded_bytes"] < plain_stats["loaded_bytes"]
    print(f"device cache 0.5: {100 * stats['cache_hits'] / stats['cache_lookups']:.1f}% of row lookups hit; "
          f"{stats['loaded_bytes']} vs {plain_stats['loaded_bytes']} bytes from the host")
    assert chunked == plain
    assert chunked_stats["loaded_bytes"] == plain_stats["loaded_bytes"]


@pytest.fixture(scope="module")
def yakv_server(tiny_model, server_log_dir):
    args = ["--kv-offload", "yakv", "--kv-offload-budget", "0.05", "--kv-offload-min-prompt", "400",
            "--chunked-prefill-size", "128", "--enable-mixed-chunk", "--kv-offload-exact", "4096",
            "--enable-metrics"]
    with cpu_server(tiny_model, args, log_dir=server_log_dir) as server:
        yield server


def test_small_budget_mixed_batches_chunked_prefill_prefix_hits_abort(yakv_server):
    url = yakv_server.url
    idle = yakv_server.offload_stats()
    assert idle["host_bytes_in_use"] == 0
    # A long generation decodes while new prompts arrive: mixed prefill/decode batches.
    long_run = {"input_ids": prompt_ids(700, seed=9), "stream": True, "rid": "long-abort",
                "sampling_params": {"max_new_tokens": 5000, "temperature": 0, "ignore_eos": True}}
    stream = requests.post(f"{url}/generate", json=long_run, stream=True, timeout=300)
    lines = stream.iter_lines()
    next(lines)
    prompts = [prompt_ids(n, seed=3 * n) for n in (150, 389, 640, 1000)]
    with cf.ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(lambda p: generate(url, p, max_new_tokens=12), prompts))
    assert all(len(r["output_ids"]) == 12 for r in results)
    # Offloaded prompts stay out of the radix cache (their exact rows go); a short, cached prompt
    # is reused as the prefix of a long one.
    short = prompt_ids(300, seed=77)
    generate(url, short, max_new_tokens=2)
    hit = generate(url, short + prompt_ids(700, seed=78), max_new_tokens=12)
    assert hit["meta_info"]["cached_tokens"] >= 300
    busy = yakv_server.offload_stats()
    assert busy["live_requests"] == 1 and busy["host_bytes_in_use"] > 0  # the long request
    requests.post(f"{url}/abort_request", json={"rid": "long-abort"}, timeout=30).raise_for_status()
    stream.close()
    stats = wait_for(lambda: (s := yakv_server.offload_stats())["live_requests"] == 0 and s)
    assert stats["host_bytes_in_use"] == idle["host_bytes_in_use"] == 0
    assert stats["device_bytes"] == 0
    # the long generation, the prompts of >= 400 tokens and the prefix hit
    assert stats["requests_offloaded"] - idle["requests_offloaded"] == 1 + sum(len(p) >= 400 for p in prompts) + 1
    assert stats["requests_released"] == stats["requests_offloaded"]
    assert stats["selected_tokens"] > idle["selected_tokens"]
    generate(url, prompt_ids(20, seed=1), max_new_tokens=2)  # one more step publishes the last figures
    metrics = requests.get(f"{url}/metrics", timeout=30).text
    selected = re.search(r'^sglang_kv:selected_tokens_total\{method="yakv"\} (\S+)$', metrics, re.M)
    assert selected and float(selected.group(1)) == stats["selected_tokens"]
    assert re.search(r'^sglang_kv:live_requests\{method="yakv"\} 0\.0$', metrics, re.M)


def test_host_store_exhaustion_is_a_clear_error(tiny_model, server_log_dir):
    """A host store too small for long prompts bounds the token capacity at startup (logged), and
    SGLang rejects a longer prompt at admission with a clear error; shorter requests are served."""
    args = ["--kv-offload", "yakv", "--kv-offload-min-prompt", "64", "--kv-offload-host-mem", "0.00002"]
    with cpu_server(tiny_model, args, log_dir=server_log_dir) as server:
        r = requests.post(f"{server.url}/generate", timeout=300, json={
            "input_ids": prompt_ids(900, seed=1), "sampling_params": {"max_new_tokens": 8, "temperature": 0}})
        assert r.status_code == 400
        assert "exceeds the maximum allowed length" in r.json()["error"]["message"]
        capacity = [line for line in server.log().splitlines() if "sglang-kv: KV capacity" in line]
        assert capacity and "host store" in capacity[0]
        ok = generate(server.url, prompt_ids(120, seed=2), max_new_tokens=4)  # offloaded, fits
        assert len(ok["output_ids"]) == 4
        stats = server.offload_stats()
    assert stats["requests_offloaded"] == 1
    assert stats["live_requests"] == 0 and stats["host_bytes_in_use"] == 0
