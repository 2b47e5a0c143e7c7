"""Unit tests of the logit-fidelity pieces that need no server (a few seconds)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sglang_kv.bench.logits import (ForcedContinuation, compare_forced, compare_greedy, first_difference,
                                    kl_per_step, pool_rows, read_dump, select_records, stock_check)


def test_forced_continuation_dumps_the_models_logprobs_and_forces_the_token(tmp_path):
    torch.manual_seed(0)
    vocab = 11
    logits = torch.randn(2, vocab)
    original = logits.clone()
    dumps = [tmp_path / "a.bin", tmp_path / "b.bin"]
    params = [{"__req__": SimpleNamespace(output_ids=[5, 6]), "continuation": [1, 2, 3, 4], "dump": str(dumps[0])},
              {"__req__": SimpleNamespace(output_ids=[]), "continuation": [7, 8], "dump": str(dumps[1])}]
    out = ForcedContinuation()(logits, params)
    # step 2 of the first request forces continuation[2], step 0 of the second continuation[0]
    assert out[0].argmax() == 3 and out[1].argmax() == 7
    assert torch.isinf(out[0]).sum() == vocab - 1
    raw = np.fromfile(dumps[0], dtype=np.uint8)
    assert raw.size == 4 + 4 * vocab and raw[:4].view(np.int32)[0] == 2  # one row, step 2
    torch.testing.assert_close(torch.from_numpy(raw[4:].copy().view(np.float32)),
                               torch.log_softmax(original[0], -1), rtol=0, atol=0)
    second = read_dump(dumps[1], 1, vocab)
    torch.testing.assert_close(second[0], torch.log_softmax(original[1], -1), rtol=0, atol=0)


def test_forcing_past_the_end_repeats_the_last_token(tmp_path):
    logits = torch.zeros(1, 5)
    params = [{"__req__": SimpleNamespace(output_ids=[0, 0, 0]), "continuation": [2, 4], "dump": str(tmp_path / "d")}]
    assert ForcedContinuation()(logits, params)[0].argmax() == 4


def _write_rows(path, steps, vocab):
    with open(path, "wb") as f:
        for s in steps:
            f.write(np.int32(s).tobytes())
            f.write(np.full(vocab, -float(s) - 1, dtype=np.float32).tobytes())


def test_read_dump_keeps_the_last_row_of_a_repeated_step(tmp_path):
    # a chunked prefill calls the sampler on every chunk: step 0 twice, the last one counts
    path = tmp_path / "d.bin"
    with open(path, "wb") as f:
        for step, value in ((0, -9.0), (0, -1.0), (1, -2.0)):
            f.write(np.int32(step).tobytes())
            f.write(np.full(4, value, dtype=np.float32).tobytes())
    lp = read_dump(path, 2, 4)
    assert lp[0].tolist() == [-1.0] * 4 and lp[1].tolist() == [-2.0] * 4


def test_read_dump_rejects_missing_or_backward_steps(tmp_path):
    path = tmp_path / "d.bin"
    _write_rows(path, [0, 2], 3)
    with pytest.raises(ValueError, match="no log-probs for output steps \\[1\\]"):
        read_dump(path, 3, 3)
    _write_rows(path, [0, 1, 0], 3)
    with pytest.raises(ValueError, match="backwards"):
        read_dump(path, 2, 3)
    with pytest.raises(ValueError, match="whole number"):
        read_dump(path, 2, 4)


def test_kl_is_zero_for_equal_distributions_and_matches_the_definition():
    torch.manual_seed(1)
    p = torch.log_softmax(torch.randn(3, 50), -1)
    q = torch.log_softmax(torch.randn(3, 50), -1)
    assert kl_per_step(p, p).abs().max() == 0
    expected = (p.exp() * (p - q)).sum(-1).double()
    torch.testing.assert_close(kl_per_step(p, q), expected, rtol=1e-5, atol=1e-6)
    # a token stock gives no mass to (p = 0, log p = -inf) contributes nothing
    p_inf = p.clone()
    p_inf[:, 0] = -float("inf")
    assert torch.isfinite(kl_per_step(p_inf, q)).all()


def test_compare_forced_skips_the_prefill_step_and_counts_top1():
    stock = torch.log_softmax(torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]), -1)
    other = stock.clone()
    other[2] = torch.log_softmax(torch.tensor([5.0, 0.0, 0.0]), -1)  # step 2 disagrees
    figs = compare_forced(stock, other, [1, 0, 2])
    assert figs["steps"] == 2 and figs["top1_count"] == 1 and figs["hit_count"] == 1
    assert figs["prefill_kl"] == 0 and figs["kl_max"] > 1
    pooled = pool_rows([{**figs, **compare_greedy([1, 2, 3], [1, 2, 4])}])
    assert pooled["tf_top1"] == 0.5 and pooled["greedy_agree"] == pytest.approx(2 / 3)
    assert pooled["greedy_first_divergence_min"] == 2


def test_first_difference_and_greedy_agreement():
    assert first_difference([1, 2, 3], [1, 2, 3]) == 3
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert compare_greedy([1, 2, 3, 4], [1, 2, 0, 4]) == {"agree": 0.75, "first_divergence": 2}
    with pytest.raises(ValueError):
        compare_greedy([1], [1, 2])


def test_stock_check_compares_only_the_steps_that_share_the_greedy_context():
    lp = torch.log_softmax(torch.tensor([[0.0, 3.0], [3.0, 0.0], [0.0, 3.0]]), -1)
    g = {"output_ids": [1, 0, 1], "logprobs": lp.max(-1).values.tolist()}
    check = stock_check(g, [1, 1, 0], lp)  # the forced tokens leave the greedy path at step 1
    assert check["checked_steps"] == 2  # steps 0 and 1 still see the greedy context
    assert check["dump_vs_sglang_logprob_max_abs"] == 0 and check["dump_argmax_is_greedy"] == 1
    g_bad = {**g, "logprobs": [x - 0.5 for x in g["logprobs"]]}
    assert math.isclose(stock_check(g_bad, [1, 0, 1], lp)["dump_vs_sglang_logprob_max_abs"], 0.5, rel_tol=1e-6)


def test_select_records_spreads_lengths_and_domains():
    records = [{"id": f"{d}-{i}", "domain": d, "prompt_tokens": 1000 + 250 * i} for d in ("a", "b") for i in range(20)]
    chosen = select_records(records, 4, 2000, 5000)
    assert [r["domain"] for r in chosen] == ["a", "b", "a", "b"]
    lengths = [r["prompt_tokens"] for r in chosen]
    assert lengths == sorted(lengths) and 2000 <= lengths[0] and lengths[-1] <= 5000
    assert len({r["id"] for r in chosen}) == 4
    with pytest.raises(ValueError, match="need 50"):
        select_records(records, 50, 2000, 5000)


def test_run_logits_rejects_a_parallelism_below_one():
    from sglang_kv.bench.logits import run_logits

    with pytest.raises(ValueError, match="^--parallel: must be >= 1"):
        run_logits("unused", [], [], parallel=0)


def test_choose_records_takes_the_ids_given_and_names_missing_ones():
    from sglang_kv.bench.logits import choose_records

    records = [{"id": f"r{i}", "domain": "d", "prompt_tokens": 2000 + i} for i in range(5)]
    assert [r["id"] for r in choose_records(records, ["r3", "r1"], 9, 0, 0)] == ["r3", "r1"]
    assert choose_records(records, None, 2, 2000, 2004) == select_records(records, 2, 2000, 2004)
    with pytest.raises(ValueError, match=r"--ids: not in the dataset: \['r9'\]"):
        choose_records(records, ["r1", "r9"], 2, 2000, 2004)
