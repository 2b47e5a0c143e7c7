"""`robust` mode: lenient extraction and normalization; never raises on any prediction text."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from text2json.score import score_rows, score_sample, score_sample_detail

GOLD = json.dumps([
    {"name": "Veltron AX-4200", "price": "$1,249.00", "weight": "2.35 kg"},
    {"name": "Amara O\u2019Brien", "price": "$899.00", "weight": "1.10 kg"},
])
A = {"name": "Veltron AX-4200", "price": "$1,249.00", "weight": "2.35 kg"}
B = {"name": "Amara O'Brien", "price": "$899.00", "weight": "1.10 kg"}


def robust(p: str) -> float:
    return score_sample(p, GOLD, mode="robust")


def test_stray_brackets_before_the_array():
    p = "Note [1]: see below [sic].\n" + json.dumps([A, B]) + "\n[end]"
    assert robust(p) == 1.0
    assert score_sample(p, GOLD) == 0.0  # paper mode zeroes it


def test_brackets_inside_values():
    assert robust(json.dumps([A, {**B, "weight": "1.10 kg"}, {"name": "X [v2]"}])) == pytest.approx(2 / 3)


def test_array_inside_an_object_and_think_block():
    p = "<think>maybe [A] or [B]</think>" + json.dumps({"products": [A, B]})
    assert robust(p) == 1.0


def test_trailing_commas():
    assert robust('[{"name": "Veltron AX-4200", "price": "$1,249.00", "weight": "2.35 kg",},]') == 0.5


def test_truncated_array_keeps_complete_objects():
    p = json.dumps([A, B])[:-30]
    detail = score_sample_detail(p, GOLD, mode="robust")
    assert detail.recovered and detail.score == 0.5  # A counted, B cut off
    assert score_sample(p, GOLD) == 0.0


@pytest.mark.parametrize("variant", [
    {"price": 1249, "weight": "2.35 kg"},  # number type; "$" missing -> still unequal
    {"price": "$1249", "weight": "2.35  kg"},  # thousands separator, whitespace
    {"price": "$1,249", "weight": "2.350 kg"},  # trailing zeros
    {"Price": "$1,249.00", "WEIGHT": "\uff12.35 kg"},  # key case, full-width digit (NFKC)
])
def test_normalization(variant):
    got = robust(json.dumps([{"name": "Veltron AX-4200", **variant}, B]))
    expected = (0.75 + 1) / 2 if variant.get("price") == 1249 else 1.0
    assert got == pytest.approx(expected)


def test_any_value_type_is_accepted():
    gold = json.dumps([{"name": "Film", "runtime": "118", "rating": "true"}])
    assert score_sample(json.dumps([{"name": "Film", "runtime": 118.0, "rating": True}]), gold, mode="robust") == 1.0


def test_quotes_and_dashes_are_normalized():
    gold = json.dumps([{"name": "Anna Ko", "phone": "555-013-4421", "email": "a.ko@x.org"}])
    p = json.dumps([{"name": "Anna Ko", "phone": "555\u2013013\u20134421", "email": " a.ko@x.org "}])
    assert score_sample(p, gold, mode="robust") == 1.0


def test_key_spelling_is_normalized():
    gold = json.dumps([{"name": "Kite", "battery_life": "11 hours", "pump_pressure": "15 bar"}])
    p = json.dumps([{"Name": "Kite", "Battery Life": "11 hours", "pump-pressure": "15 bar"}])
    assert score_sample(p, gold, mode="robust") == 1.0


def test_report_has_both_failure_rates():
    rows = [{"id": "a", "answer": GOLD, "prediction": json.dumps([A, B]), "finish_reason": "stop"},
            {"id": "b", "answer": GOLD, "prediction": json.dumps([A, B])[:-30], "finish_reason": "length"},
            {"id": "c", "answer": GOLD, "prediction": "I cannot help", "finish_reason": "stop"}]
    report = score_rows(rows, "robust")
    assert report["parse_failure_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["truncation_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["recovered_truncated"] == 1
    assert report["score"] == pytest.approx(100 * 1.5 / 3, abs=1e-3)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_fragments = st.sampled_from(["[", "]", "{", "}", ",", ":", '"', "'", "\\", "<think>", "</think>", "name",
                              '"name"', "\u2019", "\u00a0", "\n", "NaN", "1e999", "```json"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=30) | _fragments, max_size=40).map("".join))
def test_robust_never_raises_on_text(text):
    for mode in ("robust", "paper"):
        assert 0.0 <= score_sample(text, GOLD, mode=mode) <= 1.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_values, st.text(max_size=20), st.text(max_size=20), st.integers(0, 40))
def test_robust_never_raises_on_json_like_output(value, before, after, cut):
    text = before + json.dumps(value, allow_nan=True) + after
    for p in (text, text[:-cut] if cut else text, "[" * cut + text):
        for mode in ("robust", "paper"):
            score = score_sample(p, GOLD, mode=mode)
            assert 0.0 <= score <= 1.0


def test_robust_bounded_on_deep_nesting():
    assert robust("[" * 100_000 + "]" * 100_000) == 0.0
    assert robust("[" * 5000 + json.dumps([A, B])) == 1.0
