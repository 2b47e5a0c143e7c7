"""eval + score + gate end to end against a fake OpenAI-compatible server (a subprocess), including a
server that dies mid-run and a resumed run. About 15 s.

The real-server version of these flows is in test_eval_cpu_server.py.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from text2json.cli import main
from text2json.results import read_results

FAKE_SERVER = Path(__file__).with_name("fake_openai_server.py")


@contextlib.contextmanager
def fake_server(tmp_path: Path, dataset: Path, *args: str):
    """Start the fake server; yield (base_url, request log path); always stop it."""
    tag = f"{time.monotonic_ns()}"
    port_file, log = tmp_path / f"port-{tag}", tmp_path / f"requests-{tag}.jsonl"
    proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--dataset", str(dataset), "--port-file",
                             str(port_file), "--log", str(log), *args])
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}/v1", log
    finally:
        proc.kill()
        proc.wait()


def _requests(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _eval(dataset, url, out, *extra) -> int:
    return main(["eval", "--dataset", str(dataset), "--base-url", url, "--model", "m", "--out", str(out),
                 "--no-progress", "--retry-backoff", "0.02", "--max-retries", "2", *extra])


def test_eval_sends_the_published_settings_and_scores(tmp_path, mini_build):
    dataset, records = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset) as (url, log):
        assert _eval(dataset, url, out, "--concurrency", "3", "--api-key", "sk-test") == 0
    sent = _requests(log)
    assert len(sent) == len(records)
    by_problem = {r["problem"]: r for r in records}
    for req in sent:
        body = req["body"]
        assert req["path"] == "/v1/chat/completions" and req["authorization"] == "Bearer sk-test"
        assert body["temperature"] == 0 and body["max_tokens"] == 1024 and body["stream"] is False
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
        assert body["messages"][0]["content"] in by_problem
    meta, rows = read_results(out)
    assert meta["model"] == "m" and meta["max_tokens"] == 1024
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in records)
    assert all(r["finish_reason"] == "stop" and r["attempts"] == 1 for r in rows)
    report_path = tmp_path / "score.json"
    assert main(["score", str(out), "--mode", "both", "--json", str(report_path)]) == 0
    figures = json.loads(report_path.read_text())["figures"]
    assert figures["paper"]["score"] == 100.0 and figures["robust"]["score"] == 100.0
    assert set(figures["paper"]["per_domain"]) == {r["domain"] for r in records}


def test_server_dies_mid_run_then_resume_completes(tmp_path, mini_build, capsys):
    dataset, records = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset, "--die-after", "3", "--delay", "0.05") as (url, _):
        assert _eval(dataset, url, out, "--concurrency", "2") == 1
    err = capsys.readouterr().err
    assert "gave up after 3 attempt(s)" in err and "run the same command again to resume" in err
    _, first = read_results(out)
    assert 1 <= len(first) <= 3  # what finished before the crash is kept, nothing else
    # The server comes back (on another port); the same command resumes with the missing samples.
    with fake_server(tmp_path, dataset) as (url, log):
        assert _eval(dataset, url, out, "--concurrency", "2") == 0
    resent = {r["body"]["messages"][0]["content"] for r in _requests(log)}
    assert len(resent) == len(records) - len(first)
    assert not resent & {r["problem"] for r in records if r["id"] in {f["id"] for f in first}}
    _, rows = read_results(out)
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == len(set(ids))
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + len(records)  # the meta line, then one line per sample


def test_partial_last_line_is_dropped_on_resume(tmp_path, mini_build):
    dataset, records = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset) as (url, _):
        assert _eval(dataset, url, out, "--limit", "3") == 0
        with out.open("a") as f:
            f.write('{"id": "killed-mid-wri')
        assert _eval(dataset, url, out, "--limit", "3") == 0
    assert len(out.read_text().splitlines()) == 4 and out.read_text().endswith("\n")


def test_resume_refuses_other_settings(tmp_path, mini_build, capsys):
    dataset, _ = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset) as (url, _):
        assert _eval(dataset, url, out, "--limit", "2") == 0
        assert _eval(dataset, url, out, "--limit", "2", "--max-tokens", "512") == 2
    assert "different max_tokens" in capsys.readouterr().err


def test_non_retryable_http_error_stops_at_once(tmp_path, mini_build, capsys):
    dataset, _ = mini_build
    with fake_server(tmp_path, dataset, "--behavior", "http400") as (url, log):
        assert _eval(dataset, url, tmp_path / "run.jsonl", "--concurrency", "1") == 1
    assert len(_requests(log)) == 1
    assert "HTTP 400" in capsys.readouterr().err


def test_retryable_http_error_with_on_error_record(tmp_path, mini_build):
    dataset, records = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset, "--behavior", "http503") as (url, log):
        assert _eval(dataset, url, out, "--on-error", "record", "--limit", "2") == 0
    assert len(_requests(log)) == 2 * 3  # each sample: 1 try + 2 retries
    _, rows = read_results(out)
    assert all("HTTP 503" in r["error"] and r["prediction"] == "" for r in rows)


def test_gate_passes_on_equal_runs_and_fails_on_regression(tmp_path, mini_build, capsys):
    dataset, records = mini_build
    base, same, worse = tmp_path / "base.jsonl", tmp_path / "same.jsonl", tmp_path / "worse.jsonl"
    with fake_server(tmp_path, dataset) as (url, _):
        assert _eval(dataset, url, base) == 0
        assert _eval(dataset, url, same) == 0
    with fake_server(tmp_path, dataset, "--behavior", "drop-last") as (url, _):
        assert _eval(dataset, url, worse) == 0
    assert main(["gate", "--baseline", str(base), "--candidate", str(same)]) == 0
    md, js = tmp_path / "gate.md", tmp_path / "gate.json"
    assert main(["gate", "--baseline", str(base), "--candidate", str(worse), "--markdown", str(md),
                 "--json", str(js), "--top", "3"]) == 1
    report = json.loads(js.read_text())
    assert not report["passed"] and report["num_compared"] == len(records)
    assert len(report["worst_regressions"]) == 3
    diff = report["worst_regressions"][0]["diff"]
    assert {d["attribute"] for d in diff} >= {"(entity)"}  # the dropped entity
    assert any(d["candidate"] == "missing" for d in diff)
    assert any(str(d["candidate"]).endswith("(approx.)") for d in diff)  # the corrupted value
    text = md.read_text()
    assert text.startswith("# text2json gate: FAIL") and "| entity | attribute | gold | baseline | candidate |" in text
    # Generous thresholds let the same regression pass.
    assert main(["gate", "--baseline", str(base), "--candidate", str(worse), "--max-drop", "100",
                 "--max-domain-drop", "100"]) == 0
    # A stored baseline (score report JSON) works in place of the results file.
    stored = tmp_path / "baseline.json"
    assert main(["score", str(base), "--json", str(stored)]) == 0
    assert main(["gate", "--baseline", str(stored), "--candidate", str(same)]) == 0
    assert main(["gate", "--baseline", str(stored), "--candidate", str(worse)]) == 1
    capsys.readouterr()


def test_gate_fails_when_candidate_is_incomplete(tmp_path, mini_build):
    dataset, _ = mini_build
    base, part = tmp_path / "base.jsonl", tmp_path / "part.jsonl"
    with fake_server(tmp_path, dataset) as (url, _):
        assert _eval(dataset, url, base) == 0
    # An interrupted candidate: only the first lines of the baseline's file.
    part.write_text("\n".join(base.read_text().splitlines()[:4]) + "\n")
    assert main(["gate", "--baseline", str(base), "--candidate", str(part)]) == 1
    assert main(["gate", "--baseline", str(base), "--candidate", str(part), "--allow-missing"]) == 0


def test_truncation_is_reported(tmp_path, mini_build, capsys):
    dataset, records = mini_build
    out = tmp_path / "run.jsonl"
    with fake_server(tmp_path, dataset, "--behavior", "truncate") as (url, _):
        assert _eval(dataset, url, out) == 0
    capsys.readouterr()
    assert main(["score", str(out), "--mode", "robust"]) == 0
    printed = capsys.readouterr().out
    assert "truncated=1.0" in printed and "parse_failures=" in printed


@pytest.mark.parametrize("command", ["build", "score", "eval", "gate", "stats"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: text2json " + command in capsys.readouterr().out
