"""The report of a run: ``{prefix}_summary.json`` and ``{prefix}_summary.txt`` from the records.

The JSON is the project's result record (``sglang_kv.results.result_record``: command, commit,
machine, date, workload) whose ``figures`` are the bench_serving summary of all records, plus
``stages`` (one summary per stage label), ``slo`` (one row per threshold) and ``errors`` (the
most frequent failure messages with their counts).
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.records import RequestRecord
from loadtest.summary import Slo, check_slos, format_table, summarize, summarize_stages
from sglang_kv.results import result_record

MAX_ERROR_KINDS = 10
EXIT_NO_REQUESTS = 1  # Locust's own exit code for failures is 1 (--exit-code-on-error)
EXIT_SLO_VIOLATED = 3  # 2 is Locust's code for an unhandled exception


def records_path(prefix: str) -> Path:
    """The merged records of a run (written by the local runner or the master)."""
    return Path(f"{prefix}_records.jsonl")


def worker_records_path(prefix: str, worker: str) -> Path:
    """One worker's own copy of its records, on the worker's machine."""
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in worker)
    return Path(f"{prefix}_records.{tag}.jsonl")


def error_counts(records: Sequence[RequestRecord]) -> dict[str, int]:
    """The most frequent failure messages (first line, 200 characters), most frequent first."""
    counts = collections.Counter(r.error.splitlines()[0][:200] for r in records if not r.success)
    return dict(counts.most_common(MAX_ERROR_KINDS))


def build_report(records: Sequence[RequestRecord], workload: dict[str, Any], slos: Sequence[Slo],
                 command: str | None = None) -> dict[str, Any]:
    overall = summarize(records)
    stages = summarize_stages(records)
    figures: dict[str, Any] = {
        **overall,
        "stages": stages,
        "slo": check_slos(overall, slos),
        "errors": error_counts(records),
    }
    return result_record(workload, figures, command)


def report_text(report: dict[str, Any]) -> str:
    """bench_serving tables: the whole run, then each stage when there are several."""
    figures, workload = report["figures"], report["workload"]
    header = [(label, str(workload[k])) for label, k in (("Endpoint:", "endpoint"), ("Load shape:", "shape"))
              if k in workload]
    parts = [format_table(figures, header=header)]
    if len(figures["stages"]) > 1:
        parts += [format_table(s, title=f"Stage {label}") for label, s in figures["stages"].items()]
    for row in figures["slo"]:
        parts.append(f"SLO {row['slo']}: {'pass' if row['passed'] else 'FAIL'} (value {row['value']:.2f})")
    for message, count in figures["errors"].items():
        parts.append(f"error x{count}: {message}")
    return "\n".join(parts)


def write_report(records: Sequence[RequestRecord], prefix: str, workload: dict[str, Any],
                 slos: Sequence[Slo], command: str | None = None) -> tuple[dict[str, Any], str]:
    """Write ``{prefix}_summary.json`` and ``{prefix}_summary.txt``; returns (report, text)."""
    report = build_report(records, workload, slos, command)
    text = report_text(report)
    json_path = Path(f"{prefix}_summary.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{prefix}_summary.txt").write_text(text + "\n")
    return report, text


def exit_code(report: dict[str, Any]) -> int:
    """0, or why the run must fail even when Locust saw no failed request."""
    figures = report["figures"]
    if figures["completed"] == 0:
        return EXIT_NO_REQUESTS
    if not all(row["passed"] for row in figures["slo"]):
        return EXIT_SLO_VIOLATED
    return 0


def default_prefix(loadtest_prefix: str | None, csv_prefix: str | None) -> str:
    """``--loadtest-prefix``, else Locust's ``--csv`` prefix (files side by side), else out/loadtest."""
    return loadtest_prefix or csv_prefix or os.path.join("out", "loadtest")
