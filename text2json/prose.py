"""Text for a sample: entity blocks (prose, tables, lists, cards, Q&A, memos, split mentions) and filler.

Entity blocks state each entity's two attribute values verbatim, plus whether the selection rule
includes it (its status). Filler is domain-flavoured prose from a small grammar (openers, subjects,
verbs, objects, tails) and full-sentence patterns, with the occasional list, numeric table, quote,
Q&A or memo; it never names an entity. Every function draws only from the ``rng`` it is given.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from text2json import words as W
from text2json.domains import Domain, Entity

# --- small helpers ---------------------------------------------------------------------------------


def _pick(rng: random.Random, options):
    return options[rng.randrange(len(options))]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


_VOWEL_LETTERS = "AEFHILMNORSX"  # letters whose spoken name starts with a vowel sound ("an R rating")
_ARTICLE_RE = re.compile(r"\b([Aa]) (?=([A-Za-z0-9][\w,.-]*))")


def _wants_an(word: str) -> bool:
    if word[0].isdigit():
        digits = word.split(".")[0].replace(",", "")
        digits = "".join(c for c in digits if c.isdigit())
        n = len(digits)
        return digits[0] == "8" or (digits[:2] in ("11", "18") and n % 3 == 2)
    if len(word) == 1 or word[:2].isupper():  # an initialism: "NC-17", "R", "SKU"
        return word[0] in _VOWEL_LETTERS
    return word[0].lower() in "aeiou" and not word.lower().startswith(("uni", "use", "usu", "eu", "one"))


def fix_articles(text: str) -> str:
    """"a" -> "an" before a vowel sound. Run only on text whose entity values were drawn to be
    article-safe (titles fix their own article when generated)."""
    return _ARTICLE_RE.sub(lambda m: (m.group(1) + "n ") if _wants_an(m.group(2)) else m.group(0), text)


def lower_label(label: str) -> str:
    """"Price" -> "price"; acronyms ("SKU", "CEO") stay as they are."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


# --- entity mentions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mention:
    """Everything a sentence frame can say about one entity. ``R`` contains the name verbatim."""

    R: str
    R2: str  # a second reference inside the same passage ("it", or the name again for people)
    rel: str  # relative pronoun: "which" / "who"
    vp1: str
    vp2: str
    np1: str
    np2: str
    L1: str
    L2: str
    v1: str
    v2: str
    svp: str  # status verb phrase
    S: str  # status sentence
    slabel: str
    SK: str  # status key label ("Status" / "Year")

    def fields(self) -> dict:
        return {"R": self.R, "Rc": cap(self.R), "R2": self.R2, "R2c": cap(self.R2), "rel": self.rel,
                "vp1": self.vp1, "vp2": self.vp2, "np1": self.np1, "np2": self.np2, "L1": self.L1,
                "L2": self.L2, "l1": lower_label(self.L1), "l2": lower_label(self.L2), "v1": self.v1,
                "v2": self.v2, "svp": self.svp, "S": self.S, "slabel": self.slabel,
                "slabel_l": lower_label(self.slabel), "SK": self.SK}


def mention(rng: random.Random, domain: Domain, ctx: dict, entity: Entity, attributes: tuple) -> Mention:
    """Phrasing for ``entity``; ``attributes`` are the two asked for, in a random order per mention."""
    a1, a2 = attributes if rng.random() < 0.5 else attributes[::-1]
    ref = _pick(rng, domain.refs(entity))
    if domain.is_person:
        second = _pick(rng, (entity.name, "this practitioner", "the same clinician"))
    else:
        second = "it"
    status = domain.status_text(rng, entity, ctx)
    v1, v2 = entity.values[a1.key], entity.values[a2.key]
    return Mention(
        R=ref, R2=second, rel="who" if domain.is_person else "which",
        vp1=_pick(rng, a1.vps).format(v=v1), vp2=_pick(rng, a2.vps).format(v=v2),
        np1=_pick(rng, a1.nps).format(v=v1), np2=_pick(rng, a2.nps).format(v=v2),
        L1=a1.label, L2=a2.label, v1=v1, v2=v2, svp=status.vp,
        S=cap(status.sentence.format(R=ref)), slabel=status.label, SK=cap(domain.status_key),
    )


