"""Records -> the summary SGLang users know from ``bench_serving``, with its names and formulas.

Mirrors ``calculate_metrics`` in ``sglang/benchmark/serving.py`` (sglang 0.5.17):

- only successful requests enter the token totals and latency lists;
- request/input/output/total throughput = completed, prompt tokens, completion tokens and their
  sum divided by the benchmark duration;
- TPOT of a request = (e2e - ttft) / (completion_tokens - 1), for requests with more than one
  completion token; ITL = every gap between output chunks, pooled over requests;
- mean, median, std (population), p90, p95, p99 of TTFT, TPOT, ITL and e2e latency, in ms, with
  numpy's default (linear) percentile; an empty list gives 0.0, as ``np.percentile(x or 0, q)``;
- concurrency = sum of e2e latencies / duration;
- peak output tokens per second and peak concurrent requests over one-second buckets.

Differences, on purpose: input tokens come from the server's usage (``prompt_tokens``, chat
template included) rather than from tokenizing the dataset prompt, so no tokenizer is needed; the
duration is the span of the records (first send to last stream line) unless given, because Locust
runs have no single "benchmark start"; the retokenized and vision counts are left out. Added:
``failed``, ``total_cached_tokens``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from loadtest.records import RequestRecord

PERCENTILES = (90, 95, 99)
LATENCY_METRICS = ("e2e_latency", "ttft", "tpot", "itl")  # in bench_serving's result order

COUNT_KEYS = (
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "total_cached_tokens",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
)
TAIL_KEYS = ("max_itl_ms", "concurrency", "max_output_tokens_per_s", "max_concurrent_requests")


def _latency_keys(metric: str) -> tuple[str, ...]:
    stats = ("mean", "median", "std", *(f"p{q}" for q in PERCENTILES))
    return tuple(f"{s}_{metric}_ms" for s in stats)


SUMMARY_KEYS = COUNT_KEYS + tuple(k for m in LATENCY_METRICS for k in _latency_keys(m)) + TAIL_KEYS


def percentile(values: Sequence[float], q: float) -> float:
    """``np.percentile(values, q)`` with the default linear method; 0.0 for an empty list.

    The q-th percentile sits at rank (n - 1) * q / 100 of the sorted values, interpolating
    linearly between the two neighbours.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def latency_stats(values_s: Sequence[float], metric: str) -> dict[str, float]:
    """mean/median/std/p90/p95/p99 of ``values_s`` (seconds) as ``{stat}_{metric}_ms``."""
    if not values_s:
        return dict.fromkeys(_latency_keys(metric), 0.0)
    stats = [
        statistics.fmean(values_s),
        statistics.median(values_s),
        statistics.pstdev(values_s),
        *(percentile(values_s, q) for q in PERCENTILES),
    ]
    return {key: value * 1000 for key, value in zip(_latency_keys(metric), stats)}


def tpot_s(record: RequestRecord) -> float | None:
    """bench_serving's time per output token, excluding the first; None with <= 1 token."""
    if not record.success or record.completion_tokens <= 1:
        return None
    return (record.e2e_s - record.ttft_s) / (record.completion_tokens - 1)


def records_span_s(records: Sequence[RequestRecord]) -> float:
    """First send to last stream line over all records (failed ones included)."""
    if not records:
        return 0.0
    return max(r.end_time for r in records) - min(r.start_time for r in records)


def peak_per_second(successful: Sequence[RequestRecord]) -> tuple[float, int]:
    """(max output chunks in one second, max requests in flight in one second), as bench_serving.

    One-second buckets from the first send; a request counts in every bucket from its send to its
    end, and each output chunk (first at ttft, then after each ITL gap) in the bucket it arrives.
    """
    if not successful:
        return 0.0, 0
    t0 = min(r.start_time for r in successful)
    num_buckets = int(math.ceil(max(r.end_time for r in successful) - t0)) + 1
    tokens = [0] * num_buckets
    in_flight = [0] * num_buckets
    for r in successful:
        t = r.start_time + r.ttft_s
        for gap in (0.0, *r.itl_s):
            t += gap
            bucket = int(t - t0)
            if 0 <= bucket < num_buckets:
                tokens[bucket] += 1
        for bucket in range(int(r.start_time - t0), min(int(r.end_time - t0) + 1, num_buckets)):
            in_flight[bucket] += 1
    return float(max(tokens)), max(in_flight)


def summarize(records: Sequence[RequestRecord], duration_s: float | None = None) -> dict[str, float]:
    """The bench_serving summary of ``records`` (keys: ``SUMMARY_KEYS``, latencies in ms).

    ``duration_s`` defaults to :func:`records_span_s`; throughputs and concurrency are 0.0 when the
    duration is 0 (no records).
    """
    if duration_s is None:
        duration_s = records_span_s(records)
    if duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    ok = [r for r in records if r.success]
    total_input = sum(r.prompt_tokens for r in ok)
    total_output = sum(r.completion_tokens for r in ok)
    e2es = [r.e2e_s for r in ok]
    itls = [gap for r in ok for gap in r.itl_s]
    tpots = [t for t in map(tpot_s, ok) if t is not None]
    per_s = (lambda x: x / duration_s) if duration_s > 0 else (lambda x: 0.0)
    max_tokens_per_s, max_in_flight = peak_per_second(ok)

    summary: dict[str, float] = {
        "duration": duration_s,
        "completed": len(ok),
        "failed": len(records) - len(ok),
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "total_cached_tokens": sum(r.cached_tokens for r in ok),
        "request_throughput": per_s(len(ok)),
        "input_throughput": per_s(total_input),
        "output_throughput": per_s(total_output),
        "total_throughput": per_s(total_input + total_output),
        **latency_stats(e2es, "e2e_latency"),
        **latency_stats([r.ttft_s for r in ok], "ttft"),
        **latency_stats(tpots, "tpot"),
        **latency_stats(itls, "itl"),
        "max_itl_ms": max(itls, default=0.0) * 1000,
        "concurrency": per_s(sum(e2es)),
        "max_output_tokens_per_s": max_tokens_per_s,
        "max_concurrent_requests": max_in_flight,
    }
    assert tuple(summary) == SUMMARY_KEYS, "summary keys drifted from SUMMARY_KEYS"
    return summary


