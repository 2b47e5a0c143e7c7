"""Helpers for the end-to-end load-test tests: the fake server, headless Locust, the acceptance checks.

``run_locust`` and ``check_clean_run`` work against any server URL, so the same checks serve the
fake server here and a real CPU SGLang server (``sglang_kv.cpu.server.cpu_server``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.records import RequestRecord, read_records

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
FAKE_SERVER = Path(__file__).resolve().parent / "loadtest_fake_server.py"
RUN_LIMIT_S = 60  # every Locust run in the tests must end within this, or the test fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeServer:
    url: str
    process: subprocess.Popen

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def fake_server(ttft_delay: float = 0.02, token_delay: float = 0.005) -> Iterator[FakeServer]:
    """Start ``loadtest_fake_server.py`` on a free port; always killed on exit."""
    process = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), "--port", "0", "--ttft-delay", str(ttft_delay),
         "--token-delay", str(token_delay)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield FakeServer(f"http://127.0.0.1:{int(line.split()[1])}", process)
    finally:
        process.kill()
        process.wait(timeout=10)


@dataclass
class LocustRun:
    returncode: int
    output: str
    prefix: Path
    wall_s: float

    def summary(self) -> dict:
        return json.loads(Path(f"{self.prefix}_summary.json").read_text())

    def records(self) -> list[RequestRecord]:
        return read_records([Path(f"{self.prefix}_records.jsonl")])

    def locust_totals(self) -> tuple[int, int]:
        """(requests, failures) in Locust's own final statistics (``--json-file {prefix}_locust``).

        Not from ``--csv``: Locust rewrites ``_stats.csv`` once a second and not at exit, so it
        can miss the last second of requests.
        """
        entries = json.loads(Path(f"{self.prefix}_locust.json").read_text())
        return sum(e["num_requests"] for e in entries), sum(e["num_failures"] for e in entries)


def locust_command(host: str, prefix: Path, args: Sequence[str], role: Sequence[str] = ("--headless",)) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *role, "--host", host,
            "--loadtest-prefix", str(prefix), "--only-summary", *args]


def start_locust(host: str, prefix: Path, args: Sequence[str], role: Sequence[str] = ("--headless",)
                 ) -> subprocess.Popen:
    return subprocess.Popen(locust_command(host, prefix, args, role), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish_locust(process: subprocess.Popen, prefix: Path, started: float, limit_s: float = RUN_LIMIT_S
                  ) -> LocustRun:
    """Wait for a Locust process; a run past ``limit_s`` is killed and fails the test (a hang)."""
    try:
        output, _ = process.communicate(timeout=max(limit_s - (time.monotonic() - started), 1))
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"locust still running after {limit_s} s; output tail:\n{output[-3000:]}") from None
    return LocustRun(process.returncode, output, prefix, time.monotonic() - started)


def run_locust(host: str, prefix: Path, args: Sequence[str], limit_s: float = RUN_LIMIT_S) -> LocustRun:
    """One headless Locust run of ``loadtest/locustfile.py``, bounded by ``limit_s``."""
    started = time.monotonic()
    return finish_locust(start_locust(host, prefix, args), prefix, started, limit_s)


def check_clean_run(run: LocustRun) -> dict:
    """The acceptance checks of a run that should be clean; returns its summary figures.

    Exit code 0, summary JSON written, no failed request (in the records and in Locust's own
    statistics when ``--json-file {prefix}_locust`` was given), throughput > 0, and TTFT <= e2e for every request.
    """
    assert run.returncode == 0, f"exit code {run.returncode}; output tail:\n{run.output[-3000:]}"
    figures = run.summary()["figures"]
    records = run.records()
    assert records and all(r.success for r in records), [r.error for r in records if not r.success][:5]
    assert figures["failed"] == 0 and figures["completed"] == len(records)
    assert figures["request_throughput"] > 0 and figures["output_throughput"] > 0
    assert all(0 < r.ttft_s <= r.e2e_s for r in records)
    if Path(f"{run.prefix}_locust.json").exists():
        totals = run.locust_totals()
        assert totals == (len(records), 0), f"Locust counted {totals}, the records {len(records)}"
    return figures
