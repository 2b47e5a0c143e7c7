"""Capacity: with the same number of exact K/V token rows, the offloaded server runs more long
requests at once than stock SGLang (tiny random-weight Llama on CPU; about 2 minutes)."""

from __future__ import annotations

import concurrent.futures as cf
import re

import pytest

from sglang_kv.cpu.server import cpu_server
from tests.server.util import generate, prompt_ids

pytestmark = pytest.mark.server

EXACT_TOKENS = 3000
PROMPTS = [prompt_ids(1100, seed=500 + i) for i in range(6)]
NEW_TOKENS = 40


def _run_all(url: str) -> list[dict]:
    with cf.ThreadPoolExecutor(len(PROMPTS)) as pool:
        return list(pool.map(lambda p: generate(url, p, max_new_tokens=NEW_TOKENS), PROMPTS))


def _max_running(log: str) -> int:
    return max(int(n) for n in re.findall(r"#running-req: (\d+)", log))


def test_offload_runs_more_long_requests_than_stock_in_the_same_exact_rows(tiny_model, server_log_dir):
    with cpu_server(tiny_model, ["--max-total-tokens", str(EXACT_TOKENS)], log_dir=server_log_dir) as stock:
        stock_results = _run_all(stock.url)
        stock_running = _max_running(stock.log())
    offload_args = ["--kv-offload", "yakv", "--kv-offload-min-prompt", "512",
                    "--kv-offload-exact", str(EXACT_TOKENS)]
    with cpu_server(tiny_model, offload_args, log_dir=server_log_dir) as server:
        results = _run_all(server.url)
        stats = server.offload_stats()
        offload_running = _max_running(server.log())
    assert all(len(r["output_ids"]) == NEW_TOKENS for r in stock_results + results)
    # stock: each request holds 1140 exact slots, so at most 3000 // 1140 = 2 run at once
    assert stock_running <= EXACT_TOKENS // (1100 + NEW_TOKENS)
    assert stats["exact_rows"] == EXACT_TOKENS and stats["token_slots"] > EXACT_TOKENS
    assert stats["peak_live_requests"] > stock_running
    assert offload_running > stock_running
    print(f"max running requests: stock {stock_running}, --kv-offload yakv {offload_running} "
          f"(peak offloaded {stats['peak_live_requests']}) with {EXACT_TOKENS} exact token rows")
