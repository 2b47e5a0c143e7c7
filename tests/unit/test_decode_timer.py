"""DecodeTimer (--kv-offload-decode-timing): per-step sums of the layers' spans, the log line, its parser."""

import logging
import time

import pytest

from sglang_kv.timing import LOG_PREFIX, DecodeTimer, parse_decode_timing


def _run_step(timer: DecodeTimer, batch: int, layers: int, seconds: float) -> None:
    timer.step(batch)
    for _ in range(layers):
        start = timer.begin()
        time.sleep(seconds)
        timer.end(start)


def test_steps_are_summed_over_layers_and_logged_every_interval(caplog):
    timer = DecodeTimer("cpu", interval=3)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        _run_step(timer, 4, layers=3, seconds=0.01)  # ~30 ms per step
        _run_step(timer, 4, layers=3, seconds=0.01)
        _run_step(timer, 2, layers=3, seconds=0.002)  # a smaller batch: not the logged one
        assert not caplog.records  # the third step is still open
        timer.step(0)  # a step without offloaded requests closes it
    (record,) = caplog.records
    parsed = parse_decode_timing(record.getMessage())
    assert parsed["batch"] == 4 and parsed["layers"] == 3 and parsed["lines"] == 1
    assert 30 <= parsed["attention_ms_per_step"] < 60  # 3 sleeps of 10 ms each, and some slack
    assert parsed["attention_ms_per_layer"] == pytest.approx(parsed["attention_ms_per_step"] / 3)


def test_steps_without_spans_record_nothing(caplog):
    timer = DecodeTimer("cpu", interval=1)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        for _ in range(3):
            timer.step(0)  # prefill-only batches
    assert not caplog.records


def test_parse_takes_the_median_at_the_largest_batch():
    log = "\n".join([
        "[x] Decode batch, #running-req: 8, gen throughput (token/s): 10.0",
        f"[x] {LOG_PREFIX}: batch 8, offloaded attention 100.0 ms per step over 48 layers (median of 4 steps)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 200.0 ms per step over 48 layers (median of 4 steps)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 240.0 ms per step over 48 layers (median of 3 steps)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 300.0 ms per step over 48 layers (median of 4 steps)",
    ])
    got = parse_decode_timing(log)
    assert got == {"batch": 32, "attention_ms_per_step": 240.0, "attention_ms_per_layer": 5.0, "layers": 48,
                   "lines_at_batch": 3, "lines": 4}
    assert parse_decode_timing("[x] Decode batch, #running-req: 8, gen throughput (token/s): 10.0") is None


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval must be >= 1"):
        DecodeTimer("cpu", interval=0)
