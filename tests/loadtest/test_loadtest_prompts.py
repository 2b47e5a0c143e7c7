"""Prompt sources: text2json records and bench_serving-style synthetic lengths."""

from __future__ import annotations

import json
import random

import pytest

from loadtest.prompts import DatasetPrompts, RandomTextPrompts, RandomTokenPrompts, load_problems, random_len


def test_load_problems_reads_the_problem_field(tmp_path):
    path = tmp_path / "t2j.jsonl"  # the published format: problem + answer, nothing else required
    path.write_text("\n".join(json.dumps({"problem": f"p{i}", "answer": "[]"}) for i in range(3)) + "\n\n")
    assert load_problems(path) == ["p0", "p1", "p2"]
    (tmp_path / "build").mkdir()  # a text2json build folder holds test.jsonl
    (tmp_path / "build" / "test.jsonl").write_text(path.read_text())
    assert load_problems(tmp_path / "build") == ["p0", "p1", "p2"]
    path.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match="t2j.jsonl:1: .*'problem'"):
        load_problems(path)
    path.write_text("")
    with pytest.raises(ValueError, match="no records"):
        load_problems(path)


def test_dataset_prompts_visit_every_problem_once_per_pass():
    source = DatasetPrompts(["a", "b", "c"], max_tokens=1024, seed=3)
    first, second = [source() for _ in range(3)], [source() for _ in range(3)]
    assert sorted(p.text for p in first) == sorted(p.text for p in second) == ["a", "b", "c"]
    assert all(p.max_tokens == 1024 and not p.ignore_eos and p.input_ids is None for p in first)
    assert DatasetPrompts(["a", "b", "c"], 1024, seed=3)() == first[0]  # seeded


def test_random_len_is_bench_serving_range():
    rng = random.Random(0)
    lens = {random_len(rng, 10, 0.5) for _ in range(500)}
    assert lens == set(range(5, 11))  # [max(int(10 * 0.5), 1), 10]
    assert {random_len(rng, 10, 1.0) for _ in range(20)} == {10}
    assert {random_len(rng, 3, 0.0) for _ in range(200)} == {1, 2, 3}


def test_random_sources_follow_the_lengths():
    text = RandomTextPrompts(40, 8, 1.0, seed=1)()
    assert len(text.text.split()) == 40 and text.max_tokens == 8 and text.ignore_eos
    ids = RandomTokenPrompts(50, 6, 0.5, seed=1, vocab_size=256)
    prompts = [ids() for _ in range(100)]
    assert all(25 <= len(p.input_ids) <= 50 and 3 <= p.max_tokens <= 6 for p in prompts)
    assert all(10 <= i < 256 for p in prompts for i in p.input_ids)
    assert RandomTokenPrompts(50, 6, 0.5, seed=1, vocab_size=256)() == prompts[0]  # seeded


def test_random_sources_reject_bad_arguments():
    with pytest.raises(ValueError, match="range_ratio"):
        RandomTextPrompts(10, 10, 1.5, seed=0)
    with pytest.raises(ValueError, match="input_len and output_len"):
        RandomTextPrompts(0, 10, 1.0, seed=0)
    with pytest.raises(ValueError, match="first_id < vocab_size"):
        RandomTokenPrompts(10, 10, 1.0, seed=0, vocab_size=5)
