"""DecodeTimer: the device time of the offloaded decode attention, per step (``--kv-offload-decode-timing N``).

A decode step runs the offload backend's ``forward_decode`` once per layer. The timer marks the
start and end of each such call on the current stream (a CUDA event on the GPU, ``perf_counter`` on
the CPU, whose ops run synchronously), sums the spans of one step and, every ``N`` steps, logs

    sglang-kv decode timing: batch 32, offloaded attention 181.2 ms per step over 48 layers (median of 4 steps)

A span covers everything the layer's attention call put on the stream, GPU idle gaps included. The
timer never waits on the hot path: a step's events are read when the next step starts
(:meth:`DecodeTimer.step`), by which time the scheduler has already waited for that step's tokens.
``python -m sglang_kv.bench serve`` reads these lines (:func:`parse_decode_timing`).
"""

from __future__ import annotations

import logging
import re
import statistics
import time

import torch

logger = logging.getLogger(__name__)

LOG_PREFIX = "sglang-kv decode timing"
_LINE = re.compile(LOG_PREFIX + r": batch (\d+), offloaded attention ([0-9.]+) ms per step over (\d+) layers")


class DecodeTimer:
    """Sums the spans of :meth:`begin` / :meth:`end` pairs per step; logs every ``interval`` steps."""

    def __init__(self, device: torch.device | str, interval: int):
        if interval < 1:
            raise ValueError(f"DecodeTimer: interval must be >= 1, got {interval}")
        self.interval = interval
        self._cuda = torch.device(device).type == "cuda"
        self._spans: list[tuple] = []  # (start mark, end mark) of this step's layers
        self._batch = 0
        self._steps: list[tuple[int, float, int]] = []  # (batch, ms, layers) since the last log line

    def _mark(self):
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _elapsed_ms(self, start, end) -> float:
        if self._cuda:
            end.synchronize()
            return start.elapsed_time(end)
        return (end - start) * 1e3

    def begin(self):
        """Mark the start of one layer's offloaded attention; pass the result to :meth:`end`."""
        return self._mark()

    def end(self, start) -> None:
        self._spans.append((start, self._mark()))

    def step(self, batch: int) -> None:
        """A decode step of ``batch`` offloaded requests starts: close the previous step (logging
        every ``interval`` steps) and start counting this one."""
        if self._spans:
            ms = sum(self._elapsed_ms(a, b) for a, b in self._spans)
            self._steps.append((self._batch, ms, len(self._spans)))
            self._spans = []
            if len(self._steps) == self.interval:
                self._log()
        self._batch = batch

    def _log(self) -> None:
        batches = [b for b, _, _ in self._steps]
        batch = max(set(batches), key=batches.count)  # the batch most of these steps ran
        at_batch = [(ms, layers) for b, ms, layers in self._steps if b == batch]
        ms = statistics.median(m for m, _ in at_batch)
        layers = max(n for _, n in at_batch)
        logger.info("%s: batch %d, offloaded attention %.1f ms per step over %d layers (median of %d steps)",
                    LOG_PREFIX, batch, ms, layers, len(at_batch))
        self._steps = []


def parse_decode_timing(log: str) -> dict | None:
    """A server log's decode timing lines -> the median offloaded-attention time per step at the
    largest batch logged (None without such lines)."""
    lines = [(int(b), float(ms), int(n)) for b, ms, n in _LINE.findall(log)]
    if not lines:
        return None
    batch = max(b for b, _, _ in lines)
    at_batch = [(ms, n) for b, ms, n in lines if b == batch]
    ms = statistics.median(m for m, _ in at_batch)
    layers = max(n for _, n in at_batch)
    return {"batch": batch, "attention_ms_per_step": ms, "attention_ms_per_layer": ms / layers,
            "layers": layers, "lines_at_batch": len(at_batch), "lines": len(lines)}
