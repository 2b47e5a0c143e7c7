"""The summary math on synthetic records, against values computed by hand (and numpy's percentile)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.records import RequestRecord
from loadtest.summary import (
    SUMMARY_KEYS,
    check_slos,
    format_table,
    parse_slos,
    peak_per_second,
    percentile,
    summarize,
    summarize_stages,
)


def ok(start, ttft, e2e, out, prompt, itl, stage="s", cached=0):
    return RequestRecord("chat", start, True, e2e, ttft_s=ttft, itl_s=tuple(itl), prompt_tokens=prompt,
                         completion_tokens=out, cached_tokens=cached, stage=stage)


def failed(start, e2e, stage="s"):
    # a failed request's token counts never enter the totals, even if set
    return RequestRecord("chat", start, False, e2e, prompt_tokens=50, completion_tokens=7, stage=stage,
                         error="ConnectionError: refused")


# Four successful requests and one failure; the run spans 0 s .. 8 s (the failure ends last).
RECORDS = [
    ok(0.0, 0.1, 1.0, 10, 100, [0.2, 0.4], cached=30),
    ok(0.0, 0.2, 2.0, 11, 200, [0.1]),
    ok(1.0, 0.3, 3.0, 1, 300, []),
    ok(2.0, 0.4, 4.0, 11, 400, [0.3, 0.5]),
    failed(3.0, 5.0),
]


def test_counts_and_throughputs():
    s = summarize(RECORDS)
    assert s["duration"] == 8.0  # first send 0 s, last end 3 + 5 s
    assert (s["completed"], s["failed"]) == (4, 1)
    assert s["total_input_tokens"] == 1000  # 100 + 200 + 300 + 400, the failure's 50 left out
    assert s["total_output_tokens"] == 33  # 10 + 11 + 1 + 11
    assert s["total_cached_tokens"] == 30
    assert s["request_throughput"] == pytest.approx(4 / 8)
    assert s["input_throughput"] == pytest.approx(1000 / 8)
    assert s["output_throughput"] == pytest.approx(33 / 8)
    assert s["total_throughput"] == pytest.approx(1033 / 8)
    assert s["concurrency"] == pytest.approx((1 + 2 + 3 + 4) / 8)


def test_ttft_and_e2e_percentiles():
    s = summarize(RECORDS)
    # TTFT 0.1, 0.2, 0.3, 0.4 s: rank (n-1) q/100 = 2.7 for p90 -> 0.3 + 0.7 * 0.1
    assert s["mean_ttft_ms"] == pytest.approx(250)
    assert s["median_ttft_ms"] == pytest.approx(250)
    assert s["std_ttft_ms"] == pytest.approx(1000 * (0.0125 ** 0.5))  # (2 * 0.15^2 + 2 * 0.05^2) / 4
    assert s["p90_ttft_ms"] == pytest.approx(370)
    assert s["p95_ttft_ms"] == pytest.approx(385)  # rank 2.85
    assert s["p99_ttft_ms"] == pytest.approx(397)  # rank 2.97
    # e2e 1, 2, 3, 4 s
    assert s["mean_e2e_latency_ms"] == pytest.approx(2500)
    assert s["median_e2e_latency_ms"] == pytest.approx(2500)
    assert s["p90_e2e_latency_ms"] == pytest.approx(3700)
    assert s["p99_e2e_latency_ms"] == pytest.approx(3970)


def test_tpot_excludes_single_token_requests():
    s = summarize(RECORDS)
    # (e2e - ttft) / (tokens - 1): (1 - 0.1) / 9 = 0.1, (2 - 0.2) / 10 = 0.18, (4 - 0.4) / 10 = 0.36;
    # the 1-token request has no TPOT
    assert s["mean_tpot_ms"] == pytest.approx((100 + 180 + 360) / 3)
    assert s["median_tpot_ms"] == pytest.approx(180)
    assert s["p90_tpot_ms"] == pytest.approx(180 + 0.8 * 180)  # rank 1.8 between 180 and 360
    assert s["p99_tpot_ms"] == pytest.approx(180 + 0.98 * 180)


def test_itl_pools_every_gap():
    s = summarize(RECORDS)
    # gaps 0.2, 0.4, 0.1, 0.3, 0.5 -> sorted 0.1 .. 0.5
    assert s["mean_itl_ms"] == pytest.approx(300)
    assert s["median_itl_ms"] == pytest.approx(300)
    assert s["p90_itl_ms"] == pytest.approx(460)  # rank 3.6
    assert s["p99_itl_ms"] == pytest.approx(496)  # rank 3.96
    assert s["max_itl_ms"] == pytest.approx(500)


def test_peaks_per_second():
    successful = [r for r in RECORDS if r.success]
    # in flight per 1 s bucket: b0 {1,2}, b1 {1,2,3}, b2 {2,3,4}, b3..b4 {3,4}, b5..b6 {4}
    # output chunks: 0.1 0.3 0.7 | 0.2 0.3 | 1.3 | 2.4 2.7 3.2 -> bucket 0 holds 5
    assert peak_per_second(successful) == (5.0, 3)
    s = summarize(RECORDS)
    assert (s["max_output_tokens_per_s"], s["max_concurrent_requests"]) == (5.0, 3)


def test_explicit_duration_and_empty_runs():
    assert summarize(RECORDS, duration_s=16.0)["request_throughput"] == pytest.approx(4 / 16)
    empty = summarize([])
    assert list(empty) == list(SUMMARY_KEYS)
    assert all(v == 0 for v in empty.values())
    only_failed = summarize([failed(0.0, 2.0)])
    assert (only_failed["completed"], only_failed["failed"], only_failed["duration"]) == (0, 1, 2.0)
    assert only_failed["mean_ttft_ms"] == 0.0 and only_failed["request_throughput"] == 0.0


def test_stages_are_summarised_separately():
    records = [ok(0.0, 0.1, 1.0, 2, 10, [0.9], stage="users=1"),
               ok(1.0, 0.2, 1.0, 2, 10, [0.8], stage="users=2"),
               ok(1.5, 0.3, 2.0, 2, 10, [1.7], stage="users=2")]
    stages = summarize_stages(records)
    assert list(stages) == ["users=1", "users=2"]
    assert stages["users=2"]["completed"] == 2
    assert stages["users=2"]["duration"] == pytest.approx(2.5)  # 1.0 .. 1.5 + 2.0
    assert stages["users=2"]["mean_ttft_ms"] == pytest.approx(250)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


def test_percentile_rejects_bad_q():
    with pytest.raises(ValueError, match="q must be in"):
        percentile([1.0], 101)


def test_slos_parse_check_and_reject_bad_input():
    slos = parse_slos("p99_ttft_ms<=400, completed>=5,failed<1")
    assert [str(s) for s in slos] == ["p99_ttft_ms<=400", "completed>=5", "failed<1"]
    rows = check_slos(summarize(RECORDS), slos)
    assert [r["passed"] for r in rows] == [True, False, False]  # 397 ms; 4 completed; 1 failed
    assert rows[0]["value"] == pytest.approx(397)
    assert parse_slos("") == []
    with pytest.raises(ValueError, match="unknown metric 'p99_ttft'"):
        parse_slos("p99_ttft<=1")
    with pytest.raises(ValueError, match="has no <="):
        parse_slos("p99_ttft_ms=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_slos("p99_ttft_ms<=fast")


def test_table_uses_bench_serving_labels():
    table = format_table(summarize(RECORDS), header=[("Endpoint:", "chat")])
    lines = table.splitlines()
    assert lines[0] == "{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="=")
    assert lines[1].split() == ["Endpoint:", "chat"]
    assert "{:<40} {:<10}".format("Request throughput (req/s):", "0.50") in lines  # bench_serving's widths
    assert any(line.startswith("P99 TTFT (ms):") and line.split()[-1] == "397.00" for line in lines)
    assert "{s:{c}^{n}}".format(s="Time per Output Token (excl. 1st token)", n=50, c="-") in lines
