"""eval + gate against a real SGLang server on CPU (tiny random-weight Llama, byte tokenizer), including
a server killed mid-run and a resumed run on a fresh server. About 3 minutes on 2 cores: two server
starts of up to a minute each, three eval processes, 6 + 6 short requests.

The dataset is built with the served model's own tokenizer directory, so the prompt lengths the
builder records must equal the prompt_tokens the server reports.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sglang_kv.cpu.server import cpu_server
from text2json.build import BuildArgs, Variant, build_records
from text2json.cli import main
from text2json.results import read_results
from text2json.tokenizer import load_counter
from text2json.writer import write_build

pytestmark = pytest.mark.server

NUM_SAMPLES = 6
MAX_TOKENS = "16"  # random weights never stop on their own: keep decoding short


@pytest.fixture(scope="module")
def short_dataset(tiny_model, tmp_path_factory):
    """Six short documents (3K-4.5K byte tokens) fitted with the tiny model's tokenizer."""
    args = BuildArgs(num_samples=NUM_SAMPLES, min_tokens=3000, max_tokens=4500, mean_tokens=None,
                     gold_at_min=(2, 3), gold_at_max=(2, 3), tokens_per_extra_distractor=10**6,
                     answer_budget=256, max_answer_tokens=256, tokens_per_section=1500)
    variant, counter = Variant("extraction", args), load_counter(str(tiny_model))
    records = build_records(variant, "cpu-short", 0, counter)
    out = tmp_path_factory.mktemp("cpu_short")
    write_build(out, records, variant, "cpu-short", 0, counter)
    return out, records


def _eval_cmd(dataset, url: str, out) -> list[str]:
    return [sys.executable, "-m", "text2json.cli", "eval", "--dataset", str(dataset), "--base-url", f"{url}/v1",
            "--model", "tiny", "--out", str(out), "--concurrency", "1", "--max-tokens", MAX_TOKENS,
            "--max-retries", "2", "--retry-backoff", "0.2", "--timeout", "120", "--no-progress"]


def test_eval_resumes_after_the_server_dies_and_gates(tiny_model, server_log_dir, short_dataset, tmp_path):
    dataset, records = short_dataset
    out = tmp_path / "run.jsonl"
    with cpu_server(tiny_model, log_dir=server_log_dir) as server:
        proc = subprocess.Popen(_eval_cmd(dataset, server.url, out), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while len(read_results(out)[1] if out.exists() else []) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no samples finished"
            time.sleep(0.1)
        server.kill()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "gave up after 3 attempt(s)" in stderr and "run the same command again to resume" in stderr
    _, first = read_results(out)
    assert 2 <= len(first) < NUM_SAMPLES

    by_id = {r["id"]: r for r in records}
    with cpu_server(tiny_model, log_dir=server_log_dir) as server:
        resumed = subprocess.run(_eval_cmd(dataset, server.url, out), capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        candidate = tmp_path / "candidate.jsonl"
        again = subprocess.run(_eval_cmd(dataset, server.url, candidate), capture_output=True, text=True,
                               timeout=600)
        assert again.returncode == 0, again.stderr

    _, rows = read_results(out)
    assert sorted(r["id"] for r in rows) == sorted(by_id) and len(out.read_text().splitlines()) == 1 + NUM_SAMPLES
    for r in rows:
        # The builder's exact count of the chat-templated prompt is what the server tokenized.
        assert r["prompt_tokens"] == by_id[r["id"]]["prompt_tokens"], r["id"]
        assert r["finish_reason"] in ("length", "stop") and r["completion_tokens"] <= int(MAX_TOKENS)

    md = tmp_path / "gate.md"
    assert main(["score", str(out), "--mode", "both"]) == 0
    assert main(["gate", "--baseline", str(out), "--candidate", str(candidate), "--markdown", str(md)]) == 0
    assert md.read_text().startswith("# text2json gate: PASS")
