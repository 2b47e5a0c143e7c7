"""Report files, output names and exit codes."""

from __future__ import annotations

import json

from loadtest.records import RequestRecord
from loadtest.report import default_prefix, exit_code, worker_records_path, write_report
from loadtest.summary import parse_slos


def ok(start, stage):
    return RequestRecord("chat", start, True, 1.0, ttft_s=0.2, itl_s=(0.8,), prompt_tokens=5,
                         completion_tokens=2, stage=stage)


def test_report_has_provenance_stages_slos_and_errors(tmp_path):
    records = [ok(0.0, "users=1"), ok(1.0, "users=2"), ok(1.5, "users=2"),
               RequestRecord("chat", 2.0, False, 0.1, stage="users=2", error="StreamError: HTTP 500: a\ntrace")]
    report, text = write_report(records, str(tmp_path / "r"), {"endpoint": "chat", "shape": "sweep"},
                                parse_slos("p99_ttft_ms<=100"))
    saved = json.loads((tmp_path / "r_summary.json").read_text())
    assert saved == report
    assert {"command", "commit", "machine", "date", "workload", "figures"} <= set(saved)
    figures = saved["figures"]
    assert (figures["completed"], figures["failed"]) == (3, 1)
    assert list(figures["stages"]) == ["users=1", "users=2"]
    assert figures["stages"]["users=2"]["failed"] == 1
    assert figures["slo"] == [{"slo": "p99_ttft_ms<=100", "value": 200.0, "passed": False}]
    assert figures["errors"] == {"StreamError: HTTP 500: a": 1}  # first line only
    assert exit_code(report) == 3
    assert (tmp_path / "r_summary.txt").read_text() == text + "\n"
    assert "Stage users=2" in text and "SLO p99_ttft_ms<=100: FAIL" in text and "Load shape:" in text


def test_exit_code_without_completed_requests(tmp_path):
    failed = [RequestRecord("chat", 0.0, False, 0.1, error="x")]
    report, _ = write_report(failed, str(tmp_path / "f"), {}, [])
    assert exit_code(report) == 1
    report, _ = write_report([ok(0.0, "s")], str(tmp_path / "g"), {}, [])
    assert exit_code(report) == 0


def test_output_names():
    assert default_prefix("a/run", "b/csv") == "a/run"
    assert default_prefix("", "b/csv") == "b/csv"
    assert default_prefix("", None) == "out/loadtest"
    assert str(worker_records_path("out/x", "host.lan_1f2e")) == "out/x_records.host-lan_1f2e.jsonl"
