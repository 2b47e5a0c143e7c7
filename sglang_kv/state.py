"""Per-request offload state and the plugin's own accounting.

State is keyed by SGLang's request id (``rid``), never by the request-table row alone: rows are
reused as soon as a request finishes, while a rid names one request for its whole life. A state
is created at the request's first decode step (the prompt is complete then) and released when
SGLang frees the request's row (finish, abort, retraction); see ``hooks.on_req_free``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestState:
    """What the backend keeps for one request.

    ``prompt_len`` is fixed at the first decode step; positions ``>= prompt_len`` are generated
    tokens (always exact). ``offloaded`` is False for prompts below ``--kv-offload-min-prompt``:
    those are served with plain attention.
    """

    rid: str
    req_row: int  # row in SGLang's req_to_token table
    prompt_len: int
    offloaded: bool
    summaries: dict[int, Any] = field(default_factory=dict)  # layer_id -> selector summary
    summary_bytes: int = 0  # device bytes held by all summaries


@dataclass
class OffloadStats:
    """Counters since startup (monotonic) plus the live totals of the request table."""

    requests_started: int = 0
    requests_offloaded: int = 0
    requests_released: int = 0
    decode_steps: int = 0  # (request, decode step) pairs served by the sparse path
    selected_tokens: int = 0  # sum over steps, layers and kv heads of selected tokens


class RequestTable:
    """rid -> RequestState, with the accounting every test and metric reads."""

    def __init__(self) -> None:
        self._states: dict[str, RequestState] = {}
        self.stats = OffloadStats()

    def __len__(self) -> int:
        return len(self._states)

    def get(self, rid: str) -> RequestState | None:
        return self._states.get(rid)

    def start(self, rid: str, req_row: int, prompt_len: int, offloaded: bool) -> RequestState:
        if rid in self._states:
            raise RuntimeError(f"kv-offload: request {rid} already has offload state")
        state = RequestState(rid=rid, req_row=req_row, prompt_len=prompt_len, offloaded=offloaded)
        self._states[rid] = state
        self.stats.requests_started += 1
        self.stats.requests_offloaded += int(offloaded)
        return state

    def release(self, rid: str) -> bool:
        """Drop a request's state (no-op for requests that never decoded). Returns whether it existed."""
        state = self._states.pop(rid, None)
        if state is None:
            return False
        state.summaries.clear()
        self.stats.requests_released += 1
        return True

    def release_all(self) -> None:
        for rid in list(self._states):
            self.release(rid)

    def device_bytes(self) -> int:
        return sum(s.summary_bytes for s in self._states.values())

    def snapshot(self) -> dict[str, Any]:
        """Live totals and counters, JSON-ready (served in /server_info under ``kv_offload``)."""
        return {
            "live_requests": len(self._states),
            "live_offloaded_requests": sum(s.offloaded for s in self._states.values()),
            "device_bytes": self.device_bytes(),
            "host_bytes": 0,
            **self.stats.__dict__,
        }
