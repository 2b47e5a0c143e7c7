"""`paper` mode: one test per published rule and quirk, on hand-made cases.

Gold for most tests: two entities, each with two attributes.
"""

from __future__ import annotations

import json

import pytest

from text2json.score import score_rows, score_sample, score_sample_detail

GOLD = json.dumps([
    {"name": "Veltron AX-4200", "price": "$1,249.00", "weight": "2.35 kg"},
    {"name": "Korvik Pulse 310", "price": "$899.00", "weight": "1.10 kg"},
])
A = {"name": "Veltron AX-4200", "price": "$1,249.00", "weight": "2.35 kg"}
B = {"name": "Korvik Pulse 310", "price": "$899.00", "weight": "1.10 kg"}


def pred(*items, before="", after="") -> str:
    return before + json.dumps(list(items)) + after


def test_perfect_prediction_scores_one():
    assert score_sample(pred(A, B), GOLD) == 1.0
    assert score_sample(pred(B, A), GOLD) == 1.0  # order does not matter


# Rule 1: U+2019 becomes an apostrophe.

def test_right_quote_in_gold_is_replaced():
    gold = json.dumps([{"name": "O\u2019Brien Foods Group", "ceo": "Ada O\u2019Connell", "founded": "1987"}])
    assert score_sample(pred({"name": "O'Brien Foods Group", "ceo": "Ada O'Connell", "founded": "1987"}), gold) == 1.0


def test_right_quote_in_prediction_is_replaced_too():
    gold = json.dumps([{"name": "O\u2019Brien Foods Group", "ceo": "Ada O'Connell", "founded": "1987"}])
    p = '[{"name": "O\u2019Brien Foods Group", "ceo": "Ada O\u2019Connell", "founded": "1987"}]'
    assert score_sample(p, gold) == 1.0


def test_other_quote_marks_are_not_replaced():
    gold = json.dumps([{"name": "O'Brien Foods Group", "ceo": "Ada", "founded": "1987"}])
    p = pred({"name": "O\u2018Brien Foods Group", "ceo": "Ada", "founded": "1987"})
    assert score_sample(p, gold) == 0.0  # a false entity: 0 credit / (1 gold + 1 false)
    assert score_sample(p, gold, mode="robust") == 1.0


# Rule 2: exactly one "[" and one "]", "[" first; the text between them must parse as a JSON list.

def test_no_brackets_scores_zero():
    assert score_sample(json.dumps(A), GOLD) == 0.0


def test_two_opening_brackets_score_zero():
    assert score_sample(pred(A, B, before="Step [1]: "), GOLD) == 0.0


def test_two_closing_brackets_score_zero():
    assert score_sample(pred(A, B, after=" ]"), GOLD) == 0.0


def test_closing_bracket_before_opening_scores_zero():
    assert score_sample('] {"name": "Veltron AX-4200"} [', GOLD) == 0.0


def test_text_around_the_array_is_ignored():
    assert score_sample(pred(A, B, before="Here is the list:\n```json\n", after="\n```\nDone."), GOLD) == 1.0


def test_parse_failure_scores_zero():
    assert score_sample("[{'name': 'Veltron AX-4200', 'price': '$1,249.00', 'weight': '2.35 kg'}]", GOLD) == 0.0
    assert score_sample('[{"name": "Veltron AX-4200",}]', GOLD) == 0.0  # trailing comma
    detail = score_sample_detail("no list here", GOLD)
    assert not detail.parsed


def test_bracket_inside_a_string_value_zeroes_the_sample():  # quirk
    assert score_sample(pred(A, {**B, "weight": "1.10 kg [measured]"}), GOLD) == 0.0


def test_nested_list_value_zeroes_the_sample():
    assert score_sample(pred(A, {**B, "tags": ["x"]}), GOLD) == 0.0


# Rule 3: union and credits.

def test_missing_name_adds_a_false_entity():
    assert score_sample(pred(A, {"price": "$899.00", "weight": "1.10 kg"}), GOLD) == pytest.approx(1 / 3)
    # credit 1 (A) / union (2 gold + 1 false)


def test_non_string_name_adds_a_false_entity():
    assert score_sample(pred(A, {"name": 310, "price": "$899.00", "weight": "1.10 kg"}), GOLD) == pytest.approx(1 / 3)


def test_unknown_name_adds_a_false_entity():
    assert score_sample(pred(A, B, {"name": "Veltron AX-4210", "price": "$1.00", "weight": "1 kg"}), GOLD) == \
        pytest.approx(2 / 3)  # 2 / (2 + 1)


