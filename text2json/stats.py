"""Length histogram and per-domain counts of a dataset."""

from __future__ import annotations

import statistics


def dataset_stats(records: list[dict], num_bins: int = 12) -> dict:
    """Counts, token statistics per domain, and an equal-width histogram of ``num_tokens``.
    Every record needs ``num_tokens`` (count them first for files that lack it)."""
    if not records:
        raise ValueError("no records")
    if num_bins < 1:
        raise ValueError(f"--bins must be at least 1, got {num_bins}")
    tokens = [r["num_tokens"] for r in records]

    def summary(values: list[int]) -> dict:
        return {"num_samples": len(values), "mean": round(statistics.fmean(values), 1), "min": min(values),
                "median": statistics.median(values), "max": max(values)}

    per_domain = {}
    for d in sorted({r["domain"] for r in records}):
        rows = [r for r in records if r["domain"] == d]
        per_domain[d] = summary([r["num_tokens"] for r in rows])
        if all("num_entities" in r for r in rows):
            per_domain[d]["entities_mean"] = round(statistics.fmean(r["num_entities"] for r in rows), 2)
    lo, hi = min(tokens), max(tokens)
    width = max(1, -(-(hi - lo + 1) // num_bins))
    counts = [0] * num_bins
    for t in tokens:
        counts[min(num_bins - 1, (t - lo) // width)] += 1
    histogram = [{"from": lo + i * width, "to": lo + (i + 1) * width, "count": c} for i, c in enumerate(counts)]
    return {"overall": summary(tokens), "per_domain": per_domain, "histogram": histogram}


def format_stats(stats: dict, bar_width: int = 50) -> str:
    o = stats["overall"]
    lines = [f"samples={o['num_samples']}  tokens: mean={o['mean']} min={o['min']} median={o['median']} max={o['max']}",
             "", "per domain:"]
    for d, s in stats["per_domain"].items():
        extra = f"  entities_mean={s['entities_mean']}" if "entities_mean" in s else ""
        lines.append(f"  {d:<16} n={s['num_samples']:<5} mean={s['mean']:<9} min={s['min']:<7} max={s['max']}{extra}")
    lines += ["", "num_tokens histogram:"]
    peak = max(b["count"] for b in stats["histogram"]) or 1
    for b in stats["histogram"]:
        bar = "#" * round(bar_width * b["count"] / peak)
        lines.append(f"  {b['from']:>7}-{b['to'] - 1:<7} {b['count']:>5} {bar}")
    return "\n".join(lines)
