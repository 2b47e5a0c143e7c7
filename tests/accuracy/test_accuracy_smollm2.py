"""Accuracy machinery on the real SmolLM2-135M-Instruct: full-budget logit fidelity and the gate.

Reduced versions of ``python -m sglang_kv.bench logits`` and ``text2json-mini`` (issue 9) on the
shortest text2json-mini documents (1.4K-1.8K tokens). About 5 minutes on 2 cores: seven CPU server
starts (two at a time for the logit test), 32 or 16 new tokens per request.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sglang_kv.bench.logits import Config, Prompt, chat_ids, run_logits
from sglang_kv.bench.text2json_gate import run_text2json

pytestmark = [pytest.mark.server, pytest.mark.smollm]

NEW_TOKENS = 32
EXACT_METHODS = ("oracle", "yakv", "quest", "shadowkv")


@pytest.fixture(scope="module")
def mini_records(smollm2_model, tmp_path_factory) -> list[dict]:
    """The three shortest of the first 16 text2json-mini samples, built with SmolLM2's tokenizer."""
    out = tmp_path_factory.mktemp("mini")
    subprocess.run([sys.executable, "-m", "text2json", "build", "--preset", "mini", "--num-samples", "16",
                    "--tokenizer", str(smollm2_model), "--out", str(out), "--no-progress"], check=True,
                   capture_output=True)
    records = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    return sorted(records, key=lambda r: r["prompt_tokens"])[:3]


def test_full_budget_offload_reproduces_stock_logits(smollm2_model, mini_records, server_log_dir):
    """At budget 1.0 with a lossless payload (16-bit; ShadowKV at full rank) every method must equal
    stock: greedy tokens, teacher-forced top-1 and KL. Prompt 0 forces stock's own greedy tokens (so every dumped log-prob can be checked
    against SGLang's own logprob output), prompt 1 the gold answer (a trajectory the model would not
    take: the dump must still be the model's distribution, not the forced one)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_model)
    a, b = mini_records[:2]
    gold = tokenizer(b["answer"], add_special_tokens=False)["input_ids"][:NEW_TOKENS]
    prompts = [Prompt(a["id"], chat_ids(tokenizer, a["problem"])), Prompt(b["id"], chat_ids(tokenizer, b["problem"]), gold)]
    assert all(1000 < len(p.ids) < 2000 for p in prompts)
    configs = [Config(f"{m}@1.0/kv16", m, 1.0, 16) for m in EXACT_METHODS]
    # ShadowKV rebuilds keys from a rank-r factorization of the 3 x 64 = 192 key channels: its default
    # rank 160 is lossy (KL up to ~0.01 at budget 1.0, greedy tokens still equal), full rank is not.
    figures = run_logits(smollm2_model, prompts, configs, max_new_tokens=NEW_TOKENS, min_prompt=256,
                         offload_args=["--kv-offload-shadowkv-rank", "192"], log_dir=server_log_dir, parallel=2)

    greedy_row, gold_row = figures["stock"]["rows"]
    assert greedy_row["checked_steps"] == NEW_TOKENS
    assert greedy_row["dump_vs_sglang_logprob_max_abs"] < 1e-5
    assert greedy_row["dump_argmax_is_greedy"] == 1.0
    # forced along the gold answer, the model's own argmax leaves it somewhere: the dump is not the
    # forced distribution (whose argmax is always the forced token)
    assert gold_row["hit_count"] < gold_row["steps"]
    assert gold_row["checked_steps"] >= 1 and gold_row["dump_vs_sglang_logprob_max_abs"] < 1e-5

    assert [c["method"] for c in figures["configs"]] == list(EXACT_METHODS)
    for c in figures["configs"]:
        assert c["offload_stats"]["requests_offloaded"] >= 2 * len(prompts), c["label"]
        assert c["offload_stats"]["decode_steps"] >= 2 * len(prompts) * (NEW_TOKENS - 1), c["label"]
        assert c["greedy_agree"] == 1.0, (c["label"], [r["first_divergence"] for r in c["rows"]])
        assert c["tf_top1"] == 1.0, c["label"]
        assert c["tf_kl_max"] < 1e-6, (c["label"], c["tf_kl_max"])
        assert c["prefill_kl_max"] < 1e-6, c["label"]


def test_gate_machinery_stock_vs_yakv(smollm2_model, mini_records, tmp_path, server_log_dir):
    """stock and yakv (default budget) on three mini samples: every sample offloaded, the reports
    written, and the verdict the one the scores imply (not a particular verdict)."""
    dataset = tmp_path / "three.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in mini_records))
    work = tmp_path / "work"
    figures = run_text2json(str(smollm2_model), str(dataset), work, ["yakv"], limit=3, max_tokens=16,
                            log_dir=server_log_dir)

    yakv = figures["configs"]["yakv"]
    assert yakv["offload_stats"]["requests_offloaded"] >= 3
    assert (work / "gate_yakv.md").read_text().strip()
    report = json.loads((work / "gate_yakv.json").read_text())
    scores = {label: json.loads((work / f"score_{label}.json").read_text())["figures"]["paper"]
              for label in ("stock", "yakv")}
    checks = {c["check"]: c for c in report["checks"]}
    overall = checks["overall"]
    assert overall["baseline"] == pytest.approx(scores["stock"]["score"], abs=1e-3)
    assert overall["candidate"] == pytest.approx(scores["yakv"]["score"], abs=1e-3)
    for domain, stock_domain in scores["stock"]["per_domain"].items():
        check = checks[f"domain {domain}"]
        assert check["baseline"] == pytest.approx(stock_domain["score"], abs=1e-3)
        assert check["candidate"] == pytest.approx(scores["yakv"]["per_domain"][domain]["score"], abs=1e-3)
    for c in report["checks"]:
        assert c["passed"] == (c["baseline"] - c["candidate"] <= c["max_drop"]), c
    assert report["passed"] == all(c["passed"] for c in report["checks"])
    assert yakv["gate"]["passed"] == report["passed"]
    assert yakv["gate"]["exit_code"] == (0 if report["passed"] else 1)
    assert report["num_compared"] == 3
