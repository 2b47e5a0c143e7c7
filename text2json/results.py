"""The results file written by ``text2json eval`` and read by ``score`` and ``gate``.

JSON lines. The first line is ``{"meta": {...}}`` (dataset fingerprint, model, endpoint, sampling
settings, command, commit, machine, start date). Every other line is one finished sample:

    id, index, domain, num_tokens   copied from the dataset record
    answer                          the gold answer, so the file scores on its own
    prediction                      the model's message content ("" when it returned none)
    finish_reason                   "stop", "length", ...
    prompt_tokens, completion_tokens  from the response's usage, when reported
    latency_s, attempts             wall time of the successful request, requests made
    error                           only with --on-error record: why the sample has no prediction

Lines are appended as samples finish, so a killed run leaves every finished sample on disk; a
partial last line (killed mid-write) is dropped when the file is reopened. A later line for the
same id replaces an earlier one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def dataset_fingerprint(records: list[dict]) -> str:
    """sha256 over (id, problem, answer) of the records a run covers, in order."""
    digest = hashlib.sha256()
    for r in records:
        for part in (r["id"], r["problem"], r["answer"]):
            digest.update(part.encode())
            digest.update(b"\0")
    return digest.hexdigest()


def read_results(path: str | Path, repair: bool = False) -> tuple[dict, list[dict]]:
    """(meta, rows in file order, last line per id wins). With ``repair`` a partial last line is cut
    off the file; without it a partial last line is ignored."""
    p = Path(path)
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if repair:
            with p.open("r+b") as f:
                f.truncate(cut)
        data = data[:cut]
    meta: dict = {}
    rows: dict[str, dict] = {}
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{lineno}: not a JSON line ({e})") from None
        if lineno == 1 and "meta" in obj:
            meta = obj["meta"]
            continue
        if "id" not in obj:
            raise ValueError(f"{p}:{lineno}: a result line needs an 'id'")
        rows.pop(str(obj["id"]), None)
        rows[str(obj["id"])] = obj
    return meta, list(rows.values())


class ResultsWriter:
    """Appends one line per finished sample and flushes it, so a crash loses nothing finished."""

    def __init__(self, path: str | Path, meta: dict | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = self.path.open("a", encoding="utf-8")
        if new and meta is not None:
            self.write({"meta": meta})

    def write(self, obj: dict) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()
