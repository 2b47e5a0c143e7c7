"""The per-request record and its JSON-lines files.

One record per finished request (successful or failed), written by the process that sent it.
Durations are measured with ``time.perf_counter``; ``start_time`` is wall-clock (``time.time``) so
that records from several worker machines can be merged on one time line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ENDPOINTS = ("chat", "generate")


@dataclass(frozen=True)
class RequestRecord:
    endpoint: str  # "chat" (/v1/chat/completions) or "generate" (/generate)
    start_time: float  # wall clock when the request was sent, s since the epoch
    success: bool
    e2e_s: float  # send -> last stream line (bench_serving "latency"); time to the error on failure
    ttft_s: float = 0.0  # send -> first chunk carrying output (0.0 when none arrived)
    itl_s: tuple[float, ...] = ()  # gaps between output chunks after the first, s
    prompt_tokens: int = 0  # from the server's usage / meta_info
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the prefix cache, when reported
    stage: str = ""  # load stage when the request was sent, e.g. "users=4" or "rate=2"
    worker: str = ""  # Locust client id of the sending process ("local" without workers)
    finish_reason: str = ""  # "stop", "length", ... as reported in the stream; "" when absent
    error: str = ""  # empty on success

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {self.endpoint!r}")
        if self.success and self.error:
            raise ValueError(f"a successful record carries no error, got {self.error!r}")
        if not self.success and not self.error:
            raise ValueError("a failed record needs an error message")
        if self.success and not 0.0 <= self.ttft_s <= self.e2e_s:
            raise ValueError(f"need 0 <= ttft_s <= e2e_s, got ttft_s={self.ttft_s}, e2e_s={self.e2e_s}")

    @property
    def end_time(self) -> float:
        return self.start_time + self.e2e_s

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["itl_s"] = list(self.itl_s)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown record fields {sorted(unknown)}")
        return cls(**{**data, "itl_s": tuple(data.get("itl_s", ()))})


def dump_record(record: RequestRecord) -> str:
    """One JSON line (without the newline)."""
    return json.dumps(record.to_dict(), separators=(",", ":"))


def iter_records(path: str | os.PathLike) -> Iterator[RequestRecord]:
    """Records of one JSON-lines file; a truncated last line (a killed writer) is skipped."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for num, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if num == len(lines):  # the file does not end with a newline: an interrupted write
                break
            raise ValueError(f"{path}:{num}: not a JSON line: {line[:80]!r}") from None
        yield RequestRecord.from_dict(data)


def read_records(paths: Iterable[str | os.PathLike]) -> list[RequestRecord]:
    """All records of several files, ordered by start time; records sent at the same instant (two
    workers' clocks can agree to the microsecond) are ordered by their JSON line, so the order does not
    depend on the order of the files or of the lines in them."""
    records = [r for path in paths for r in iter_records(path)]
    records.sort(key=lambda r: (r.start_time, dump_record(r)))
    return records


class RecordWriter:
    """Appends records to a JSON-lines file, one flushed line per record.

    Flushing each line keeps the file complete up to the last finished request when the process
    is killed, so ``python -m loadtest.merge`` can still summarise it.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w") -> None:
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, mode, encoding="utf-8")
        self.num_written = 0

    def write(self, record: RequestRecord) -> None:
        self.write_line(dump_record(record))

    def write_line(self, line: str) -> None:
        """Write an already serialised record (as received from a worker)."""
        if self._file is None:
            raise ValueError(f"{self.path} is closed")
        self._file.write(line + "\n")
        self._file.flush()
        self.num_written += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
