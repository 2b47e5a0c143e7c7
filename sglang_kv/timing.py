"""DecodeTimer: the time of the offloaded decode attention, per step (``--kv-offload-decode-timing N``).

A decode step runs the offload backend's ``forward_decode`` once per layer. The timer marks the
start and end of each such call on the current stream (a CUDA event on the GPU, ``perf_counter`` on
the CPU, whose ops run synchronously), and in between the end of each stage (:meth:`DecodeTimer.mark`:
``kv_write``, ``select``, ``gather``, ``attend``; what follows the last mark is ``other``). Each mark
also notes the host clock, so a step has two splits: the device's (the stream's timeline) and the
host's (the Python time spent issuing the work). It sums one step's spans and, every ``N`` steps,
logs the median step (by device time), that step's stages, and its wall time (from the start of its
forward pass to the start of the next one):

    sglang-kv decode timing: batch 32, offloaded attention 181.2 ms per step over 48 layers (median of 4 steps; stages ms: kv_write 2.1, select 50.3, gather 80.2, attend 40.4, other 8.2; host ms: kv_write 1.0, select 30.1, gather 40.2, attend 20.3, other 0.4; step wall ms: 329.0)

A span covers everything the layer's attention call put on the stream, GPU idle gaps included, so
a stage's time is the stretch of the stream's timeline from the previous mark to its own. When the
host split is about as long as the device split, the GPU waited for the host (launch-bound); when
it is much shorter, the host ran ahead and the device time is the GPU's own. With ``stages=False``
(the backend's choice when ``--kv-offload-decode-chunks`` puts stages on several streams, where
stretches of one stream say nothing about them) only the totals are kept (``host ms: total ...``).
The timer never waits on the hot path: a step's events are read when the next step starts
(:meth:`DecodeTimer.step`), by which time the scheduler has already waited for that step's tokens.
``python -m sglang_kv.bench serve`` reads these lines (:func:`parse_decode_timing`).

Each line also gives the Python garbage collector's time: within the median step (``gc ms``), summed
over the interval's steps (``interval gc ms``), and the interval's slowest step wall time
(``interval max wall ms``). A served run's steps slowed from 56 to 85 ms within one run with every
stage's device and host time growing together (a0d66ae, README "Beyond stock capacity"): the host
stalled, and a collection of the scheduler's heap is one way it can.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from typing import NamedTuple

import torch

logger = logging.getLogger(__name__)

LOG_PREFIX = "sglang-kv decode timing"
_LINE = re.compile(LOG_PREFIX + r": batch (\d+), offloaded attention ([0-9.]+) ms per step over (\d+) layers"
                   r" \(median of \d+ steps((?:; [^;)]*)*)\)")


class _Step(NamedTuple):
    """One closed decode step: its batch, device ms, layers, device and host ms per stage, wall ms."""

    batch: int
    ms: float
    layers: int
    stages: dict[str, float]
    host: dict[str, float]
    wall_ms: float | None  # None in log lines written before the wall time was logged
    gc_ms: float | None = None  # the garbage collector's time within the step (None: not logged)


class DecodeTimer:
    """Sums the spans of :meth:`begin` / :meth:`end` pairs per step, split at :meth:`mark` calls;
    logs every ``interval`` steps."""

    def __init__(self, device: torch.device | str, interval: int, *, stages: bool = True):
        if interval < 1:
            raise ValueError(f"DecodeTimer: interval must be >= 1, got {interval}")
        self.interval = interval
        self.stages = stages
        self._cuda = torch.device(device).type == "cuda"
        self._layer: list[tuple[str, object, float]] | None = None  # (stage, device mark, host clock) of the open layer
        self._spans: list[list[tuple[str, object, float]]] = []  # this step's closed layers
        self._batch = 0
        self._started = 0.0  # host clock at the start of the open step
        self._steps: list[_Step] = []  # since the last log line
        self._free_events: list = []  # CUDA events already read, recorded again by later marks
        self._gc_ms = 0.0  # the garbage collector's time since the open step started
        self._gc_started: float | None = None
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self._gc_ms += (time.perf_counter() - self._gc_started) * 1e3
            self._gc_started = None

    def close(self) -> None:
        """Stop counting the garbage collector's time (the timer keeps working otherwise)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _mark(self, stage: str) -> tuple[str, object, float]:
        if self._cuda:
            # a served step marks every layer several times: reusing read events spares creating (and
            # later destroying) one per mark
            event = self._free_events.pop() if self._free_events else torch.cuda.Event(enable_timing=True)
            event.record()
            return stage, event, time.perf_counter()
        now = time.perf_counter()
        return stage, now, now

    def _elapsed_ms(self, start, end) -> float:
        if self._cuda:
            end.synchronize()
            return start.elapsed_time(end)
        return (end - start) * 1e3

    def begin(self) -> None:
        """Mark the start of one layer's offloaded attention."""
        self._layer = [self._mark("")]

    def mark(self, stage: str) -> None:
        """The open layer's stage ``stage`` ends here (no-op without an open layer or with stages off)."""
        if self._layer is not None and self.stages:
            self._layer.append(self._mark(stage))

    def end(self) -> None:
        """The open layer's attention ends here (the stretch since the last mark is ``other``)."""
        if self._layer is not None:
            self._layer.append(self._mark("other" if self.stages else "total"))
            self._spans.append(self._layer)
            self._layer = None

    def step(self, batch: int) -> None:
        """A decode step of ``batch`` offloaded requests starts: close the previous step (logging
        every ``interval`` steps) and start counting this one."""
        now = time.perf_counter()
        if self._spans:
            stages: dict[str, float] = {}
            host: dict[str, float] = {}
            for layer in self._spans:
                for (_, a, host_a), (stage, b, host_b) in zip(layer, layer[1:]):
                    stages[stage] = stages.get(stage, 0.0) + self._elapsed_ms(a, b)
                    host[stage] = host.get(stage, 0.0) + (host_b - host_a) * 1e3
            self._steps.append(_Step(self._batch, sum(stages.values()), len(self._spans), stages, host,
                                     (now - self._started) * 1e3, self._gc_ms))
            if self._cuda:  # every event of the step has been read (each span's end waited for)
                self._free_events.extend(mark for layer in self._spans for _, mark, _ in layer)
            self._spans = []
            if len(self._steps) == self.interval:
                self._log()
        self._batch = batch
        self._started = now
        self._gc_ms = 0.0

    def _log(self) -> None:
        batches = [s.batch for s in self._steps]
        batch = max(set(batches), key=batches.count)  # the batch most of these steps ran
        at_batch = [s for s in self._steps if s.batch == batch]
        median = _median_by_ms(at_batch)
        parts = [f"median of {len(at_batch)} steps"]
        if self.stages:
            parts.append("stages ms: " + _format(median.stages))
        parts += ["host ms: " + _format(median.host), f"step wall ms: {median.wall_ms:.1f}",
                  f"gc ms: {median.gc_ms:.1f}", f"interval gc ms: {sum(s.gc_ms for s in self._steps):.1f}",
                  f"interval max wall ms: {max(s.wall_ms for s in self._steps):.1f}"]
        logger.info("%s: batch %d, offloaded attention %.1f ms per step over %d layers (%s)",
                    LOG_PREFIX, batch, median.ms, median.layers, "; ".join(parts))
        self._steps = []


