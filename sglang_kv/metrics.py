"""Prometheus metrics of the offload engine (with SGLang's ``--enable-metrics``).

Exported next to SGLang's own metrics on ``GET /metrics`` (SGLang runs prometheus_client in
multiprocess mode, so metrics created in the scheduler process are collected by the HTTP server):

    sglang_kv:selected_tokens_total     selected (token, kv head, layer) entries attended
    sglang_kv:loaded_bytes_total        payload bytes read from host memory by the sparse path
    sglang_kv:cache_lookups_total       payload rows looked up in the device caches (--kv-offload-cache)
    sglang_kv:cache_hits_total          of those, rows read from GPU memory
    sglang_kv:decode_steps_total        (offloaded request, decode step) pairs
    sglang_kv:requests_offloaded_total  prompts offloaded
    sglang_kv:live_requests             offloaded requests alive now
    sglang_kv:host_bytes_in_use         host store bytes held by live requests
    sglang_kv:device_summary_bytes      GPU bytes of live requests' summaries
    sglang_kv:exact_rows_in_use         exact K/V token rows in use (tiered pool)
"""

from __future__ import annotations

_COUNTERS = {
    "selected_tokens": "Selected (token, kv head, layer) entries attended by the sparse decode path",
    "loaded_bytes": "Payload bytes read from host memory by the sparse decode path",
    "cache_lookups": "Payload rows looked up in the device caches (--kv-offload-cache)",
    "cache_hits": "Payload rows read from the device caches instead of host memory",
    "decode_steps": "(offloaded request, decode step) pairs served by the sparse path",
    "requests_offloaded": "Prompts offloaded",
}
_GAUGES = {
    "live_requests": "Offloaded requests alive now",
    "host_bytes_in_use": "Host store bytes held by live requests",
    "device_bytes": "GPU bytes held by live requests' summaries",
    "exact_rows_in_use": "Exact K/V token rows in use (tiered pool)",
}
_GAUGE_NAMES = {"device_bytes": "device_summary_bytes"}


class OffloadMetrics:
    """Counters and gauges updated from the runtime's snapshot (deltas for the counters)."""

    def __init__(self, method: str):
        from prometheus_client import Counter, Gauge

        labels = {"method": method}
        self._last = {name: 0 for name in _COUNTERS}
        self._counters = {name: Counter(f"sglang_kv:{name}", doc, labelnames=list(labels)).labels(**labels)
                          for name, doc in _COUNTERS.items()}
        self._gauges = {name: Gauge(f"sglang_kv:{_GAUGE_NAMES.get(name, name)}", doc, labelnames=list(labels),
                                    multiprocess_mode="mostrecent").labels(**labels)
                        for name, doc in _GAUGES.items()}

    def update(self, snapshot: dict) -> None:
        for name, counter in self._counters.items():
            value = snapshot.get(name, 0)
            if value > self._last[name]:
                counter.inc(value - self._last[name])
                self._last[name] = value
        for name, gauge in self._gauges.items():
            if name in snapshot:
                gauge.set(snapshot[name])
