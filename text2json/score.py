"""Scoring predictions: the published per-sample rule ("paper"), a lenient variant ("robust"), set
metrics over (name, attribute, value) triples, and the aggregate report.

``paper`` follows the published scorer rule by rule:

1. Gold: name -> {attribute: value}, after replacing U+2019 (right single quotation mark) by "'".
2. The raw prediction must contain exactly one "[" and one "]", "[" first, else the sample scores 0.
   The text from "[" to "]" inclusive is parsed as JSON; a parse failure or a non-list scores 0.
3. union = number of gold entities. For each predicted object, in order: no "name", a non-string
   name, or a name not among the still-unmatched gold entities adds 1 to union (so a repeated name
   counts as a false entity); otherwise credit = 1 - 0.5 per gold attribute missing or null
   - 0.25 per attribute present but unequal (exact, case-sensitive, after the quote replacement;
   integers compare as their decimal string), extra keys ignored, and the gold entity is removed.
4. Sample score = sum of credits / union. Final score = 100 x mean over samples.

Where the published code raises instead of scoring (a float, list, boolean or object as a value),
``paper`` scores the sample 0 and flags it (``SampleScore.raised``; reported as
``published_scorer_raises``). Choices where the published description is silent: the quote
replacement is applied to the prediction too (the comparison is "after the quote replacement"), a
list element that is not an object counts as a false entity, and an empty gold list with an empty
prediction scores 1.

``robust`` takes the first JSON array of objects even among stray brackets (after dropping any
``<think>`` block), recovers the complete objects of an array cut off by the token limit, accepts
any value type, and compares after normalizing unicode (NFKC, quotes, dashes), whitespace, key
spelling ("Battery Life" = "battery_life") and numbers ("1,249.00" = "1249"). Same credit rule.
It never raises on any prediction text.

Both modes also give the IoU and F1 of the sets of (name, attribute, value) triples (each entity
contributes a (name, "name", name) triple so a bare name counts; only the sample's gold attribute
keys are read from predictions).
"""

from __future__ import annotations

import json
import re
import statistics
import unicodedata
from dataclasses import dataclass, field

MODES = ("paper", "robust")
RIGHT_QUOTE = "\u2019"

# Length buckets over num_tokens (prompt + answer budget), in tokens.
BUCKET_EDGES = (4096, 8192, 12288, 16384, 24576, 32768, 49152, 65536)


@dataclass(frozen=True)
class SampleScore:
    score: float  # in [0, 1]
    parsed: bool  # a list was extracted under the mode's parsing rules
    raised: bool  # paper: the published scorer would raise on this prediction
    recovered: bool  # robust: objects were recovered from a truncated array
    triple_iou: float
    triple_f1: float
    predicted: dict = field(default_factory=dict)  # matched gold name -> predicted attribute values
    false_entities: list = field(default_factory=list)  # predicted names that matched nothing


class _PublishedScorerRaises(Exception):
    pass


# --- gold ------------------------------------------------------------------------------------------

def parse_gold(answer: str, mode: str = "paper") -> dict[str, dict[str, str]]:
    """name -> {attribute: value}. Raises ``ValueError`` for a malformed gold answer or duplicate names
    (the published evaluator drops samples whose gold repeats a name)."""
    try:
        gold = json.loads(answer)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"gold answer is not JSON: {e}") from None
    if not isinstance(gold, list) or not all(isinstance(g, dict) and isinstance(g.get("name"), str) for g in gold):
        raise ValueError("gold answer must be a JSON list of objects with a string 'name'")
    out: dict[str, dict[str, str]] = {}
    for g in gold:
        name = _unquote(g["name"]) if mode == "paper" else _norm_text(g["name"])
        if name in out:
            raise ValueError(f"gold answer names {g['name']!r} twice; the published evaluator drops such samples")
        attrs = {k: _unquote(v) for k, v in g.items() if k != "name"}
        if mode == "robust":
            attrs = {_norm_key(k): _norm_value(v) for k, v in attrs.items()}
        out[name] = attrs
    return out


# --- paper -----------------------------------------------------------------------------------------

def _unquote(value):
    """The published replacement of U+2019 by an apostrophe, on a parsed string (JSON text may
    carry the character escaped as \\u2019)."""
    return value.replace(RIGHT_QUOTE, "'") if isinstance(value, str) else value