class _Line(NamedTuple):
    """One parsed log line: the median step it reports and its interval's figures (None: not logged)."""

    step: _Step
    interval_gc_ms: float | None
    interval_max_wall_ms: float | None


def parse_decode_timing(log: str) -> dict | None:
    """A server log's decode timing lines -> the median offloaded-attention time per step at the
    largest batch logged, with its device and host splits (None without such lines); with the
    collector's time logged, also the median step's, and per line its interval's sum and slowest wall."""
    lines = [_parse_line(*match) for match in _LINE.findall(log)]
    if not lines:
        return None
    batch = max(line.step.batch for line in lines)
    at_batch = [line for line in lines if line.step.batch == batch]
    median = _median_by_ms([line.step for line in at_batch])
    summary = {"batch": batch, "attention_ms_per_step": median.ms, "attention_ms_per_layer": median.ms / median.layers,
               "layers": median.layers, "stages_ms_per_step": median.stages or None,
               "host_ms_per_step": round(sum(median.host.values()), 1) if median.host else None,
               "host_stages_ms_per_step": median.host or None, "step_wall_ms": median.wall_ms,
               "lines_at_batch": len(at_batch), "lines": len(lines)}
    if median.gc_ms is not None:  # lines written since the collector's time is logged
        summary.update(gc_ms_per_step=median.gc_ms,
                       interval_gc_ms=[line.interval_gc_ms for line in at_batch],
                       interval_max_wall_ms=[line.interval_max_wall_ms for line in at_batch])
    return summary


def _parse_line(batch: str, ms: str, layers: str, parts: str) -> _Line:
    """One log line's fields; parts: ``"; median of 4 steps; stages ms: kv_write 2.1, ...; host ms: ..."``."""
    fields = dict(part.split(": ", 1) for part in parts.split("; ") if ": " in part)

    def number(name: str) -> float | None:
        return float(fields[name]) if name in fields else None

    step = _Step(int(batch), float(ms), int(layers), _stages(fields.get("stages ms", "")),
                 _stages(fields.get("host ms", "")), number("step wall ms"), number("gc ms"))
    return _Line(step, number("interval gc ms"), number("interval max wall ms"))


def _median_by_ms(records: list[_Step]) -> _Step:
    """The step with the median device ``ms`` (the lower one of two), so its splits add up to the
    time reported with them."""
    return sorted(records, key=lambda r: r.ms)[(len(records) - 1) // 2]


def _format(split: dict[str, float]) -> str:
    return ", ".join(f"{name} {t:.1f}" for name, t in split.items())


def _stages(split: str) -> dict[str, float]:
    """``"kv_write 2.1, select 50.3"`` -> ``{"kv_write": 2.1, "select": 50.3}`` (empty when ``split`` is)."""
    if not split:
        return {}
    return {name: float(t) for name, t in (part.rsplit(" ", 1) for part in split.split(", "))}