FULL_FRAMES = (
    "{Rc} {vp1} and {vp2}. {S}",
    "{S} {R2c} {vp1}, and {R2} {vp2}.",
    "With {np1} and {np2}, {R} {svp}.",
    "{Rc}, {rel} {vp1}, {svp}; {R2} {vp2} as well.",
    "{L1} for {R}: {v1}. {L2}: {v2}. {S}",
    "The {l1} listed for {R} is {v1}, while the {l2} is {v2}. {S}",
    "{Rc} ({l1} {v1}; {l2} {v2}) {svp}.",
    "Among the entries we checked, {R} {svp}. Records show that {R2} {vp1}. {R2c} {vp2} as well.",
    "{S} Worth noting: {R} {vp2}, and {R2} {vp1}.",
    "We looked closely at {R}, {rel} {svp}. {R2c} {vp1} and {vp2}.",
    "{Rc} {vp1}. {S} On top of that, {R2} {vp2}.",
    "Records for {R} list {np1} and {np2}. {S}",
    "{Rc} {svp}. {R2c} {vp2}, and {R2} {vp1}.",
    "If you are looking at {R}, note that {R2} {vp1} and {vp2}. {S}",
)

# The first half of a split mention: one attribute and the status.
FIRST_FRAMES = (
    "{Rc} {vp1}. {S}",
    "{Rc}, {rel} {svp}, {vp1}.",
    "{S} {R2c} {vp1}.",
    "{L1} for {R}: {v1}. {SK}: {slabel_l}.",
    "According to the file, {R} {vp1} and {svp}.",
)

# The second half, placed later in the document: the other attribute only.
SECOND_FRAMES = (
    "One more detail on {R}: {R2} {vp2}.",
    "We later confirmed that {R} {vp2}.",
    "Addendum: {R} {vp2}.",
    "A follow-up note on {R}: {np2} was confirmed.",
    "For completeness, {R} {vp2}.",
    "{L2} for {R}, which was still missing from the earlier section: {v2}.",
)


def full_sentence(rng: random.Random, m: Mention) -> str:
    return _pick(rng, FULL_FRAMES).format(**m.fields())


# --- filler grammar --------------------------------------------------------------------------------

_ASSESSMENTS = ("overdue", "a sensible compromise", "too complicated", "a good start", "difficult to justify",
                "a clear improvement", "premature", "more expensive than planned", "surprisingly popular",
                "a step backwards")
_NEEDS = ("needed another look", "should be simplified", "deserved more attention", "had never been properly explained",
          "will need fresh funding", "worked better than expected", "remained a sticking point",
          "could be handled more cheaply", "had been neglected for too long")
_COUNT_UNITS = ("requests", "complaints", "inquiries", "comments", "reports", "tickets")

_SENTENCE_PATTERNS = (
    "{Op} {subj} {past} {obj} {tail}.",
    "{Subj} {past} {obj}, and {subj2} {past2} {obj2}.",
    "{Op} there was a {adj} {trend} in interest in {topic} {tail}.",
    "{Subj} {modal} {obj} {tail}.",
    "Questions about {topic} came up again {tail}.",
    "{Role} described {obj} as {assess}.",
    "{count} {unit} were logged in {month}, most of them about {topic}.",
    "Compared with {month}, {topic} showed a {adj} {trend} of {pct} percent.",
    "Not everyone agreed: {role} argued that {obj} {need}.",
    "Why did {topic} matter? Because {subj} {past} {obj} {tail}.",
    "{Subj} had {past} {obj} before, but never {tail}.",
    "The figures for {month} were {adj2}, with {topic} accounting for roughly {pct} percent of the total.",
    "It is worth repeating that {obj} {need}.",
    "{Op} {topic} remained a concern for {subj}.",
    "A short note on {topic}: {subj} {past} {obj} {tail}.",
    "{Subj} and {subj2} {past} {obj} together {tail}.",
    "Nobody {past} {obj} {tail}, which surprised {subj}.",
    "As {role} put it, \"{Obj} {need}.\"",
    "{Op} the discussion turned to {topic}.",
    "Most of the time, {obj} {need}; this year was no exception.",
    "{Subj} {past} {obj}; {subj2}, on the other hand, {past2} {obj2}.",
    "That left {topic} for the next meeting.",
    "{Op} {count} {unit} mentioned {topic} directly.",
    "The short version: {subj} {past} {obj}.",
    "{Subj} {past} {obj} twice {tail}, and nobody objected.",
    "There was little appetite for changing {obj}, although {role} pressed for it.",
    "What about {topic}? {Subj} {modal} {obj} {tail}.",
    "Few people outside {subj2} followed the debate about {topic}.",
    "If nothing else, the episode showed that {obj} {need}.",
    "{Op} {subj} asked for a {adj} change to {obj}.",
    "Between {month} and {month2}, {subj} {past} {obj} at least {small} times.",
    "{Role} said the numbers on {topic} looked {adj2} for now.",
    "Two things stood out: {topic} and {topic2}.",
    "{Subj} had hoped to settle {topic} by {month}; that did not happen.",
    "Feedback on {topic} was {adj2}, and {subj} {past} {obj} {tail}.",
    "{Op} {subj} focused on {topic2} rather than {topic}.",
)