def test_name_match_is_case_sensitive():
    assert score_sample(pred(A, {**B, "name": "korvik pulse 310"}), GOLD) == pytest.approx(1 / 3)


def test_repeated_name_counts_as_a_false_entity():
    assert score_sample(pred(A, A), GOLD) == pytest.approx(1 / 3)  # 1 / (2 + 1): B unmatched, second A false


def test_missing_attribute_costs_half():
    assert score_sample(pred(A, {"name": B["name"], "price": B["price"]}), GOLD) == pytest.approx(1.5 / 2)


def test_null_attribute_costs_half():
    assert score_sample(pred(A, {**B, "price": None, "weight": None}), GOLD) == pytest.approx(1.0 / 2)
    # 1 + (1 - 0.5 - 0.5) over 2


def test_unequal_attribute_costs_a_quarter():
    assert score_sample(pred(A, {**B, "price": "$899"}), GOLD) == pytest.approx(1.75 / 2)
    assert score_sample(pred(A, {**B, "weight": "1.10 KG"}), GOLD) == pytest.approx(1.75 / 2)  # case-sensitive
    assert score_sample(pred(A, {**B, "weight": " 1.10 kg"}), GOLD) == pytest.approx(1.75 / 2)  # no trimming


def test_integers_compare_as_strings():
    gold = json.dumps([{"name": "Halvorsen Logistics Group", "founded": "1987", "employees": "4,200"}])
    assert score_sample(pred({"name": "Halvorsen Logistics Group", "founded": 1987, "employees": 4200}), gold) == 0.75
    # founded 1987 == "1987"; employees "4200" != "4,200" costs 0.25


def test_extra_keys_are_ignored():
    assert score_sample(pred({**A, "color": "red"}, {**B, "id": 2}), GOLD) == 1.0


def test_non_object_element_counts_as_a_false_entity():  # the published description is silent; our choice
    assert score_sample(pred(A, B, "Korvik"), GOLD) == pytest.approx(2 / 3)


def test_matched_gold_is_removed_before_later_objects():
    # The unknown object before A does not consume anything; A still matches.
    assert score_sample(pred({"name": "nobody"}, A), GOLD) == pytest.approx(1 / 3)  # 1 / (2 + 1)


# Rule 4: sample score = credits / union; final = 100 x mean.

def test_sample_score_is_credits_over_union():
    p = pred({**A, "price": "$1,249"}, {"name": B["name"]}, {"name": "X"})
    assert score_sample(p, GOLD) == pytest.approx((0.75 + 0.0) / 3)


def test_final_score_is_100_times_the_mean():
    rows = [{"id": "a", "answer": GOLD, "prediction": pred(A, B)},
            {"id": "b", "answer": GOLD, "prediction": pred(A)},
            {"id": "c", "answer": GOLD, "prediction": "nothing"}]
    report = score_rows(rows, "paper")
    assert report["score"] == pytest.approx(100 * (1 + 0.5 + 0) / 3, abs=1e-3)
    assert report["parse_failure_rate"] == pytest.approx(1 / 3, abs=1e-4)


# Quirks: values the published code raises on. We score the sample 0 and flag it.

@pytest.mark.parametrize("value", [2.35, True, {"kg": "2.35"}])
def test_float_bool_or_object_value_would_raise(value):
    detail = score_sample_detail(pred({**A, "weight": value}, B), GOLD)
    assert detail.raised and detail.score == 0.0
    assert score_rows([{"answer": GOLD, "prediction": pred({**A, "weight": value}, B)}])["published_scorer_raises"] == 1


def test_list_value_would_raise_but_already_breaks_the_bracket_rule():
    # A list value brings a second "[": the bracket rule zeroes the sample before any value is read.
    detail = score_sample_detail(pred({**A, "weight": ["2.35 kg"]}), GOLD)
    assert detail.score == 0.0 and not detail.parsed


def test_duplicate_gold_names_are_rejected():
    gold = json.dumps([A, A])
    with pytest.raises(ValueError, match="twice"):
        score_sample(pred(A), gold)


def test_empty_gold_and_empty_prediction_score_one():
    assert score_sample("[]", "[]") == 1.0
    assert score_sample(pred(A), "[]") == 0.0


def test_triple_metrics():
    detail = score_sample_detail(pred({**A, "price": "$1,249"}), GOLD)
    # gold triples: 6 (2 names + 4 values); predicted: A name, A weight, A price (wrong) -> 3, 2 shared
    assert detail.triple_iou == pytest.approx(2 / 7)
    assert detail.triple_f1 == pytest.approx(2 * 2 / (3 + 6))


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        score_sample("[]", GOLD, mode="lenient")
