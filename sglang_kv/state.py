"""Per-request offload state and the plugin's own accounting.

State is keyed by SGLang's request id (``rid``), never by the request-table row alone: rows are
reused as soon as a request finishes, while a rid names one request for its whole life. A state is
created in the extend pass that completes an offloaded request's prompt and released when SGLang
frees the request's row (finish, abort, retraction; see ``hooks.on_req_free``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class RequestState:
    """What the backend keeps for one offloaded request.

    Positions ``[sink, cand_end)`` are the candidates (summarized, payload offloaded); ``[0, sink)``
    and ``[cand_end, prompt_len)`` stay exact, as do the generated tokens (``>= prompt_len``).
    """

    rid: str
    req_row: int  # row in SGLang's req_to_token table
    prompt_len: int
    sink: int
    cand_end: int
    summaries: dict[int, Any] = field(default_factory=dict)  # layer_id -> LayerSummary (payload on host)
    blocks: dict[int, Any] = field(default_factory=dict)  # layer_id -> store.host.HostBlock
    device_bytes: int = 0
    host_bytes: int = 0
    failed: bool = False  # could not be offloaded; the scheduler aborts it

    @property
    def num_candidates(self) -> int:
        return self.cand_end - self.sink


@dataclass
class OffloadStats:
    """Counters since startup (monotonic). ``loaded_bytes`` and ``cache_hits`` may hold an int64 0-d
    device tensor between reads (the device cache counts hits on the GPU, so that the decode step
    does not wait for it); :meth:`settled` turns them into ints."""

    requests_offloaded: int = 0
    requests_released: int = 0
    decode_steps: int = 0  # (request, step) pairs served by the sparse path
    selected_tokens: int = 0  # over steps, layers and kv heads
    loaded_bytes: int = 0  # host -> device payload bytes read by the sparse path
    cache_lookups: int = 0  # payload rows looked up in the device caches (--kv-offload-cache)
    cache_hits: int = 0  # of those, rows read from GPU memory instead of the host
    peak_live_requests: int = 0  # most offloaded requests alive at once

    def settled(self) -> dict[str, int]:
        """Every counter as an int (device counts are read, which waits for the GPU, and kept as ints)."""
        for name, value in self.__dict__.items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, int(value))
        return dict(self.__dict__)


class RequestTable:
    """rid -> RequestState, with the accounting every test and metric reads."""

    def __init__(self) -> None:
        self._states: dict[str, RequestState] = {}
        self.stats = OffloadStats()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, rid: str) -> RequestState | None:
        return self._states.get(rid)

    def rids(self) -> list[str]:
        return list(self._states)

    def start(self, rid: str, req_row: int, prompt_len: int, *, sink: int, cand_end: int) -> RequestState:
        if rid in self._states:
            raise RuntimeError(f"kv-offload: request {rid} already has offload state")
        if not 0 <= sink < cand_end <= prompt_len:
            raise ValueError(f"kv-offload: bad windows sink={sink} cand_end={cand_end} prompt_len={prompt_len}")
        state = RequestState(rid=rid, req_row=req_row, prompt_len=prompt_len, sink=sink, cand_end=cand_end)
        self._states[rid] = state
        self.stats.requests_offloaded += 1
        self.stats.peak_live_requests = max(self.stats.peak_live_requests, len(self._states))
        return state

    def release(self, rid: str) -> RequestState | None:
        """Drop a request's state; returns it (None for requests that were never offloaded)."""
        state = self._states.pop(rid, None)
        if state is not None:
            self.stats.requests_released += 1
        return state

    def snapshot(self) -> dict[str, Any]:
        """Live totals and counters, JSON-ready (served in /server_info under ``kv_offload``)."""
        live = self._states.values()
        return {
            "live_requests": len(self._states),
            "live_candidate_tokens": sum(s.num_candidates for s in live),
            "device_bytes": sum(s.device_bytes for s in live),
            "host_bytes": sum(s.host_bytes for s in live),
            **self.stats.settled(),
        }
