"""Load samples: our builds and the published Text2JSON JSON-lines file.

:func:`load_records` is the one public entry point (the load test reads prompts through it). Both
formats come back as dicts with at least ``problem``, ``answer`` (a JSON string), ``id``, ``index``
and ``domain``; our metadata columns pass through unchanged. Published records get ``id`` =
``"<file stem>-<line index>"`` and the domain from a ``domain``/``task``/``category`` field when the
file has one, otherwise ``"unknown"``.
"""

from __future__ import annotations

import json
from pathlib import Path

_DOMAIN_FIELDS = ("domain", "task", "category")


def load_records(path: str | Path) -> list[dict]:
    """Records of a build folder (its ``test.jsonl``), our JSONL, or the published JSONL."""
    p = Path(path)
    if p.is_dir():
        p = p / "test.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"no dataset at {str(path)!r} (expected a build folder or a .jsonl file)")
    records = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{lineno}: not a JSON line ({e})") from None
            if not isinstance(obj, dict) or "problem" not in obj or "answer" not in obj:
                raise ValueError(f"{p}:{lineno}: a record needs the fields 'problem' and 'answer'")
            records.append(_normalize(obj, len(records), p.stem))
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{p}: duplicate record ids")
    return records


def _normalize(obj: dict, index: int, stem: str) -> dict:
    rec = dict(obj)
    if not isinstance(rec["answer"], str):  # some copies store the parsed list instead of its JSON text
        rec["answer"] = json.dumps(rec["answer"], ensure_ascii=False)
    rec.setdefault("index", index)
    rec.setdefault("id", f"{stem}-{index:04d}")
    rec["id"] = str(rec["id"])
    if "domain" not in rec:
        rec["domain"] = next((str(obj[k]) for k in _DOMAIN_FIELDS if k in obj), "unknown")
    return rec


def duplicate_gold_names(answer: str) -> bool:
    """True when a gold answer names an entity twice (the published evaluator drops such samples)."""
    try:
        gold = json.loads(answer)
    except json.JSONDecodeError:
        return False
    names = [g.get("name") for g in gold if isinstance(g, dict)] if isinstance(gold, list) else []
    return len(set(map(repr, names))) != len(names)


def load_published(path: str | Path) -> tuple[list[dict], list[str]]:
    """The published file as the published evaluator sees it: records whose gold answer repeats a
    name are dropped. Returns (records kept, ids dropped)."""
    kept, dropped = [], []
    for rec in load_records(path):
        (dropped if duplicate_gold_names(rec["answer"]) else kept).append(rec)
    return kept, [r["id"] for r in dropped]
