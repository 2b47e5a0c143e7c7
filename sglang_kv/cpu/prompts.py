"""Deterministic long prompts for CPU demos and tests: record lists with questions about them."""

from __future__ import annotations

_CITIES = ("Oslo", "Lima", "Kyoto", "Dakar", "Perth", "Quito", "Tartu", "Cork")


def records_document(num_records: int, seed: int) -> str:
    """``num_records`` near-duplicate shipping records (about 25 SmolLM2 tokens each)."""
    lines = []
    for i in range(num_records):
        city = _CITIES[(i * 7 + seed) % len(_CITIES)]
        lines.append(f"Record {i}: supplier {seed}-{i * 13 % 97} ships part Z{i * 31 % 1000} "
                     f"from {city} every {i % 9 + 1} days.")
    return "\n".join(lines)


def record_questions() -> list[str]:
    """Long prompts of about 1.5K to 6K SmolLM2 tokens, each asking about specific records."""
    return [
        records_document(60, 3) + "\nSummarize the records in one sentence.",
        records_document(90, 1) + "\nWhich city ships part Z310?",
        records_document(140, 2) + "\nList the suppliers that ship from Kyoto.",
        records_document(230, 6) + "\nHow often is part Z992 shipped, and from where?",
    ]
