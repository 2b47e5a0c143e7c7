"""Shared fixtures for the text2json tests: small builds are made once per session."""

from __future__ import annotations

import pytest

from text2json.build import PRESETS, build_records
from text2json.tokenizer import load_counter
from text2json.writer import write_build


@pytest.fixture(scope="session")
def qwen_counter():
    return load_counter("qwen3")


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory, qwen_counter):
    """Eight mini-preset samples (2K-7K tokens) written to a folder; returns (folder, records)."""
    out = tmp_path_factory.mktemp("mini_build")
    records = build_records(PRESETS["mini"], "mini", 7, qwen_counter, num_samples=8)
    write_build(out, records, PRESETS["mini"], "mini", 7, qwen_counter)
    return out, records


@pytest.fixture(scope="session")
def full_sample_build(tmp_path_factory, qwen_counter):
    """Four full-preset samples (10K+ tokens) written to a folder; returns (folder, records)."""
    out = tmp_path_factory.mktemp("full_sample_build")
    records = build_records(PRESETS["full"], "full", 0, qwen_counter, num_samples=4)
    write_build(out, records, PRESETS["full"], "full", 0, qwen_counter)
    return out, records
