"""The full build (500 samples) against its committed manifest, data/text2json/full/manifest.json.

The quick tests check the acceptance criteria on the manifest's per-sample records and rebuild a few
samples (each depends only on the variant, its seed, its planned length and the tokenizer) to show
the manifest still describes what the code builds. test_full_build_is_byte_identical rebuilds all
500 samples (about 2 minutes on 2 cores) and compares every sha256.

After a deliberate change to the generated text, bump GENERATOR_VERSION and refresh the manifest:
    text2json build --preset full --out /tmp/t2j-full && cp /tmp/t2j-full/manifest.json data/text2json/full/
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

import pytest

from text2json.build import GENERATOR_VERSION, PRESETS, build_records, check_record, plan_samples, record_line, \
    sha256_hex
from text2json.domains import DOMAIN_NAMES
from text2json.writer import compare_manifests, write_build

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "data" / "text2json" / "full" / "manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text())


def test_manifest_describes_the_current_generator(manifest, qwen_counter):
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["preset"] == "full" and manifest["seed"] == 0
    assert manifest["args"] == json.loads(json.dumps(asdict(PRESETS["full"].args)))
    assert manifest["tokenizer"] == {"name": "qwen3", "fingerprint": qwen_counter.fingerprint}


def test_full_build_meets_the_published_shape(manifest):
    samples = manifest["samples"]
    tokens = [s["num_tokens"] for s in samples]
    assert len(samples) == manifest["num_samples"] == 500
    counts = {d: sum(s["domain"] == d for s in samples) for d in DOMAIN_NAMES}
    assert all(n >= 100 for n in counts.values()), counts
    assert 19_000 <= statistics.fmean(tokens) <= 21_500
    assert min(tokens) >= 10_000 and max(tokens) <= 63_500
    assert all(s["num_tokens"] <= s["target_tokens"] for s in samples)
    assert all(s["num_entities"] >= 10 for s in samples)  # tens of gold entities
    assert manifest["stats"]["answer_tokens_max"] <= 1024
    assert len({s["id"] for s in samples}) == 500


def test_rebuilt_samples_match_the_manifest(manifest, qwen_counter):
    samples = manifest["samples"]
    longest = max(range(500), key=lambda i: samples[i]["num_tokens"])
    shortest = min(range(500), key=lambda i: samples[i]["num_tokens"])
    indices = [0, 1, 2, 3, shortest, longest]
    plans = plan_samples(PRESETS["full"].args, manifest["seed"])
    assert [p.target_tokens for p in plans] == [s["target_tokens"] for s in samples]
    records = build_records(PRESETS["full"], "full", manifest["seed"], qwen_counter, indices=indices)
    for i, record in zip(indices, records):
        check_record(record, PRESETS["full"].args)  # verbatim gold, unique names, length bounds
        assert sha256_hex(record_line(record).encode()) == samples[i]["sha256"], record["id"]


def test_full_build_is_byte_identical(manifest, qwen_counter, tmp_path):
    """About 2 minutes: all 500 samples, every file. Parquet is compared only under the pyarrow
    version that wrote the manifest (its bytes embed that version)."""
    import pyarrow

    records = build_records(PRESETS["full"], "full", manifest["seed"], qwen_counter)
    built = write_build(tmp_path, records, PRESETS["full"], "full", manifest["seed"], qwen_counter)
    same_writer = manifest["writer"]["pyarrow"] == pyarrow.__version__
    assert compare_manifests(built, manifest, ignore_parquet=not same_writer) == []
