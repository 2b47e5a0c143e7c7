"""Release gate: a candidate run must not score worse than a baseline beyond set tolerances.

Either side is a results file from ``text2json eval`` (per-sample predictions: the report can show
entity diffs) or a stored score report from ``text2json score --json`` (per-sample scores only).
Scores are compared on the samples both sides have; a candidate missing baseline samples fails
unless ``allow_missing``. Checks: the overall drop (baseline - candidate, in score points out of
100) must not exceed ``max_drop``, and the drop of every domain must not exceed ``max_domain_drop``.
SGLang is not bitwise deterministic across batch sizes unless started with
``--enable-deterministic-inference``, so set the tolerances from repeated baseline runs or run both
sides deterministically.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from text2json.results import read_results
from text2json.score import parse_gold, score_rows, score_sample_detail


@dataclass(frozen=True)
class Side:
    label: str
    report: dict  # from score_rows
    rows: dict[str, dict] | None  # id -> result row, when predictions are available


def load_side(path: str | Path, mode: str) -> Side:
    """A results JSONL (scored here in ``mode``) or a stored report JSON (its mode must match)."""
    p = Path(path)
    with p.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        head = json.loads(first) if first.strip() else {}
    except json.JSONDecodeError:
        head = None
    if head is not None and ("meta" in head or "id" in head):
        _, rows = read_results(p)
        if not rows:
            raise ValueError(f"{p}: the results file has no finished samples")
        if any("answer" not in r for r in rows):
            raise ValueError(f"{p}: result lines need 'answer' (files from `text2json eval` have it)")
        return Side(str(p), score_rows(rows, mode), {r["id"]: r for r in rows})
    report = json.loads(p.read_text(encoding="utf-8"))
    report = report.get("figures", report)  # a provenance record wraps the report in "figures"
    if "samples" not in report or "mode" not in report:
        raise ValueError(f"{p}: neither a results file nor a report from `text2json score --json`")
    if report["mode"] != mode:
        raise ValueError(f"{p} was scored with --mode {report['mode']}, the gate runs --mode {mode}")
    return Side(str(p), report, None)


def _mean100(values: list[float]) -> float:
    return round(100 * statistics.fmean(values), 3) if values else float("nan")


def _entity_diff(answer: str, base_pred: str | None, cand_pred: str | None, mode: str) -> list[dict]:
    """Rows (entity, attribute, gold, baseline, candidate) where baseline and candidate differ."""
    gold = parse_gold(answer, mode)
    base = score_sample_detail(base_pred, answer, mode)
    cand = score_sample_detail(cand_pred, answer, mode)
    rows = []
    for name, attrs in gold.items():
        b, c = base.predicted.get(name), cand.predicted.get(name)
        if b is None and c is None:
            continue
        if (b is None) != (c is None):
            rows.append({"entity": name, "attribute": "(entity)", "gold": "present",
                         "baseline": "found" if b is not None else "missing",
                         "candidate": "found" if c is not None else "missing"})
            continue
        for key, gold_value in attrs.items():
            if b.get(key) != c.get(key):
                rows.append({"entity": name, "attribute": key, "gold": gold_value, "baseline": b.get(key),
                             "candidate": c.get(key)})
    for name in cand.false_entities:
        if name not in base.false_entities:
            rows.append({"entity": str(name), "attribute": "(false entity)", "gold": "absent",
                         "baseline": "absent", "candidate": "predicted"})
    return rows


def run_gate(baseline: Side, candidate: Side, mode: str, max_drop: float, max_domain_drop: float,
             top: int = 10, allow_missing: bool = False) -> dict:
    """The gate report (JSON-ready); ``report["passed"]`` is the verdict."""
    base_samples = {s["id"]: s for s in baseline.report["samples"]}
    cand_samples = {s["id"]: s for s in candidate.report["samples"]}
    common = [i for i in base_samples if i in cand_samples]
    missing = [i for i in base_samples if i not in cand_samples]
    if not common:
        raise ValueError("baseline and candidate share no sample ids; were they run on the same dataset?")

    checks = []
    base_all = _mean100([base_samples[i]["score"] for i in common])
    cand_all = _mean100([cand_samples[i]["score"] for i in common])
    checks.append({"check": "overall", "baseline": base_all, "candidate": cand_all,
                   "drop": round(base_all - cand_all, 3), "max_drop": max_drop,
                   "passed": base_all - cand_all <= max_drop})
    for domain in sorted({base_samples[i]["domain"] for i in common}):
        ids = [i for i in common if base_samples[i]["domain"] == domain]
        b = _mean100([base_samples[i]["score"] for i in ids])
        c = _mean100([cand_samples[i]["score"] for i in ids])
        checks.append({"check": f"domain {domain}", "num_samples": len(ids), "baseline": b, "candidate": c,
                       "drop": round(b - c, 3), "max_drop": max_domain_drop, "passed": b - c <= max_domain_drop})
    if missing:
        checks.append({"check": "candidate covers baseline samples", "missing": len(missing),
                       "passed": allow_missing})

    regressions = sorted(((base_samples[i]["score"] - cand_samples[i]["score"], i) for i in common), reverse=True)
    worst = []
    for delta, i in regressions[:top]:
        if delta <= 0:
            break
        item = {"id": i, "domain": base_samples[i]["domain"], "num_tokens": base_samples[i].get("num_tokens"),
                "baseline": round(100 * base_samples[i]["score"], 2),
                "candidate": round(100 * cand_samples[i]["score"], 2)}
        if baseline.rows is not None and candidate.rows is not None:
            b, c = baseline.rows[i], candidate.rows[i]
            item["candidate_finish_reason"] = c.get("finish_reason")
            item["diff"] = _entity_diff(c["answer"], b.get("prediction"), c.get("prediction"), mode)
        worst.append(item)
    return {"passed": all(c["passed"] for c in checks), "mode": mode, "baseline": baseline.label,
            "candidate": candidate.label, "num_compared": len(common), "missing_in_candidate": missing,
            "checks": checks, "worst_regressions": worst}


def _cell(value) -> str:
    text = "(null)" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(report: dict) -> str:
    verdict = "PASS" if report["passed"] else "FAIL"
    lines = [f"# text2json gate: {verdict}", "",
             f"- baseline: `{report['baseline']}`", f"- candidate: `{report['candidate']}`",
             f"- mode: {report['mode']}, samples compared: {report['num_compared']}"
             + (f", missing in candidate: {len(report['missing_in_candidate'])}" if report["missing_in_candidate"]
                else ""), "",
             "| check | baseline | candidate | drop | max drop | result |", "|---|---|---|---|---|---|"]
    for c in report["checks"]:
        if "baseline" in c:
            lines.append(f"| {c['check']} | {c['baseline']} | {c['candidate']} | {c['drop']} | {c['max_drop']} | "
                         f"{'pass' if c['passed'] else 'FAIL'} |")
        else:
            lines.append(f"| {c['check']} ({c['missing']} missing) | | | | | {'pass' if c['passed'] else 'FAIL'} |")
    lines += ["", "## Worst per-sample regressions", ""]
    if not report["worst_regressions"]:
        lines.append("None: no sample scores lower in the candidate.")
    for w in report["worst_regressions"]:
        lines.append(f"### {w['id']} ({w['domain']}, {w['num_tokens']} tokens): {w['baseline']} -> {w['candidate']}"
                     + (f", finish_reason {w['candidate_finish_reason']}" if w.get("candidate_finish_reason") else ""))
        if "diff" not in w:
            lines += ["", "(per-sample predictions not available: a side is a stored score report)", ""]
            continue
        lines += ["", "| entity | attribute | gold | baseline | candidate |", "|---|---|---|---|---|"]
        lines += [f"| {_cell(d['entity'])} | {_cell(d['attribute'])} | {_cell(d['gold'])} | {_cell(d['baseline'])} | "
                  f"{_cell(d['candidate'])} |" for d in w["diff"]]
        lines.append("")
    return "\n".join(lines) + "\n"