def _paper_items(prediction: str) -> list | None:
    if prediction.count("[") != 1 or prediction.count("]") != 1:
        return None
    start, end = prediction.index("["), prediction.index("]")
    if start > end:
        return None
    try:
        value = json.loads(prediction[start:end + 1])
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _paper_value(value) -> str:
    if isinstance(value, str):
        return _unquote(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _PublishedScorerRaises(type(value).__name__)


# --- robust ----------------------------------------------------------------------------------------

_THINK_RE = re.compile(r"<think>.*?(</think>|$)", re.S)
_TRAILING_COMMA_RE = re.compile(r",(\s*[\]}])")
_NUMBER_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_CHAR_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                           "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
                           "\u2212": "-", "\u00a0": " "})
_MAX_ARRAY_STARTS = 256  # bound the work on adversarial text full of "["


def _canonical_number(match: re.Match) -> str:
    text = match.group(0)
    if "," in text:
        text = text.replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _norm_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    text = " ".join(text.split())
    return _NUMBER_RE.sub(_canonical_number, text)


def _norm_key(key) -> str:
    return re.sub(r"[\s\-]+", "_", _norm_text(str(key)).strip().lower())


def _norm_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _norm_text(repr(float(value)) if isinstance(value, float) else str(value))
    if isinstance(value, str):
        return _norm_text(value)
    if isinstance(value, list):
        return ", ".join(v for v in (_norm_value(x) for x in value) if v is not None)
    return _norm_text(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _robust_items(prediction: str) -> tuple[list | None, bool]:
    """(items, recovered). The first array holding an object; else the objects of a truncated array;
    else the first array of anything; else None."""
    text = _THINK_RE.sub("", prediction)
    decoder = json.JSONDecoder()
    first_list = None
    for attempt, candidate in enumerate((text, _TRAILING_COMMA_RE.sub(r"\1", text))):
        if attempt == 1 and candidate == text:
            break
        for n, m in enumerate(re.finditer(r"\[", candidate)):
            if n >= _MAX_ARRAY_STARTS:
                break
            try:
                value, _ = decoder.raw_decode(candidate, m.start())
            except (ValueError, RecursionError):
                continue
            if isinstance(value, list):
                if any(isinstance(x, dict) for x in value):
                    return value, False
                if first_list is None:
                    first_list = value
    recovered = _recover_truncated(text, decoder)
    if recovered:
        return recovered, True
    return first_list, False


def _recover_truncated(text: str, decoder: json.JSONDecoder) -> list:
    m = re.search(r"\[\s*\{", text)
    if not m:
        return []
    items, pos = [], m.end() - 1
    while True:
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return items
        items.append(obj)
        rest = re.match(r"\s*,\s*", text[pos:])
        if not rest:
            return items
        pos += rest.end()


# --- per sample ------------------------------------------------------------------------------------

def _triples(entities: dict[str, dict], keys) -> set:
    out = set()
    for name, attrs in entities.items():
        out.add((name, "name", name))
        for k in keys:
            if attrs.get(k) is not None:
                out.add((name, k, attrs[k]))
    return out


def _set_metrics(pred: set, gold: set) -> tuple[float, float]:
    if not pred and not gold:
        return 1.0, 1.0
    inter = len(pred & gold)
    return inter / len(pred | gold), 2 * inter / (len(pred) + len(gold))


def score_sample_detail(prediction: str | None, answer: str, mode: str = "paper") -> SampleScore:
    """The full per-sample result. Raises ``ValueError`` only for a bad ``mode`` or gold ``answer``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    gold = parse_gold(answer, mode)
    keys = sorted({k for attrs in gold.values() for k in attrs})
    prediction = prediction or ""
    if mode == "paper":
        items, recovered = _paper_items(prediction), False
    else:
        items, recovered = _robust_items(prediction)
    if items is None:
        iou, f1 = _set_metrics(set(), _triples(gold, keys))
        return SampleScore(0.0, False, False, False, iou, f1)

    remaining = dict(gold)
    union, credits = len(gold), 0.0
    predicted: dict[str, dict] = {}
    false_entities: list = []
    pred_entities: dict[str, dict] = {}  # for triples: first object per predicted name
    raised = False
    for item in items:
        if mode == "robust" and isinstance(item, dict):
            normed = {}
            for k, v in item.items():
                normed.setdefault(_norm_key(k), v)
            item = normed
        name = item.get("name") if isinstance(item, dict) else None
        if mode == "robust" and name is not None:
            name = _norm_value(name)
        elif mode == "paper":
            name = _unquote(name)
        if not isinstance(name, str):
            union += 1
            false_entities.append(name)
            continue
        if mode == "paper":
            values = {}
            for k in keys:
                v = item.get(k)
                values[k] = _unquote(v) if v is None or isinstance(v, str) else (
                    str(v) if isinstance(v, int) and not isinstance(v, bool) else json.dumps(v))
        else:
            values = {k: _norm_value(item.get(k)) for k in keys}
        pred_entities.setdefault(name, values)
        if name not in remaining:
            union += 1
            false_entities.append(name)
            continue
        gold_attrs = remaining.pop(name)
        credit = 1.0
        for k, gold_value in gold_attrs.items():
            v = item.get(k)
            if v is None:
                credit -= 0.5
                continue
            if mode == "paper":
                try:
                    v = _paper_value(v)
                except _PublishedScorerRaises:
                    raised = True
                    continue
            else:
                v = _norm_value(v)
            if v != gold_value:
                credit -= 0.25
        credits += credit
        predicted[name] = values
    iou, f1 = _set_metrics(_triples(pred_entities, keys), _triples(gold, keys))
    if raised:
        return SampleScore(0.0, True, True, False, iou, f1, predicted, false_entities)
    score = credits / union if union else 1.0
    return SampleScore(score, True, False, recovered, iou, f1, predicted, false_entities)


def score_sample(prediction: str, answer: str, mode: str = "paper") -> float:
    """Score in [0, 1] of one prediction against its gold ``answer`` (a JSON string)."""
    return score_sample_detail(prediction, answer, mode).score


# --- aggregate -------------------------------------------------------------------------------------

def length_bucket(num_tokens) -> str:
    if num_tokens is None:
        return "unknown"
    lo = 0
    for edge in BUCKET_EDGES:
        if num_tokens < edge:
            return f"{lo // 1024}K-{edge // 1024}K"
        lo = edge
    return f"{lo // 1024}K+"


def _summary(rows: list[dict], scores: list[SampleScore]) -> dict:
    n = len(rows)
    return {
        "num_samples": n,
        "score": round(100 * statistics.fmean(s.score for s in scores), 3) if n else None,
        "triple_iou": round(100 * statistics.fmean(s.triple_iou for s in scores), 3) if n else None,
        "triple_f1": round(100 * statistics.fmean(s.triple_f1 for s in scores), 3) if n else None,
        "parse_failure_rate": round(sum(not s.parsed for s in scores) / n, 4) if n else None,
        "truncation_rate": round(sum(r.get("finish_reason") == "length" for r in rows) / n, 4) if n else None,
    }


def score_rows(rows: list[dict], mode: str = "paper") -> dict:
    """Aggregate report over result rows (``answer``, ``prediction``, and optionally ``id``,
    ``domain``, ``num_tokens``, ``finish_reason``, ``error``)."""
    scores = [score_sample_detail(r.get("prediction"), r["answer"], mode) for r in rows]
    report = {"mode": mode, **_summary(rows, scores)}
    report["published_scorer_raises"] = sum(s.raised for s in scores)
    report["recovered_truncated"] = sum(s.recovered for s in scores)
    report["request_errors"] = sum(bool(r.get("error")) for r in rows)
    for key, group_of in (("per_domain", lambda r: r.get("domain", "unknown")),
                          ("per_length_bucket", lambda r: length_bucket(r.get("num_tokens")))):
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(group_of(r), []).append(i)
        order = sorted(groups) if key == "per_domain" else sorted(groups, key=_bucket_order)
        report[key] = {g: _summary([rows[i] for i in groups[g]], [scores[i] for i in groups[g]]) for g in order}
    report["samples"] = [
        {"id": r.get("id", str(i)), "domain": r.get("domain", "unknown"), "num_tokens": r.get("num_tokens"),
         "score": round(s.score, 6), "triple_iou": round(s.triple_iou, 6), "parsed": s.parsed,
         "truncated": r.get("finish_reason") == "length"}
        for i, (r, s) in enumerate(zip(rows, scores))
    ]
    return report


def _bucket_order(label: str) -> float:
    return float("inf") if label == "unknown" else int(label.split("K")[0])


def format_report(report: dict) -> str:
    """A plain-text table of a report from :func:`score_rows`."""
    lines = [f"mode={report['mode']}  samples={report['num_samples']}  score={report['score']}  "
             f"triple_iou={report['triple_iou']}  triple_f1={report['triple_f1']}  "
             f"parse_failures={report['parse_failure_rate']}  truncated={report['truncation_rate']}  "
             f"published_scorer_raises={report['published_scorer_raises']}  request_errors={report['request_errors']}"]
    for key in ("per_domain", "per_length_bucket"):
        lines.append(f"{key}:")
        for g, s in report[key].items():
            lines.append(f"  {g:<16} n={s['num_samples']:<4} score={s['score']:<8} iou={s['triple_iou']:<8} "
                         f"f1={s['triple_f1']:<8} parse_fail={s['parse_failure_rate']} trunc={s['truncation_rate']}")
    return "\n".join(lines)
