"""Loaders: our builds and the published JSON-lines format."""

from __future__ import annotations

import json

import pytest

from text2json.cli import main
from text2json.data import duplicate_gold_names, load_published, load_records


def _published(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_our_build_folder_and_file(mini_build):
    out, records = mini_build
    assert load_records(out) == records
    assert load_records(out / "test.jsonl") == records


def test_published_format(tmp_path):
    answer = json.dumps([{"name": "A", "x": "1", "y": "2"}])
    path = _published(tmp_path / "text2json.jsonl", [
        {"problem": "Extract ... text one", "answer": answer},
        {"problem": "Extract ... text two", "answer": json.loads(answer), "task": "movies"},
    ])
    records = load_records(path)
    assert [r["id"] for r in records] == ["text2json-0000", "text2json-0001"]
    assert [r["domain"] for r in records] == ["unknown", "movies"]
    assert records[1]["answer"] == answer  # a parsed answer is turned back into its JSON text
    assert [r["index"] for r in records] == [0, 1]


def test_published_duplicates_are_dropped(tmp_path):
    dup = json.dumps([{"name": "A", "x": "1", "y": "2"}, {"name": "A", "x": "3", "y": "4"}])
    ok = json.dumps([{"name": "A", "x": "1", "y": "2"}])
    path = _published(tmp_path / "p.jsonl", [{"problem": "p0", "answer": ok}, {"problem": "p1", "answer": dup}])
    kept, dropped = load_published(path)
    assert [r["id"] for r in kept] == ["p-0000"] and dropped == ["p-0001"]
    assert duplicate_gold_names(dup) and not duplicate_gold_names(ok)


def test_bad_input_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x", "answer": "[]"}\n{"problem": "y"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_records(bad)
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing")


def test_stats_command(mini_build, tmp_path, capsys):
    out, records = mini_build
    js = tmp_path / "stats.json"
    assert main(["stats", str(out), "--bins", "4", "--json", str(js)]) == 0
    stats = json.loads(js.read_text())
    assert stats["overall"]["num_samples"] == len(records)
    assert sum(b["count"] for b in stats["histogram"]) == len(records)
    assert {d: s["num_samples"] for d, s in stats["per_domain"].items()} == {"medical": 2, "movies": 2,
                                                                            "organizations": 2, "products": 2}
    assert "num_tokens histogram" in capsys.readouterr().out


def test_stats_counts_published_files_with_a_tokenizer(tmp_path, capsys):
    path = _published(tmp_path / "p.jsonl", [{"problem": "word " * 50, "answer": "[]"}])
    assert main(["stats", str(path)]) == 2  # no num_tokens and no --tokenizer
    assert main(["stats", str(path), "--tokenizer", "qwen3"]) == 0
    assert "min=1087" in capsys.readouterr().out  # 50 words + 13 template tokens + 1024 budget


def test_score_bare_predictions_with_a_dataset(mini_build, tmp_path, capsys):
    out, records = mini_build
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": r["answer"]}) + "\n" for r in records))
    assert main(["score", str(preds)]) == 2  # no answers and no --dataset
    assert "pass --dataset" in capsys.readouterr().err
    js = tmp_path / "report.json"
    assert main(["score", str(preds), "--dataset", str(out), "--json", str(js)]) == 0
    figures = json.loads(js.read_text())["figures"]
    assert figures["score"] == 100.0 and figures["num_samples"] == len(records)
    assert set(figures["per_domain"]) == {r["domain"] for r in records}
