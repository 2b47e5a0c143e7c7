"""DecodeTimer (--kv-offload-decode-timing): per-step sums of the layers' spans and stages, the log
line, its parser."""

import logging
import time

import pytest

from sglang_kv.timing import LOG_PREFIX, DecodeTimer, parse_decode_timing


def _run_step(timer: DecodeTimer, batch: int, layers: int, select_s: float, gather_s: float) -> None:
    timer.step(batch)
    for _ in range(layers):
        timer.begin()
        time.sleep(select_s)
        timer.mark("select")
        time.sleep(gather_s)
        timer.mark("gather")
        timer.end()


def _logged(caplog) -> list[dict]:
    return [parse_decode_timing(r.getMessage()) for r in caplog.records]


def test_steps_are_summed_over_layers_split_by_stage_and_logged_every_interval(caplog):
    timer = DecodeTimer("cpu", interval=3)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        _run_step(timer, 4, layers=3, select_s=0.002, gather_s=0.008)  # ~30 ms per step
        _run_step(timer, 4, layers=3, select_s=0.002, gather_s=0.008)
        _run_step(timer, 2, layers=3, select_s=0.001, gather_s=0.001)  # a smaller batch: not the logged one
        assert not caplog.records  # the third step is still open
        timer.step(0)  # a step without offloaded requests closes it
    (parsed,) = _logged(caplog)
    assert parsed["batch"] == 4 and parsed["layers"] == 3 and parsed["lines"] == 1
    assert 30 <= parsed["attention_ms_per_step"] < 60  # 3 x (2 + 8) ms of sleep, and some slack
    assert parsed["attention_ms_per_layer"] == pytest.approx(parsed["attention_ms_per_step"] / 3)
    stages = parsed["stages_ms_per_step"]
    assert list(stages) == ["select", "gather", "other"]
    assert sum(stages.values()) == pytest.approx(parsed["attention_ms_per_step"], abs=0.2)  # rounded to 0.1 each
    assert 6 <= stages["select"] < 15 and 24 <= stages["gather"] < 45
    # on the CPU the host clock is the device clock: the host split matches, and the step's wall
    # time (one step start to the next) covers its layers
    assert list(parsed["host_stages_ms_per_step"]) == ["select", "gather", "other"]
    assert parsed["host_ms_per_step"] == pytest.approx(parsed["attention_ms_per_step"], abs=0.5)
    assert parsed["step_wall_ms"] >= parsed["attention_ms_per_step"] - 0.1


def test_without_stages_only_the_total_is_kept(caplog):
    timer = DecodeTimer("cpu", interval=1, stages=False)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        _run_step(timer, 8, layers=2, select_s=0.001, gather_s=0.004)
        timer.step(8)
    (parsed,) = _logged(caplog)
    assert parsed["stages_ms_per_step"] is None and "stages" not in caplog.records[0].getMessage()
    assert 10 <= parsed["attention_ms_per_step"] < 30
    assert list(parsed["host_stages_ms_per_step"]) == ["total"]  # the host's total is kept too
    assert parsed["host_ms_per_step"] == pytest.approx(parsed["attention_ms_per_step"], abs=0.5)


def test_marks_outside_a_layer_and_steps_without_layers_record_nothing(caplog):
    timer = DecodeTimer("cpu", interval=1)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        timer.mark("select")  # the sparse path called from a mixed extend batch: no layer open
        timer.end()
        for _ in range(3):
            timer.step(0)  # prefill-only batches
    assert not caplog.records


def test_parse_takes_the_median_line_at_the_largest_batch():
    log = "\n".join([
        "[x] Decode batch, #running-req: 8, gen throughput (token/s): 10.0",
        f"[x] {LOG_PREFIX}: batch 8, offloaded attention 100.0 ms per step over 48 layers (median of 4 steps)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 200.0 ms per step over 48 layers (median of 4 steps; "
        "stages ms: kv_write 1.0, select 199.0)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 240.0 ms per step over 48 layers (median of 3 steps; "
        "stages ms: kv_write 2.0, select 60.5, gather 150.0, attend 20.0, other 7.5; "
        "host ms: kv_write 1.0, select 30.0, gather 40.0, attend 9.0, other 0.5; step wall ms: 330.5)",
        f"[x] {LOG_PREFIX}: batch 32, offloaded attention 300.0 ms per step over 48 layers (median of 4 steps)",
    ])
    got = parse_decode_timing(log)
    assert got == {"batch": 32, "attention_ms_per_step": 240.0, "attention_ms_per_layer": 5.0, "layers": 48,
                   "stages_ms_per_step": {"kv_write": 2.0, "select": 60.5, "gather": 150.0, "attend": 20.0,
                                          "other": 7.5},
                   "host_ms_per_step": 80.5, "host_stages_ms_per_step": {"kv_write": 1.0, "select": 30.0,
                                                                         "gather": 40.0, "attend": 9.0, "other": 0.5},
                   "step_wall_ms": 330.5, "lines_at_batch": 3, "lines": 4}
    assert parse_decode_timing("[x] Decode batch, #running-req: 8, gen throughput (token/s): 10.0") is None


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval must be >= 1"):
        DecodeTimer("cpu", interval=0)


class _FakeEvent:
    """A CUDA event stand-in: ``record`` stamps the host clock; counts how many were created."""

    created = 0

    def __init__(self, enable_timing: bool = False):
        type(self).created += 1
        self.at = None

    def record(self):
        self.at = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, end) -> float:
        return (end.at - self.at) * 1e3


def test_cuda_marks_reuse_the_events_of_read_steps(monkeypatch, caplog):
    monkeypatch.setattr("torch.cuda.Event", _FakeEvent)
    _FakeEvent.created = 0
    timer = DecodeTimer("cuda", interval=2)
    with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
        for _ in range(4):  # 2 layers x 4 marks per step
            _run_step(timer, 8, layers=2, select_s=0.001, gather_s=0.002)
        timer.step(0)
    # the first step creates its 8 events; each later one starts by reading the previous step's, then
    # records those again
    assert _FakeEvent.created == 8
    logged = _logged(caplog)  # two lines of two steps each, timed from the reused events
    assert len(logged) == 2 and all(line["layers"] == 2 for line in logged)
    assert all(6 <= line["attention_ms_per_step"] < 30 for line in logged)  # 2 x (1 + 2) ms of sleep, and slack


def test_the_collectors_time_is_logged_per_step_and_per_interval(caplog):
    """A step in which the garbage collector runs logs that time (within the step and summed over the
    interval) and the interval's slowest step; the parser reads them back."""
    import gc

    timer = DecodeTimer("cpu", interval=3)
    heap = [[i] for i in range(300_000)]  # something for a full collection to walk
    try:
        with caplog.at_level(logging.INFO, logger="sglang_kv.timing"):
            _run_step(timer, 4, layers=2, select_s=0.001, gather_s=0.001)
            timer.step(4)
            timer.begin()
            gc.collect()  # inside the second step
            timer.end()
            _run_step(timer, 4, layers=2, select_s=0.001, gather_s=0.001)
            timer.step(0)
    finally:
        timer.close()
    assert timer._on_gc not in gc.callbacks
    message = caplog.records[0].getMessage()
    assert "; gc ms: " in message and "; interval gc ms: " in message and "; interval max wall ms: " in message
    parsed = parse_decode_timing(message)
    (interval_gc,) = parsed["interval_gc_ms"]
    (max_wall,) = parsed["interval_max_wall_ms"]
    assert interval_gc > 0 and max_wall >= parsed["step_wall_ms"]
    assert 0 <= parsed["gc_ms_per_step"] <= interval_gc
    del heap