def filler_sentence(rng: random.Random, vocab: dict) -> str:
    subj = _pick(rng, vocab["subjects"])
    subj2 = _pick(rng, [x for x in vocab["subjects"] if x != subj])
    topic = _pick(rng, vocab["topics"])
    obj, obj2 = _pick(rng, vocab["objects"]), _pick(rng, vocab["objects"])
    role = _pick(rng, vocab["roles"])
    fields = {
        "Op": _pick(rng, W.OPENERS), "subj": subj, "Subj": cap(subj), "subj2": subj2,
        "past": _pick(rng, W.PAST_VERBS), "past2": _pick(rng, W.PAST_VERBS), "obj": obj, "Obj": cap(obj),
        "obj2": obj2, "tail": _pick(rng, W.TAILS), "adj": _pick(rng, W.GENERIC_ADJECTIVES),
        "adj2": _pick(rng, ("uneven", "encouraging", "flat", "disappointing", "solid", "mixed")),
        "trend": _pick(rng, W.TREND_NOUNS), "topic": topic,
        "topic2": _pick(rng, [x for x in vocab["topics"] if x != topic]), "small": rng.randrange(2, 9),
        "month2": _pick(rng, W.MONTHS),
        "modal": _pick(rng, W.MODAL_VERBS), "role": role, "Role": cap(role), "assess": _pick(rng, _ASSESSMENTS),
        "need": _pick(rng, _NEEDS), "count": rng.randrange(3, 400), "unit": _pick(rng, _COUNT_UNITS),
        "month": _pick(rng, W.MONTHS), "pct": rng.randrange(2, 60),
    }
    return fix_articles(cap(_pick(rng, _SENTENCE_PATTERNS).format(**fields)))


def filler_paragraph(rng: random.Random, vocab: dict) -> str:
    return " ".join(filler_sentence(rng, vocab) for _ in range(3 + rng.randrange(5)))


_ROW_LABELS = {
    "Region": ("North", "South", "East", "West", "Central", "Coastal", "Highlands"),
    "Quarter": ("Q1", "Q2", "Q3", "Q4"),
    "Channel": ("Online", "Retail", "Wholesale", "Direct", "Marketplace"),
    "Warehouse": ("Central", "Harbor", "North Yard", "Airport", "East Depot"),
    "Department": ("Surgery", "Medicine", "Pediatrics", "Radiology", "Emergency", "Oncology"),
    "Month": W.MONTHS,
    "Site": ("Main campus", "North clinic", "Riverside annex", "Day surgery unit", "Outreach van"),
    "Sector": ("Manufacturing", "Retail", "Services", "Construction", "Technology", "Transport"),
    "Year": tuple(str(y) for y in range(2012, 2025)),
    "District": ("Old Town", "Harborside", "Northgate", "Westfield", "Riverside", "Station Quarter"),
    "Venue": ("Main hall", "Studio 2", "Open-air screen", "Archive theater", "Small hall"),
    "Day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "Format": ("35mm", "16mm", "DCP", "Digital restoration", "70mm"),
    "Program": ("Retrospective", "New voices", "Late night", "Family", "Documentary strand"),
}


def _numeric_cell(rng: random.Random, header: str) -> str:
    h = header.lower()
    if any(w in h for w in ("share", "growth")):
        return f"{rng.randrange(1, 60)}%"
    if "time" in h or "wait" in h:
        return f"{rng.randrange(2, 30)} days"
    return f"{rng.randrange(3, 5000):,}"


def render_grid(headers: list[str], rows: list[list[str]], style: int) -> str:
    """A table in one of three plain-text styles: Markdown pipes, aligned columns, semicolon lines."""
    if style == 0:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if style == 1:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
    return "\n".join(["; ".join(headers)] + ["; ".join(r) for r in rows])


