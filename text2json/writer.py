"""Write a build to a folder that ``datasets.load_dataset`` can read.

Layout (all bytes deterministic for a given build; no timestamps anywhere):

    test.jsonl              every record, index order (published format plus metadata columns)
    test.parquet            the same records (config "all", the default)
    <domain>/test.parquet   the records of one domain (configs "products", "medical", ...)
    README.md               dataset card: YAML header with one config per task, a single test split
    manifest.json           generator version, variant, seed, tokenizer, stats, sha256 per file and sample
    SHA256SUMS              ``sha256sum -c SHA256SUMS`` checks every other file, manifest included
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from text2json.build import Variant, build_manifest, record_line, sha256_hex
from text2json.domains import DOMAIN_NAMES

MANIFEST = "manifest.json"
JSONL = "test.jsonl"


def _parquet_bytes(records: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("problem", pa.string()), ("answer", pa.string()), ("id", pa.string()), ("index", pa.int64()),
        ("domain", pa.string()), ("attributes", pa.list_(pa.string())), ("num_entities", pa.int64()),
        ("num_distractors", pa.int64()), ("num_tokens", pa.int64()), ("prompt_tokens", pa.int64()),
        ("answer_tokens", pa.int64()), ("target_tokens", pa.int64()), ("seed", pa.int64()),
        ("preset", pa.string()),
    ])
    table = pa.Table.from_pylist(records, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def dataset_card(manifest: dict) -> str:
    """README.md with the YAML header ``datasets`` reads (configs, data_files, the test split)."""
    stats = manifest["stats"]
    configs = ["configs:", "- config_name: all", "  default: true", "  data_files:", "  - split: test",
               "    path: test.parquet"]
    for d in DOMAIN_NAMES:
        configs += [f"- config_name: {d}", "  data_files:", "  - split: test", f"    path: {d}/test.parquet"]
    rows = "\n".join(f"| {d} | {n} |" for d, n in stats["per_domain"].items())
    tok = manifest["tokenizer"]
    return f"""---
pretty_name: text2json ({manifest['preset']})
language:
- en
license: apache-2.0
task_categories:
- text-generation
tags:
- long-context
- information-extraction
- json
{chr(10).join(configs)}
---

# text2json ({manifest['preset']})

A context-intensive extraction benchmark in the shape of the published Text2JSON benchmark: each
sample is one long document (product specifications, medical professional records,
organizational records, or movie metadata) and an instruction to extract every entity that meets a
selection rule as a JSON list of objects with `name` and two string attributes copied verbatim.
Near-duplicate distractors (same brand with another model number, same surname with another first
name, same root with another legal suffix, same title in another year) break the rule and must be
left out.

Built synthetically by `text2json build --preset {manifest['preset']} --seed {manifest['seed']}`
(generator `{manifest['generator_version']}`) from hand-made word lists; no real people, products,
companies or films are described.

## Fields
`problem` (the whole user turn) and `answer` (a JSON string) are the published format. Metadata:
`id`, `index`, `domain`, `attributes`, `num_entities`, `num_distractors`, `num_tokens` (chat-templated
prompt + {manifest['args']['answer_budget']}-token answer budget), `prompt_tokens`, `answer_tokens`,
`target_tokens`, `seed`, `preset`.

## Size
{stats['num_samples']} samples. Length with tokenizer `{tok['name']}`: mean {stats['num_tokens_mean']},
min {stats['num_tokens_min']}, max {stats['num_tokens_max']} tokens.

| domain | samples |
|---|---|
{rows}

## Use

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", split="test")            # all domains
movies = load_dataset("path/to/this/folder", "movies", split="test")
```

`test.jsonl` holds the same records as JSON lines (`text2json.data.load_records` reads it).
Score predictions with `text2json score` (`--mode paper` applies the published IoU rules).
`manifest.json` records the sha256 of every file and sample; `sha256sum -c SHA256SUMS` checks them.
"""


def write_build(out_dir: str | Path, records: list[dict], variant: Variant, preset: str, seed: int,
                counter) -> dict:
    """Write every file of the layout above and return the manifest."""
    out = Path(out_dir)
    files: dict[str, bytes] = {JSONL: "".join(record_line(r) + "\n" for r in records).encode(),
                               "test.parquet": _parquet_bytes(records)}
    for d in DOMAIN_NAMES:
        files[f"{d}/test.parquet"] = _parquet_bytes([r for r in records if r["domain"] == d])
    provisional = build_manifest(records, variant, preset, seed, counter, files)
    files["README.md"] = dataset_card(provisional).encode()
    manifest = build_manifest(records, variant, preset, seed, counter, files)
    files[MANIFEST] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    files["SHA256SUMS"] = "".join(f"{sha256_hex(data)}  {name}\n" for name, data in sorted(files.items())).encode()
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return manifest


def compare_manifests(built: dict, expected: dict, ignore_parquet: bool = False) -> list[str]:
    """Differences that matter for byte identity, as readable lines (empty when identical).

    Parquet bytes embed the writing pyarrow's version; ``ignore_parquet`` compares everything else
    (every sample, the JSONL, the card), for environments with another pyarrow."""
    built = json.loads(json.dumps(built))  # tuples become lists, as in a manifest read from disk
    problems = []
    keys = ("generator_version", "preset", "family", "args", "seed", "num_samples", "tokenizer")
    for key in keys + (() if ignore_parquet else ("writer",)):
        if built.get(key) != expected.get(key):
            problems.append(f"{key}: built {built.get(key)!r}, expected {expected.get(key)!r}")
    exp_samples = {s["id"]: s["sha256"] for s in expected.get("samples", [])}
    for s in built["samples"]:
        if exp_samples.get(s["id"]) != s["sha256"]:
            problems.append(f"sample {s['id']}: sha256 {s['sha256'][:12]} != expected "
                            f"{str(exp_samples.get(s['id']))[:12]}")
    for name, info in built["files"].items():
        if ignore_parquet and name.endswith(".parquet"):
            continue
        want = expected.get("files", {}).get(name)
        if want is None or want["sha256"] != info["sha256"]:
            problems.append(f"file {name}: sha256 {info['sha256'][:12]} != expected "
                            f"{(want or {}).get('sha256', 'none')[:12]}")
    return problems

