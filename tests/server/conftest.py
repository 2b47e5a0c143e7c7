"""Fixtures shared by the CPU server tests: stock SGLang's greedy outputs on fixed prompts."""

from __future__ import annotations

import pytest

from sglang_kv.cpu.server import cpu_server
from tests.server.util import generate, prompt_ids

PROMPT_LENS = (300, 517, 901)
BATCH = [prompt_ids(n, seed=100 + n) for n in (260, 333, 410, 702)]


def greedy_outputs(url: str) -> dict:
    """Greedy token ids for the fixed prompts: one at a time, then one batch of four."""
    singles = [generate(url, prompt_ids(n, seed=n))["output_ids"] for n in PROMPT_LENS]
    batch = [r["output_ids"] for r in generate(url, BATCH)]
    return {"singles": singles, "batch": batch}


def token_agreement(a: dict, b: dict) -> float:
    """Fraction of generated positions where two ``greedy_outputs`` agree."""
    pairs = [(x, y) for key in ("singles", "batch") for xs, ys in zip(a[key], b[key]) for x, y in zip(xs, ys)]
    return sum(x == y for x, y in pairs) / len(pairs)


@pytest.fixture(scope="session")
def stock_outputs(tiny_model, server_log_dir):
    with cpu_server(tiny_model, log_dir=server_log_dir) as server:
        info = server.server_info()
        assert "kv_offload" not in info["internal_states"][0]  # no flag: the plugin stays out of the way
        return greedy_outputs(server.url)
