"""DecodeTimer: the device time of the offloaded decode attention, per step (``--kv-offload-decode-timing N``).

A decode step runs the offload backend's ``forward_decode`` once per layer. The timer marks the
start and end of each such call on the current stream (a CUDA event on the GPU, ``perf_counter`` on
the CPU, whose ops run synchronously), and in between the end of each stage (:meth:`DecodeTimer.mark`:
``kv_write``, ``select``, ``gather``, ``attend``; what follows the last mark is ``other``). It sums
one step's spans and, every ``N`` steps, logs the median step and that step's stages:

    sglang-kv decode timing: batch 32, offloaded attention 181.2 ms per step over 48 layers (median of 4 steps; stages ms: kv_write 2.1, select 50.3, gather 80.2, attend 40.4, other 8.2)

A span covers everything the layer's attention call put on the stream, GPU idle gaps included, so
a stage's time is the stretch of the stream's timeline from the previous mark to its own. With
``stages=False`` (the backend's choice when ``--kv-offload-decode-chunks`` puts stages on several
streams, where stretches of one stream say nothing about them) only the total is kept. The timer
never waits on the hot path: a step's events are read when the next step starts
(:meth:`DecodeTimer.step`), by which time the scheduler has already waited for that step's tokens.
``python -m sglang_kv.bench serve`` reads these lines (:func:`parse_decode_timing`).
"""

from __future__ import annotations

import logging
import re
import time

import torch

logger = logging.getLogger(__name__)

LOG_PREFIX = "sglang-kv decode timing"
_LINE = re.compile(LOG_PREFIX + r": batch (\d+), offloaded attention ([0-9.]+) ms per step over (\d+) layers"
                   r" \(median of \d+ steps(?:; stages ms: ([^)]*))?\)")


class DecodeTimer:
    """Sums the spans of :meth:`begin` / :meth:`end` pairs per step, split at :meth:`mark` calls;
    logs every ``interval`` steps."""

    def __init__(self, device: torch.device | str, interval: int, *, stages: bool = True):
        if interval < 1:
            raise ValueError(f"DecodeTimer: interval must be >= 1, got {interval}")
        self.interval = interval
        self.stages = stages
        self._cuda = torch.device(device).type == "cuda"
        self._layer: list[tuple[str, object]] | None = None  # (stage, mark) of the open layer
        self._spans: list[list[tuple[str, object]]] = []  # this step's closed layers
        self._batch = 0
        self._steps: list[tuple[int, float, int, dict[str, float]]] = []  # (batch, ms, layers, stages) since the last log line

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

    def begin(self) -> None:
        """Mark the start of one layer's offloaded attention."""
        self._layer = [("", self._mark())]

    def mark(self, stage: str) -> None:
        """The open layer's stage ``stage`` ends here (no-op without an open layer or with stages off)."""
        if self._layer is not None and self.stages:
            self._layer.append((stage, self._mark()))

    def end(self) -> None:
        """The open layer's attention ends here (the stretch since the last mark is ``other``)."""
        if self._layer is not None:
            self._layer.append(("other", self._mark()))
            self._spans.append(self._layer)
            self._layer = None

    def step(self, batch: int) -> None:
        """A decode step of ``batch`` offloaded requests starts: close the previous step (logging
        every ``interval`` steps) and start counting this one."""
        if self._spans:
            stages: dict[str, float] = {}
            for layer in self._spans:
                for (_, a), (stage, b) in zip(layer, layer[1:]):
                    stages[stage] = stages.get(stage, 0.0) + self._elapsed_ms(a, b)
            self._steps.append((self._batch, sum(stages.values()), len(self._spans), stages))
            self._spans = []
            if len(self._steps) == self.interval:
                self._log()
        self._batch = batch

    def _log(self) -> None:
        batches = [b for b, _, _, _ in self._steps]
        batch = max(set(batches), key=batches.count)  # the batch most of these steps ran
        at_batch = [s for s in self._steps if s[0] == batch]
        _, ms, layers, stages = _median_by_ms(at_batch)
        split = ("; stages ms: " + ", ".join(f"{name} {t:.1f}" for name, t in stages.items())) if self.stages else ""
        logger.info("%s: batch %d, offloaded attention %.1f ms per step over %d layers (median of %d steps%s)",
                    LOG_PREFIX, batch, ms, layers, len(at_batch), split)
        self._steps = []


def parse_decode_timing(log: str) -> dict | None:
    """A server log's decode timing lines -> the median offloaded-attention time per step at the
    largest batch logged (None without such lines)."""
    lines = [(int(b), float(ms), int(n), _stages(split)) for b, ms, n, split in _LINE.findall(log)]
    if not lines:
        return None
    batch = max(line[0] for line in lines)
    at_batch = [line for line in lines if line[0] == batch]
    _, ms, layers, stages = _median_by_ms(at_batch)
    return {"batch": batch, "attention_ms_per_step": ms, "attention_ms_per_layer": ms / layers,
            "layers": layers, "stages_ms_per_step": stages, "lines_at_batch": len(at_batch), "lines": len(lines)}


def _median_by_ms(records: list[tuple]) -> tuple:
    """The record ``(batch, ms, layers, stages)`` with the median ``ms`` (the lower one of two), so
    its stages add up to the time reported with them."""
    return sorted(records, key=lambda r: r[1])[(len(records) - 1) // 2]


def _stages(split: str) -> dict[str, float] | None:
    """``"kv_write 2.1, select 50.3"`` -> ``{"kv_write": 2.1, "select": 50.3}`` (None when empty)."""
    if not split:
        return None
    return {name: float(t) for name, t in (part.rsplit(" ", 1) for part in split.split(", "))}