def filler_extra(rng: random.Random, vocab: dict) -> str:
    """A filler unit that is not running prose: a list, numeric table, quote, Q&A or memo."""
    kind = rng.random()
    if kind < 0.3:
        bullet = _pick(rng, ("- ", "* ", "• "))
        items = [bullet + filler_sentence(rng, vocab) for _ in range(3 + rng.randrange(4))]
        return _pick(rng, ("Open items:", "Points raised:", "In brief:", "Notes:")) + "\n" + "\n".join(items)
    if kind < 0.55:
        headers = list(_pick(rng, vocab["table_headers"]))
        labels = list(_ROW_LABELS[headers[0]])
        rng.shuffle(labels)
        rows = [[label] + [_numeric_cell(rng, h) for h in headers[1:]] for label in labels[:3 + rng.randrange(3)]]
        caption = f"{_pick(rng, ('Figures for', 'Summary of', 'Snapshot of'))} {_pick(rng, vocab['topics'])}:"
        return caption + "\n" + render_grid(headers, rows, rng.randrange(3))
    if kind < 0.75:
        return f"> \"{filler_sentence(rng, vocab)} {filler_sentence(rng, vocab)}\"\n> ({_pick(rng, vocab['roles'])})"
    if kind < 0.9:
        topic = _pick(rng, vocab["topics"])
        return (f"Q: {_pick(rng, ('What changed regarding', 'Any news on', 'Is there an update on'))} {topic}?\n"
                f"A: {filler_sentence(rng, vocab)} {filler_sentence(rng, vocab)}")
    return (f"From: {_pick(rng, vocab['roles'])}\nTo: {_pick(rng, vocab['subjects'])}\n"
            f"Subject: {cap(_pick(rng, vocab['topics']))}\n\n{filler_paragraph(rng, vocab)}")


# --- entity blocks ---------------------------------------------------------------------------------

def _paragraph(rng: random.Random, sentences: list[str], vocab: dict) -> str:
    """Entity sentences with up to two filler sentences mixed in, entity order kept."""
    out = list(sentences)
    for _ in range(rng.randrange(3)):
        out.insert(rng.randrange(len(out) + 1), filler_sentence(rng, vocab))
    return " ".join(out)


def block_paragraph(rng, domain, ctx, entities, attributes, vocab) -> str:
    return _paragraph(rng, [full_sentence(rng, mention(rng, domain, ctx, e, attributes)) for e in entities], vocab)


def block_table(rng, domain, ctx, entities, attributes, vocab) -> str:
    a1, a2 = attributes if rng.random() < 0.5 else attributes[::-1]
    status_header = _pick(rng, domain.status_headers)
    headers = [_pick(rng, domain.name_headers), a1.label, a2.label, status_header]
    rows = [[e.name, e.values[a1.key], e.values[a2.key], domain.status_text(rng, e, ctx).label] for e in entities]
    if rng.random() < 0.4:  # status column second
        headers.insert(1, headers.pop())
        for r in rows:
            r.insert(1, r.pop())
    caption = _pick(rng, (f"Table {rng.randrange(1, 30)}. {cap(domain.noun_plural)} covered in this section.",
                          f"The following {domain.noun_plural} were reviewed:",
                          f"Summary of {domain.noun_plural} ({len(entities)} entries):",
                          f"{cap(domain.noun_plural)} at a glance:"))
    return caption + "\n\n" + render_grid(headers, rows, rng.randrange(3))


def block_bullets(rng, domain, ctx, entities, attributes, vocab) -> str:
    style = rng.randrange(3)
    lines = []
    for i, e in enumerate(entities):
        a1, a2 = attributes
        s = domain.status_text(rng, e, ctx)
        v1, v2 = e.values[a1.key], e.values[a2.key]
        if style == 0:
            lines.append(f"- {e.name}: {lower_label(a1.label)} {v1}; {lower_label(a2.label)} {v2}; "
                         f"{domain.status_key} {lower_label(s.label)}")
        elif style == 1:
            lines.append(f"* {e.name} ({lower_label(s.label)}). {a1.label}: {v1}. {a2.label}: {v2}.")
        else:
            lines.append(f"{i + 1}. {e.name} | {a1.label}: {v1} | {a2.label}: {v2} | "
                         f"{cap(domain.status_key)}: {s.label}")
    intro = _pick(rng, (f"Further {domain.noun_plural}:", "Additional entries:", "From the working list:",
                        f"Other {domain.noun_plural} mentioned during the review:"))
    return intro + "\n" + "\n".join(lines)


