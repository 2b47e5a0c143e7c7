"""The fidelity benchmark: a reduced run end to end (CLI, JSON with provenance) and its invariants:
oracle recall 1, no selector above it, budget >= context exact. About 40 s on 2 cores."""

import json
import math

import pytest
import torch

from sglang_kv.bench.__main__ import main
from sglang_kv.bench.fidelity import DEFAULT_SELECTORS, Variant, budget_tokens, evaluate
from sglang_kv.bench.shapes import ModelSpec
from sglang_kv.bench.synthetic import LayerData, SyntheticSpec, make_layer
from sglang_kv.select import ModelShape, RopeParams
from sglang_kv.select.rope import apply_rope

SMALL = ModelSpec(ModelShape(8, 2, 64), 4, RopeParams(theta=500000.0))


def _random_layer(model: ModelSpec, num_tokens: int, num_queries: int, seed: int, generated: int = 0) -> LayerData:
    g = torch.Generator().manual_seed(seed)
    hq, hkv, d = model.shape
    k = apply_rope(torch.randn(num_tokens, hkv, d, generator=g) * 2, torch.arange(num_tokens), model.rope)
    v = torch.randn(num_tokens, hkv, d, generator=g)
    q_pos = torch.arange(num_tokens - num_queries, num_tokens) if generated else torch.full((num_queries,), num_tokens)
    q = torch.randn(num_queries, hq, d, generator=g) * 2
    return LayerData(k.bfloat16(), v.bfloat16(), torch.arange(num_tokens), q.bfloat16(), q_pos, d ** -0.5,
                     generated=generated)


def _check_invariants(figures, variants, budgets):
    rows = figures["rows"]
    assert [(r["selector"], r["budget"]) for r in rows] == [(v, b) for v in variants for b in budgets]
    for r in rows:
        assert 0 <= r["recall"] <= 1 + 1e-6, r
        assert 0 <= r["mass"] <= 1 + 1e-6 and r["out_err"] >= 0 and r["out_err_exact_kv"] >= 0
        assert r["gpu_bytes_per_token"] > 0 and r["host_bytes_per_token"] >= 0
        assert r["pcie_bytes_per_step_layer"] <= r["pcie_bound_per_step_layer"]
        if r["selector"] == "oracle":
            assert r["recall"] == pytest.approx(1.0, abs=1e-6) and r["recall_min"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["synthetic", "random", "random_generated"])
def test_no_selector_beats_the_oracle(kind):
    variants = ["oracle", "yakv", "yakv:landmark_residual=4", "shadowkv:shadowkv_outliers=4", "quest"]
    budgets = [0.03, 0.1]
    if kind == "synthetic":
        layers = [make_layer(SyntheticSpec(num_tokens=1200, num_queries=3, seed=5), SMALL, i) for i in range(2)]
    else:
        layers = [_random_layer(SMALL, 700, 3, seed=i, generated=3 if kind == "random_generated" else 0) for i in range(2)]
    figures = evaluate(layers, SMALL, [Variant.parse(v) for v in variants], budgets, log=lambda m: None)
    _check_invariants(figures, variants, budgets)  # every recall <= 1 == the oracle's, query by query
    assert (figures["exact_attention"] is not None) == (kind == "synthetic")


def test_budget_covering_the_context_is_exact():
    variants = ["oracle", "yakv:kv_bits=16", "shadowkv:shadowkv_rank=128", "quest"]
    layers = [_random_layer(SMALL, 300, 2, seed=9, generated=2)]
    figures = evaluate(layers, SMALL, [Variant.parse(v) for v in variants], [1000], log=lambda m: None)
    for r in figures["rows"]:
        assert r["recall"] == pytest.approx(1.0) and r["mass"] == pytest.approx(1.0, abs=1e-5)
        assert r["out_err_exact_kv"] < 1e-5
        assert r["out_err"] < 1e-2, r  # bf16 factors (shadowkv: rank = 2 heads x 64 channels) and windows


def test_budget_tokens_follows_offload_config():
    from sglang_kv.config import OffloadConfig

    for budget, n in ((0.03125, 32768), (0.015625, 1000), (1.0, 77), (300, 5000)):
        assert budget_tokens(budget, n) == OffloadConfig(method="oracle", budget=budget).budget_tokens(n)


def test_variant_parsing():
    v = Variant.parse("yakv:key_rope=pre,landmark_residual=4")
    assert (v.method, v.config.landmark_residual, v.options) == ("yakv", 4, {"key_rope": "pre"})
    assert Variant.parse("shadowkv").config.local == 32  # the method's own defaults
    with pytest.raises(ValueError, match="key=value"):
        Variant.parse("yakv:oops")


def test_reduced_cli_run_writes_a_result_with_provenance(tmp_path, capsys):
    out = tmp_path / "fidelity_small.json"
    budgets = ["0.015625", "0.0625"]
    main(["fidelity", "--model-shape", "smollm2-135m", "--tokens", "2048", "--layers", "1", "--queries", "3",
          "--budgets", *budgets, "--out", str(out)])
    record = json.loads(out.read_text())
    for key in ("command", "commit", "machine", "date", "workload", "figures"):
        assert record[key]
    assert record["workload"]["synthetic"]["num_tokens"] == 2048
    assert record["workload"]["shape"] == {"num_q_heads": 9, "num_kv_heads": 3, "head_dim": 64}
    _check_invariants(record["figures"], list(DEFAULT_SELECTORS), [float(b) for b in budgets])
    rows = {(r["selector"], r["budget"]): r for r in record["figures"]["rows"]}
    assert rows[("yakv", 0.015625)]["budget_tokens"] == math.ceil(0.015625 * 2048)
    assert rows[("shadowkv", 0.015625)]["local"] == 32
    # SmolLM2's 3 x 64 = 192 channels: yakv falls back to per-head payload groups, 2 x 3 x 32 B of
    # codes on the host (the scales stay on the GPU)
    assert rows[("yakv", 0.015625)]["host_bytes_per_token"] == pytest.approx(192 * (2048 - 64) / 2048)
    assert "| yakv |" in capsys.readouterr().out
