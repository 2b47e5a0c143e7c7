"""Headless Locust runs of ``loadtest/locustfile.py`` against the fake streaming server.

About 60 s on a 2-core machine: each Locust process takes ~2 s to start and ~2 s to write its
report. Every run is bounded by ``RUN_LIMIT_S`` (60 s); a run that does not end is a failure.
"""

from __future__ import annotations

import collections
import json
import time

from loadtest.merge import merge_records
from loadtest_harness import check_clean_run, fake_server, finish_locust, free_port, run_locust, start_locust


def test_headless_chat_run_is_clean_and_matches_locust(tmp_path):
    with fake_server(token_delay=0.005) as server:
        prefix = tmp_path / "chat"
        run = run_locust(server.url, prefix, ["-u", "4", "-r", "4", "-t", "6s", "--csv", str(prefix),
                                              "--json-file", f"{prefix}_locust",
                                              "--random-input-len", "64", "--random-output-len", "16"])
    figures = check_clean_run(run)
    records = run.records()
    assert all(r.completion_tokens == 16 and r.prompt_tokens == 64 for r in records)
    assert all(len(r.itl_s) == 15 for r in records)  # one gap per content chunk after the first
    assert {r.stage for r in records} == {"users=4"}
    assert 3.0 < figures["concurrency"] <= 4.0  # 4 closed-loop users, idle only between requests
    assert figures["total_output_tokens"] == 16 * len(records)
    assert run.summary()["workload"]["server_info"] == {"fake": True, "token_delay": 0.005}
    assert "Serving Benchmark Result" in run.output and "Mean TTFT (ms):" in run.output
    assert (tmp_path / "chat_stats.csv").exists() and (tmp_path / "chat_summary.txt").exists()


def test_poisson_generate_with_token_ids_and_a_missed_slo(tmp_path):
    with fake_server(token_delay=0.002) as server:
        run = run_locust(server.url, tmp_path / "pois", [
            "--loadtest-shape", "poisson", "--request-rate", "10,30", "--stage-time", "3s", "-u", "2",
            "--endpoint", "generate", "--input-ids", "--vocab-size", "256", "--random-input-len", "32",
            "--random-output-len", "8", "--slo", "p99_ttft_ms<=0.001,completed>=1"])
    assert run.returncode == 3, run.output[-3000:]  # the TTFT threshold cannot be met
    summary = run.summary()
    slo = summary["figures"]["slo"]
    assert [row["passed"] for row in slo] == [False, True]
    stages = summary["figures"]["stages"]
    assert list(stages) == ["rate=10", "rate=30"]
    # open-loop arrivals follow the configured rates (Poisson counts in 3 s: generous bounds)
    assert 4 <= stages["rate=10"]["completed"] <= 60 and 40 <= stages["rate=30"]["completed"] <= 150
    records = run.records()
    assert all(r.success and r.endpoint == "generate" and r.prompt_tokens == 32 for r in records)
    assert all(r.completion_tokens == 8 and len(r.itl_s) == 7 for r in records)


def test_killing_the_server_mid_run_fails_the_run_without_hanging(tmp_path):
    prefix = tmp_path / "kill"
    with fake_server(token_delay=0.01) as server:
        started = time.monotonic()
        process = start_locust(server.url, prefix, [
            "-u", "4", "-r", "4", "-t", "50s", "--json-file", f"{prefix}_locust", "--abort-after-failures", "10",
            "--request-timeout", "5", "--random-input-len", "32", "--random-output-len", "100"])
        time.sleep(6)  # startup, then a few seconds of ~1 s requests
        server.kill()
        run = finish_locust(process, prefix, started)
    assert run.returncode != 0
    assert run.wall_s < 40, f"stopped only after {run.wall_s:.0f} s"  # aborted long before -t 50s
    figures = run.summary()["figures"]
    records = run.records()
    assert figures["completed"] > 0 and figures["failed"] >= 10
    assert run.locust_totals() == (len(records), figures["failed"])
    kinds = collections.Counter(r.error.split(":")[0] for r in records if not r.success)
    assert set(kinds) <= {"ConnectionError", "ChunkedEncodingError"}, kinds


def test_distributed_run_with_a_dataset_merges_worker_records(tmp_path):
    num_workers = 2
    prefix = tmp_path / "dist"
    dataset = tmp_path / "t2j.jsonl"  # text2json records: the workers read the master's --dataset
    dataset.write_text("".join(json.dumps({"problem": "word " * (10 + i), "answer": "[]"}) + "\n" for i in range(5)))
    with fake_server(token_delay=0.005) as server:
        started = time.monotonic()
        port = free_port()
        workers = [start_locust(server.url, prefix, [], role=("--worker", "--master-port", str(port)))
                   for _ in range(num_workers)]
        master = start_locust(server.url, prefix, [
            "-u", "4", "-r", "4", "-t", "6s", "--json-file", f"{prefix}_locust", "--dataset", str(dataset),
            "--max-tokens", "12"],
            role=("--master", "--headless", "--master-bind-port", str(port), "--expect-workers",
                  str(num_workers)))
        run = finish_locust(master, prefix, started)
        worker_runs = [finish_locust(w, prefix, started) for w in workers]
    figures = check_clean_run(run)
    records = run.records()
    assert len({r.worker for r in records}) == num_workers
    assert {r.prompt_tokens for r in records} == set(range(10, 15)) and {r.completion_tokens for r in records} == {12}
    # each worker kept its own complete copy, and the master received every record
    per_worker = sorted(tmp_path.glob("dist_records.*.jsonl"))
    assert len(per_worker) == num_workers
    assert merge_records(per_worker) == records
    assert figures["completed"] == len(records)
    assert all(w.returncode == 0 for w in worker_runs)
