"""``loadtest.summary`` against SGLang's own ``calculate_metrics`` on the same random records.

About 12 s on a 2-core machine, nearly all of it importing ``sglang.benchmark.serving``.
"""

from __future__ import annotations

import random

import pytest

from loadtest.records import RequestRecord
from loadtest.summary import records_span_s, summarize

# our summary key -> bench_serving's BenchmarkMetrics field (the other keys share the name)
RENAMED = {"total_input_tokens": "total_input", "total_output_tokens": "total_output"}
OURS_ONLY = {"duration", "failed", "total_cached_tokens"}


def random_records(seed: int, num: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    records = []
    for _ in range(num):
        start = rng.uniform(0, 20)
        if rng.random() < 0.15:
            records.append(RequestRecord("chat", start, False, rng.uniform(0, 3), error="HTTP 500: boom"))
            continue
        ttft = rng.uniform(0.01, 2)
        num_out = rng.choice([1, 2, rng.randint(3, 40)])
        itl = tuple(rng.expovariate(30) for _ in range(num_out - 1))
        records.append(RequestRecord("chat", start, True, ttft + sum(itl) + rng.uniform(0, 0.05), ttft_s=ttft,
                                     itl_s=itl, prompt_tokens=rng.randint(1, 5000), completion_tokens=num_out))
    return records


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summary_equals_bench_serving_calculate_metrics(seed):
    from sglang.benchmark import serving
    from sglang.benchmark.datasets.common import DatasetRow

    class NoTokenizer:  # only the retokenized counts use it, and we do not compare those
        def encode(self, text, add_special_tokens=False):
            return []

    records = random_records(seed, 200)
    outputs = [serving.RequestFuncOutput(success=r.success, latency=r.e2e_s, ttft=r.ttft_s, itl=list(r.itl_s),
                                         prompt_len=r.prompt_tokens, output_len=r.completion_tokens,
                                         start_time=r.start_time, error=r.error) for r in records]
    rows = [DatasetRow(prompt="", prompt_len=r.prompt_tokens, output_len=r.completion_tokens,
                       text_prompt_len=r.prompt_tokens, vision_prompt_len=0) for r in records]
    duration = records_span_s(records)
    metrics, _ = serving.calculate_metrics(rows, outputs, duration, NoTokenizer(), "sglang-oai-chat")

    ours = summarize(records)
    assert ours["duration"] == duration
    for key, value in ours.items():
        if key not in OURS_ONLY:
            assert value == pytest.approx(float(getattr(metrics, RENAMED.get(key, key))), rel=1e-9, abs=1e-9), key