def summarize_stages(records: Sequence[RequestRecord]) -> dict[str, dict[str, float]]:
    """One summary per stage label, in the order the stages first appear (by send time)."""
    by_stage: dict[str, list[RequestRecord]] = {}
    for r in sorted(records, key=lambda r: r.start_time):
        by_stage.setdefault(r.stage, []).append(r)
    return {stage: summarize(rs) for stage, rs in by_stage.items()}


# bench_serving's table, line by line: (label, key, format); None key = section rule.
_TABLE_ROWS: tuple[tuple[str, str | None, str], ...] = (
    ("Successful requests:", "completed", "d"),
    ("Failed requests:", "failed", "d"),
    ("Benchmark duration (s):", "duration", ".2f"),
    ("Total input tokens:", "total_input_tokens", "d"),
    ("Total generated tokens:", "total_output_tokens", "d"),
    ("Total cached tokens:", "total_cached_tokens", "d"),
    ("Request throughput (req/s):", "request_throughput", ".2f"),
    ("Input token throughput (tok/s):", "input_throughput", ".2f"),
    ("Output token throughput (tok/s):", "output_throughput", ".2f"),
    ("Peak output token throughput (tok/s):", "max_output_tokens_per_s", ".2f"),
    ("Peak concurrent requests:", "max_concurrent_requests", "d"),
    ("Total token throughput (tok/s):", "total_throughput", ".2f"),
    ("Concurrency:", "concurrency", ".2f"),
    ("End-to-End Latency", None, ""),
    *((f"{s} E2E Latency (ms):", f"{k}_e2e_latency_ms", ".2f")
      for s, k in (("Mean", "mean"), ("Median", "median"), ("P90", "p90"), ("P95", "p95"), ("P99", "p99"))),
    ("Time to First Token", None, ""),
    *((f"{s} TTFT (ms):", f"{k}_ttft_ms", ".2f")
      for s, k in (("Mean", "mean"), ("Median", "median"), ("P90", "p90"), ("P95", "p95"), ("P99", "p99"))),
    ("Time per Output Token (excl. 1st token)", None, ""),
    *((f"{s} TPOT (ms):", f"{k}_tpot_ms", ".2f")
      for s, k in (("Mean", "mean"), ("Median", "median"), ("P90", "p90"), ("P95", "p95"), ("P99", "p99"))),
    ("Inter-Token Latency", None, ""),
    *((f"{s} ITL (ms):", f"{k}_itl_ms", ".2f")
      for s, k in (("Mean", "mean"), ("Median", "median"), ("P90", "p90"), ("P95", "p95"), ("P99", "p99"))),
    ("Max ITL (ms):", "max_itl_ms", ".2f"),
)


def format_table(summary: dict[str, float], title: str = "Serving Benchmark Result",
                 header: Sequence[tuple[str, str]] = ()) -> str:
    """bench_serving's result table: 50-wide banners, 40-wide labels; ``header`` rows go first."""
    lines = ["{s:{c}^{n}}".format(s=f" {title} ", n=50, c="=")]
    lines += ["{:<40} {:<10}".format(label, value) for label, value in header]
    for label, key, fmt in _TABLE_ROWS:
        if key is None:
            lines.append("{s:{c}^{n}}".format(s=label, n=50, c="-"))
        else:
            lines.append("{:<40} {:<10}".format(label, format(summary[key], fmt)))
    lines.append("=" * 50)
    return "\n".join(lines)


class Slo(NamedTuple):
    key: str  # a SUMMARY_KEYS entry, e.g. "p99_ttft_ms"
    op: str  # "<=", ">=", "<" or ">"
    threshold: float

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.threshold:g}"

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.threshold, ">=": value >= self.threshold,
                "<": value < self.threshold, ">": value > self.threshold}[self.op]


def parse_slos(text: str, flag: str = "--slo") -> list[Slo]:
    """``"p99_ttft_ms<=2000,completed>=10"`` -> SLOs; an unknown key or bad entry raises."""
    slos = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        for op in ("<=", ">=", "<", ">"):  # two-character operators first
            key, sep, value = entry.partition(op)
            if sep:
                break
        else:
            raise ValueError(f"{flag}: {entry!r} has no <=, >=, < or > (example: p99_ttft_ms<=2000)")
        key = key.strip()
        if key not in SUMMARY_KEYS:
            raise ValueError(f"{flag}: unknown metric {key!r}; choose from {', '.join(SUMMARY_KEYS)}")
        try:
            threshold = float(value)
        except ValueError:
            raise ValueError(f"{flag}: threshold of {entry!r} is not a number") from None
        slos.append(Slo(key, op, threshold))
    return slos


def check_slos(summary: dict[str, float], slos: Sequence[Slo]) -> list[dict[str, object]]:
    """One ``{"slo", "value", "passed"}`` row per SLO, in the given order."""
    return [{"slo": str(s), "value": summary[s.key], "passed": s.holds(summary[s.key])} for s in slos]