def block_card(rng, domain, ctx, entities, attributes, vocab) -> str:
    cards = []
    for e in entities:
        s = domain.status_text(rng, e, ctx)
        fields = [(a.label, e.values[a.key]) for a in attributes] + [(cap(domain.status_key), s.label)]
        rng.shuffle(fields)
        head = _pick(rng, (f"{_pick(rng, domain.name_headers)}: {e.name}", f"Entry: {e.name}", e.name))
        indent = _pick(rng, ("", "  ", "    "))
        cards.append(head + "\n" + "\n".join(f"{indent}{k}: {v}" for k, v in fields))
    return "\n\n".join(cards)


def block_qa(rng, domain, ctx, entities, attributes, vocab) -> str:
    parts = []
    for e in entities:
        m = mention(rng, domain, ctx, e, attributes)
        question = _pick(rng, (f"What do we know about {m.R}?", f"Can you summarize the entry for {m.R}?",
                               f"Is there anything to add on {m.R}?"))
        parts.append(f"Q: {question}\nA: {full_sentence(rng, m)}")
    return "\n\n".join(parts)


def block_memo(rng, domain, ctx, entities, attributes, vocab) -> str:
    names = ", ".join(e.name for e in entities)
    body = block_paragraph(rng, domain, ctx, entities, attributes, vocab)
    return (f"From: {_pick(rng, vocab['roles'])}\nTo: {_pick(rng, vocab['subjects'])}\n"
            f"Subject: {_pick(rng, ('Update on', 'Notes about', 'Re:'))} {names}\n\n{body}")


def block_split(rng, domain, ctx, entity, attributes, vocab) -> tuple[str, str]:
    """Two passages about one entity: the first states one attribute and the status, the second
    (placed later in the document) the other attribute."""
    m = mention(rng, domain, ctx, entity, attributes)
    first = _paragraph(rng, [_pick(rng, FIRST_FRAMES).format(**m.fields())], vocab)
    second = _paragraph(rng, [_pick(rng, SECOND_FRAMES).format(**m.fields())], vocab)
    return first, second


# (renderer, min entities, max entities, weight)
BLOCK_KINDS = (
    (block_paragraph, 1, 1, 5),
    (block_paragraph, 2, 3, 3),
    (block_table, 3, 8, 3),
    (block_bullets, 3, 6, 2),
    (block_card, 1, 2, 2),
    (block_qa, 1, 2, 1),
    (block_memo, 1, 2, 1),
)
_SPLIT_WEIGHT = 2


def entity_blocks(rng: random.Random, domain: Domain, ctx: dict, entities: list[Entity], attributes: tuple,
                  vocab: dict) -> list[str]:
    """Render all ``entities`` into blocks, in document order; split mentions keep first before second."""
    pending = list(entities)
    rng.shuffle(pending)
    blocks: list[str] = []
    seconds: list[tuple[int, str]] = []  # (earliest position, text) of split second halves
    total_weight = sum(k[3] for k in BLOCK_KINDS) + _SPLIT_WEIGHT
    while pending:
        r = rng.random() * total_weight
        if r < _SPLIT_WEIGHT:
            first, second = block_split(rng, domain, ctx, pending.pop(), attributes, vocab)
            blocks.append(fix_articles(first))
            seconds.append((len(blocks), fix_articles(second)))
            continue
        r -= _SPLIT_WEIGHT
        for render, lo, hi, weight in BLOCK_KINDS:
            if r < weight:
                break
            r -= weight
        n = min(len(pending), lo + rng.randrange(hi - lo + 1))
        group, pending = pending[:n], pending[n:]
        blocks.append(fix_articles(render(rng, domain, ctx, group, attributes, vocab)))
    # Insert from the last first half backwards: an insertion only shifts blocks after it, so every
    # earlier first half keeps its index and each second half lands after its own first half.
    for earliest, text in reversed(seconds):
        blocks.insert(earliest + rng.randrange(len(blocks) - earliest + 1), text)
    return blocks


# --- document furniture ----------------------------------------------------------------------------

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")


def heading(style: int, number: int, title: str) -> str:
    if style == 0:
        return f"## {title}"
    if style == 1:
        return f"{number}. {title}"
    if style == 2:
        return f"Section {number}: {title}"
    if style == 3:
        return title.upper()
    if style == 4:
        return f"{title}\n{'=' * len(title)}"
    if style == 5:
        return f"**{title}**"
    return f"{_ROMAN[(number - 1) % len(_ROMAN)]}. {title}"


NUM_HEADING_STYLES = 7
