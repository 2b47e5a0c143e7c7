"""Merging per-worker record files, and ``python -m loadtest.merge``."""

from __future__ import annotations

import json

import pytest

from loadtest.merge import main, merge_records
from loadtest.records import RecordWriter, RequestRecord, read_records


def rec(start, worker, success=True):
    if not success:
        return RequestRecord("chat", start, False, 0.5, worker=worker, error="ConnectionError: refused")
    return RequestRecord("chat", start, True, 1.0, ttft_s=0.25, itl_s=(0.25, 0.5), prompt_tokens=10,
                         completion_tokens=3, worker=worker)


def write(path, records):
    writer = RecordWriter(path)
    for r in records:
        writer.write(r)
    writer.close()
    return path


@pytest.fixture
def worker_files(tmp_path):
    a = write(tmp_path / "run_records.host_a.jsonl", [rec(0.0, "a"), rec(2.0, "a"), rec(4.0, "a", success=False)])
    b = write(tmp_path / "run_records.host_b.jsonl", [rec(1.0, "b"), rec(3.0, "b")])
    return a, b


def test_merge_orders_by_start_and_drops_exact_duplicates(worker_files, tmp_path):
    a, b = worker_files
    merged = merge_records([a, b])
    assert [(r.start_time, r.worker) for r in merged] == [(0.0, "a"), (1.0, "b"), (2.0, "a"), (3.0, "b"), (4.0, "a")]
    master = write(tmp_path / "master.jsonl", merged[:3])  # the master's partial copy
    assert merge_records([a, b, master, a]) == merged


def test_cli_globs_worker_files_and_writes_the_report(worker_files, tmp_path, capsys):
    prefix = tmp_path / "run"
    assert main(["--out", str(prefix)]) == 0
    assert len(read_records([f"{prefix}_records.jsonl"])) == 5
    figures = json.loads((tmp_path / "run_summary.json").read_text())["figures"]
    assert (figures["completed"], figures["failed"], figures["total_output_tokens"]) == (4, 1, 12)
    assert figures["duration"] == 4.5  # 0 s .. 4 + 0.5 s
    assert figures["errors"] == {"ConnectionError: refused": 1}
    assert "Successful requests:" in (tmp_path / "run_summary.txt").read_text()
    assert "Serving Benchmark Result" in capsys.readouterr().out


def test_cli_exit_codes(worker_files, tmp_path):
    prefix = str(tmp_path / "run")
    assert main(["--out", prefix, "--slo", "p99_ttft_ms<=100"]) == 3  # TTFT is 250 ms
    failed_only = write(tmp_path / "f.jsonl", [rec(0.0, "a", success=False)])
    assert main(["--out", str(tmp_path / "f"), str(failed_only)]) == 1  # nothing completed
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "none")])  # no files match
    with pytest.raises(SystemExit):
        main(["--out", prefix, "--slo", "p99_nothing<=1"])
