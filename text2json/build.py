"""Build the text2json benchmark: samples of fitted length, written as JSONL, Parquet, card and manifest.

A build is a named variant (family + arguments, like RULER's yaml variants) plus a seed and a
tokenizer. Sample ``i`` depends only on the variant, ``seed + i``, its planned domain and target
length, and the tokenizer, so any sample can be rebuilt alone (the tests rebuild a few samples of
the full build and compare them with the committed manifest).

Record schema (one JSON object per line of ``test.jsonl``; the published format is the first two):

    problem          str   the whole user turn: instruction, then the document
    answer           str   JSON list of {"name": ..., <key1>: ..., <key2>: ...}, all values strings
    id               str   "<domain>-<index:04d>"
    index            int   position in the build
    domain           str   products | medical | organizations | movies
    attributes       list  the two attribute keys asked for
    num_entities     int   gold entities (objects in ``answer``)
    num_distractors  int   near-duplicates the selection rule excludes
    num_tokens       int   chat-templated prompt tokens + answer budget (the fitted length)
    prompt_tokens    int   chat-templated prompt tokens
    answer_tokens    int   tokens of ``answer``
    target_tokens    int   the planned length ``num_tokens`` was fitted to (never exceeded)
    seed             int   the sample's RNG seed (build seed + index)
    preset           str   the variant's name
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

from text2json import prose
from text2json import words as W
from text2json.domains import DOMAIN_NAMES, DOMAINS, Domain, Entity, EntitySeed, make_entity
from text2json.templates import instruction

# Bump when any change alters built bytes (word lists, phrasing, layout, fitting, file formats).
GENERATOR_VERSION = "text2json-gen-1"

# The fit stops at the last filler unit that keeps the prompt within target, so it undershoots by at
# most one unit (a sentence, or a short list/table/quote): targets start this far above the minimum.
_UNDERSHOOT_MARGIN = 320


@dataclass(frozen=True)
class BuildArgs:
    """Arguments of the ``extraction`` family. Token figures count the chat-templated prompt plus the
    answer budget, measured with the build's tokenizer."""

    num_samples: int
    min_tokens: int
    max_tokens: int
    mean_tokens: int | None  # targets follow a shifted log-normal with this mean; None: uniform
    gold_at_min: tuple[int, int]  # range of gold entities for the shortest targets
    gold_at_max: tuple[int, int]  # ... and for the longest; interpolated in between
    distractors_per_gold: tuple[float, float] = (0.4, 0.8)
    tokens_per_extra_distractor: int = 2500  # one more distractor per this many target tokens
    answer_budget: int = 1024
    max_answer_tokens: int = 900  # gold answers longer than this lose their last entities
    tokens_per_section: int = 1800

    def __post_init__(self):
        if not 0 < self.min_tokens + _UNDERSHOOT_MARGIN < self.max_tokens:
            raise ValueError(f"need 0 < min_tokens + {_UNDERSHOOT_MARGIN} < max_tokens, got "
                             f"min_tokens={self.min_tokens}, max_tokens={self.max_tokens}")
        if self.mean_tokens is not None and not self.min_tokens < self.mean_tokens < self.max_tokens:
            raise ValueError(f"mean_tokens={self.mean_tokens} must lie between min_tokens and max_tokens")
        if self.max_answer_tokens > self.answer_budget:
            raise ValueError(f"max_answer_tokens={self.max_answer_tokens} exceeds answer_budget="
                             f"{self.answer_budget}")
        for lo, hi in (self.gold_at_min, self.gold_at_max):
            if not 1 <= lo <= hi:
                raise ValueError(f"gold entity ranges need 1 <= lo <= hi, got {self.gold_at_min}, "
                                 f"{self.gold_at_max}")


@dataclass(frozen=True)
class Variant:
    family: str
    args: BuildArgs


PRESETS: dict[str, Variant] = {
    # The published shape: 500 samples, mean about 20,100 tokens, 10,000 to 63,500.
    "full": Variant("extraction", BuildArgs(num_samples=500, min_tokens=10_000, max_tokens=63_500,
                                            mean_tokens=20_100, gold_at_min=(12, 20), gold_at_max=(24, 32))),
    # Short documents for small models (SmolLM2-135M-Instruct, 8K context): 2K-7K tokens, 3-8 entities.
    "mini": Variant("extraction", BuildArgs(num_samples=200, min_tokens=2_000, max_tokens=7_000,
                                            mean_tokens=None, gold_at_min=(3, 5), gold_at_max=(6, 8))),
}


class SamplePlan(NamedTuple):
    index: int
    domain: str
    target_tokens: int
    seed: int  # build seed + index


def _lognormal_quantiles(lo: float, hi: float, mean: float, num_ref: int, num_samples: int) -> list[float]:
    """Quantile points ``c + exp(mu + sigma * z)`` of a shifted log-normal whose ``num_ref`` quantile
    points (i + 0.5) / num_ref run exactly from ``lo`` to ``hi`` with mean ``mean``.

    For a shift ``c`` the two ends fix ``mu`` and ``sigma``; the mean of the points then falls as
    ``c`` rises from far below ``lo`` (a near-symmetric shape, mean near the midpoint) to a minimum,
    and rises again as ``c`` approaches ``lo``. We take the root on the falling branch: the least
    skewed shape with the requested mean."""
    normal = statistics.NormalDist()
    z_top = normal.inv_cdf(1 - 0.5 / num_ref)

    def params(c: float) -> tuple[float, float]:
        return (math.log(hi - c) + math.log(lo - c)) / 2, math.log((hi - c) / (lo - c)) / (2 * z_top)

    def z_points(n: int) -> list[float]:
        return [normal.inv_cdf((i + 0.5) / n) for i in range(n)]

    def points(c: float, zs: list[float]) -> list[float]:
        mu, sigma = params(c)
        return [c + math.exp(mu + sigma * z) for z in zs]

    zs_ref = z_points(num_ref)
    mean_at = lambda c: statistics.fmean(points(c, zs_ref))  # noqa: E731
    # Walk the shift up towards lo (gap lo - c shrinking geometrically) until the mean drops to target.
    gap, prev_mean = 100.0 * (hi - lo), math.inf
    while (m := mean_at(lo - gap)) > mean:
        if m > prev_mean or gap < 1e-6 * (hi - lo):
            raise ValueError(f"no shifted log-normal spans {lo:.0f}-{hi:.0f} with mean {mean}")
        gap, prev_mean = gap * 0.9, m
    if prev_mean == math.inf:
        raise ValueError(f"mean {mean} is too close to the midpoint of {lo:.0f}-{hi:.0f} for a skewed shape")
    above, c = lo - gap / 0.9, lo - gap
    for _ in range(60):  # bisect the crossing: mean_at(above) > mean >= mean_at(c)
        mid = (above + c) / 2
        if mean_at(mid) > mean:
            above = mid
        else:
            c = mid
    return points(c, zs_ref if num_samples == num_ref else z_points(num_samples))


def target_lengths(args: BuildArgs, num_samples: int, seed: int) -> list[int]:
    """Planned lengths, shuffled by ``seed``. Quantile points, not random draws, so the mean and
    range do not depend on the seed. With ``mean_tokens`` the shape is a shifted log-normal whose
    ``args.num_samples`` points run from ``min_tokens`` (plus the undershoot margin) to
    ``max_tokens`` with mean ``mean_tokens``; otherwise the points are uniform over that range."""
    lo, hi = args.min_tokens + _UNDERSHOOT_MARGIN, args.max_tokens
    if args.mean_tokens is None:
        targets = [lo + (hi - lo) * (i + 0.5) / num_samples for i in range(num_samples)]
    else:
        targets = _lognormal_quantiles(lo, hi, args.mean_tokens, args.num_samples, num_samples)
    targets = [min(hi, max(lo, int(round(t)))) for t in targets]
    random.Random(seed).shuffle(targets)
    return targets


def plan_samples(args: BuildArgs, seed: int, num_samples: int | None = None) -> list[SamplePlan]:
    """Domain (round robin, so every domain gets a quarter) and target length of each sample."""
    n = args.num_samples if num_samples is None else num_samples
    if n < 1:
        raise ValueError(f"--num-samples must be at least 1, got {n}")
    targets = target_lengths(args, n, seed)
    return [SamplePlan(i, DOMAIN_NAMES[i % len(DOMAIN_NAMES)], targets[i], seed + i) for i in range(n)]


# --- entities --------------------------------------------------------------------------------------

def _name_conflicts(name: str, taken: set[str]) -> bool:
    """A new name may not contain, or be contained in, another name of the sample: a prefix such as
    "Korvik Pulse 31" inside "Korvik Pulse 310" would make the verbatim check and the scoring ambiguous."""
    return any(name in t or t in name for t in taken)


def _gold_seeds(rng: random.Random, domain: Domain, ctx: dict, n: int) -> list[EntitySeed]:
    seeds: list[EntitySeed] = []
    taken: set[str] = set()
    for _ in range(n):
        for _attempt in range(500):
            seed = domain.gold_seed(rng, ctx)
            if not _name_conflicts(seed.name, taken):
                break
        else:
            raise ValueError(f"{domain.name}: could not draw {n} distinct gold names")
        seeds.append(seed)
        taken.add(seed.name)
    return seeds


def _distractor_seeds(rng: random.Random, domain: Domain, ctx: dict, gold: list[Entity], n: int,
                      taken: set[str]) -> list[tuple[EntitySeed, Entity]]:
    """Near-duplicates of random gold entities. Movies share a title with their twin (and differ in
    year); every other domain gets a new name that conflicts with no other name."""
    out = []
    years: dict[str, set] = {e.name: {e.facts.get("year")} for e in gold}
    for _ in range(n):
        for _attempt in range(200):
            twin = gold[rng.randrange(len(gold))]
            seed = domain.near_duplicate(rng, ctx, EntitySeed(twin.name, True, twin.status, twin.facts))
            if seed.name in taken:
                year = seed.facts.get("year")
                if year is not None and year not in years.setdefault(seed.name, set()):
                    years[seed.name].add(year)
                    break
            elif not _name_conflicts(seed.name, taken):
                taken.add(seed.name)
                break
        else:
            raise ValueError(f"{domain.name}: could not draw {n} distinct near-duplicate distractors")
        out.append((seed, twin))
    return out


def _answer_json(gold: list[Entity]) -> str:
    return json.dumps([{"name": e.name, **e.values} for e in gold], ensure_ascii=False)


# --- filler stream and layout ----------------------------------------------------------------------

class _FillerStream:
    """Filler units in a fixed order, generated on demand and counted once each: a unit is one prose
    sentence (``starts_paragraph`` says whether it opens a paragraph) or a whole list/table/quote."""

    def __init__(self, rng: random.Random, vocab: dict, counter):
        self._rng, self._vocab, self._counter = rng, vocab, counter
        self.texts: list[str] = []
        self.is_sentence: list[bool] = []
        self.starts_paragraph: list[bool] = []
        self.prefix_tokens = [0]  # prefix_tokens[k] = tokens of the first k units, counted separately
        self._left_in_paragraph = 0

    def extend(self, num_units: int) -> None:
        rng, new = self._rng, []
        for _ in range(num_units):
            if self._left_in_paragraph == 0:
                if rng.random() < 0.2:
                    new.append(prose.filler_extra(rng, self._vocab))
                    self.is_sentence.append(False)
                    self.starts_paragraph.append(True)
                    continue
                self._left_in_paragraph = 3 + rng.randrange(5)
                self.starts_paragraph.append(True)
            else:
                self.starts_paragraph.append(False)
            new.append(prose.filler_sentence(rng, self._vocab))
            self.is_sentence.append(True)
            self._left_in_paragraph -= 1
        self.texts.extend(new)
        for n in self._counter.count_many(new):
            self.prefix_tokens.append(self.prefix_tokens[-1] + n + 1)  # + 1 for the joining space/newline


@dataclass(frozen=True)
class _Layout:
    head: str  # instruction and document title
    headings: list[str]
    heading_fracs: list[float]  # where sections 2.. start, as fractions of the document
    blocks: list[str]  # entity blocks in document order
    block_fracs: list[float]  # sorted positions of the entity blocks

    def render(self, stream: _FillerStream, k: int) -> str:
        """The problem with the first ``k`` filler units and every entity block spread among them."""
        insert_at = [round(f * k) for f in self.block_fracs]
        seq: list[tuple[bool, int]] = []  # (is entity block, index)
        j = 0
        for i in range(k + 1):
            while j < len(self.blocks) and insert_at[j] == i:
                seq.append((True, j))
                j += 1
            if i < k:
                seq.append((False, i))
        breaks = {max(1, round(f * len(seq))): h for f, h in zip(self.heading_fracs, self.headings[1:])}
        pieces = [self.head, self.headings[0]]
        paragraph: list[str] = []

        def flush():
            if paragraph:
                pieces.append(" ".join(paragraph))
                paragraph.clear()

        for pos, (is_block, idx) in enumerate(seq):
            if pos in breaks:
                flush()
                pieces.append(breaks[pos])
            if is_block:
                flush()
                pieces.append(self.blocks[idx])
            elif stream.is_sentence[idx]:
                if stream.starts_paragraph[idx]:
                    flush()
                paragraph.append(stream.texts[idx])
            else:
                flush()
                pieces.append(stream.texts[idx])
        flush()
        return "\n\n".join(pieces)


def _fit(layout: _Layout, stream: _FillerStream, counter, budget: int) -> tuple[str, int]:
    """Largest number of filler units whose templated prompt has at most ``budget`` tokens.

    Piece counts (each unit counted once) give an estimate; exact counts of the assembled prompt
    then bracket and bisect, so only a handful of full prompts are tokenized per sample."""
    exact_cache: dict[int, int] = {}

    def exact(k: int) -> int:
        if k not in exact_cache:
            while len(stream.texts) < k:
                stream.extend(64)
            exact_cache[k] = counter.prompt_len(layout.render(stream, k))
        return exact_cache[k]

    fixed = exact(0)
    if fixed > budget:
        raise ValueError(f"instruction and entity blocks alone take {fixed} prompt tokens, more than the "
                         f"budget of {budget}; lower the entity counts or raise the target")
    while stream.prefix_tokens[-1] + fixed <= budget:
        stream.extend(256)
    k = bisect.bisect_right(stream.prefix_tokens, budget - fixed) - 1  # estimate
    lo, step = k, 8
    while lo > 0 and exact(lo) > budget:
        lo, step = max(0, lo - step), step * 2
    hi, step = lo + 1, 8
    while exact(hi) <= budget:
        lo, hi, step = hi, hi + step, step * 2
    while hi - lo > 1:  # invariant: exact(lo) <= budget < exact(hi)
        mid = (lo + hi) // 2
        if exact(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return layout.render(stream, lo), exact(lo)


# --- one sample ------------------------------------------------------------------------------------

def _interpolate(args: BuildArgs, target: int) -> tuple[int, int]:
    frac = min(1.0, max(0.0, (target - args.min_tokens) / (args.max_tokens - args.min_tokens)))
    lo = round(args.gold_at_min[0] + frac * (args.gold_at_max[0] - args.gold_at_min[0]))
    hi = round(args.gold_at_min[1] + frac * (args.gold_at_max[1] - args.gold_at_min[1]))
    return lo, hi


def build_sample(plan: SamplePlan, args: BuildArgs, counter, preset: str) -> dict:
    """One record (see the module docstring). Raises ``ValueError`` if a check fails."""
    rng = random.Random(plan.seed)
    domain = DOMAINS[plan.domain]
    ctx = domain.new_context(rng)
    attributes = tuple(rng.sample(domain.attribute_pool(ctx), 2))

    lo, hi = _interpolate(args, plan.target_tokens)
    gold = [make_entity(rng, s, attributes) for s in _gold_seeds(rng, domain, ctx, lo + rng.randrange(hi - lo + 1))]
    while len(gold) > 1 and counter.count(_answer_json(gold)) > args.max_answer_tokens:
        gold.pop()
    low, high = args.distractors_per_gold
    num_distractors = round(len(gold) * (low + (high - low) * rng.random())
                            + plan.target_tokens / args.tokens_per_extra_distractor)
    taken = {e.name for e in gold}
    distractors = [make_entity(rng, s, attributes, avoid=twin.values)
                   for s, twin in _distractor_seeds(rng, domain, ctx, gold, num_distractors, taken)]

    vocab = W.FILLER_VOCAB[domain.name]
    blocks = prose.entity_blocks(rng, domain, ctx, gold + distractors, attributes, vocab)
    title, desc = domain.title(rng, ctx)
    head = instruction(rng, domain, ctx, attributes, desc) + _pick_title_style(rng, title)
    num_sections = max(2, round(plan.target_tokens / args.tokens_per_section))
    style = rng.randrange(prose.NUM_HEADING_STYLES)
    headings = [prose.heading(style, i + 1, t) for i, t in enumerate(_section_titles(rng, domain, num_sections))]
    layout = _Layout(head=head, headings=headings,
                     heading_fracs=sorted(rng.random() for _ in range(num_sections - 1)),
                     blocks=blocks, block_fracs=sorted(rng.random() for _ in blocks))
    stream = _FillerStream(rng, vocab, counter)
    problem, prompt_tokens = _fit(layout, stream, counter, plan.target_tokens - args.answer_budget)

    doc_start = len(head)
    gold.sort(key=lambda e: problem.find(e.name, doc_start))
    answer = _answer_json(gold)
    record = {
        "problem": problem, "answer": answer, "id": f"{plan.domain}-{plan.index:04d}", "index": plan.index,
        "domain": plan.domain, "attributes": [a.key for a in attributes], "num_entities": len(gold),
        "num_distractors": len(distractors), "num_tokens": prompt_tokens + args.answer_budget,
        "prompt_tokens": prompt_tokens, "answer_tokens": counter.count(answer),
        "target_tokens": plan.target_tokens, "seed": plan.seed, "preset": preset,
    }
    check_record(record, args)
    return record


def _section_titles(rng: random.Random, domain: Domain, num_sections: int) -> list[str]:
    opening, middle, closing = W.SECTION_TITLES[domain.name]
    middle = list(middle)
    rng.shuffle(middle)
    inner = [middle[i % len(middle)] + ("" if i < len(middle) else f" (part {i // len(middle) + 1})")
             for i in range(num_sections - 2)]
    return [opening[rng.randrange(len(opening))], *inner, closing[rng.randrange(len(closing))]]


def _pick_title_style(rng: random.Random, title: str) -> str:
    return (f"# {title}", title.upper(), title, f"{title}\n{'-' * len(title)}")[rng.randrange(4)]


def check_record(record: dict, args: BuildArgs) -> None:
    """The invariants every built sample satisfies; raises ``ValueError`` naming the sample."""
    rid = record["id"]
    gold = json.loads(record["answer"])
    names = [g["name"] for g in gold]
    if len(set(names)) != len(names):
        raise ValueError(f"{rid}: duplicate gold names")
    for g in gold:
        if list(g) != ["name", *record["attributes"]]:
            raise ValueError(f"{rid}: gold entity keys {list(g)} != name + {record['attributes']}")
        for key, value in g.items():
            if not isinstance(value, str) or value not in record["problem"]:
                raise ValueError(f"{rid}: gold {key}={value!r} does not appear verbatim in the problem")
            if "[" in value or "]" in value:
                raise ValueError(f"{rid}: gold {key}={value!r} contains a bracket")
    if not args.min_tokens <= record["num_tokens"] <= min(args.max_tokens, record["target_tokens"]):
        raise ValueError(f"{rid}: num_tokens={record['num_tokens']} outside [{args.min_tokens}, "
                         f"min({args.max_tokens}, target {record['target_tokens']})]")
    if record["answer_tokens"] > args.answer_budget:
        raise ValueError(f"{rid}: answer_tokens={record['answer_tokens']} exceeds the answer budget")


# --- a whole build ---------------------------------------------------------------------------------

SAMPLE_BUILDERS: dict[str, Callable[..., dict]] = {"extraction": build_sample}


def build_records(variant: Variant, preset: str, seed: int, counter, num_samples: int | None = None,
                  indices: list[int] | None = None, progress: bool = False) -> list[dict]:
    """Records of a build in index order (``indices`` picks a subset of the planned samples)."""
    builder = SAMPLE_BUILDERS[variant.family]
    plans = plan_samples(variant.args, seed, num_samples)
    if indices is not None:
        plans = [plans[i] for i in indices]
    if progress:
        from tqdm import tqdm

        plans = tqdm(plans, desc=f"text2json build {preset}", unit="sample")
    return [builder(p, variant.args, counter, preset) for p in plans]


def record_line(record: dict) -> str:
    """The exact JSONL line (without newline) of a record; its sha256 goes into the manifest."""
    return json.dumps(record, ensure_ascii=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def length_stats(records: list[dict]) -> dict:
    tokens = [r["num_tokens"] for r in records]
    per_domain = {d: sum(r["domain"] == d for r in records) for d in DOMAIN_NAMES}
    return {
        "num_samples": len(records), "per_domain": per_domain,
        "num_tokens_mean": round(statistics.fmean(tokens), 1), "num_tokens_min": min(tokens),
        "num_tokens_max": max(tokens), "num_tokens_median": statistics.median(tokens),
        "num_entities_mean": round(statistics.fmean(r["num_entities"] for r in records), 2),
        "num_entities_max": max(r["num_entities"] for r in records),
        "answer_tokens_max": max(r["answer_tokens"] for r in records),
    }


def build_manifest(records: list[dict], variant: Variant, preset: str, seed: int, counter,
                   files: dict[str, bytes]) -> dict:
    """Everything that determines the bytes, the per-file and per-sample sha256, and length stats.
    No timestamps or timings: two identical builds have identical manifests."""
    import pyarrow

    return {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "family": variant.family,
        "args": asdict(variant.args),
        "seed": seed,
        "num_samples": len(records),
        "tokenizer": {"name": counter.name, "fingerprint": counter.fingerprint},
        "writer": {"pyarrow": pyarrow.__version__},
        "stats": length_stats(records),
        "files": {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in sorted(files.items())},
        "samples": [{"id": r["id"], "domain": r["domain"], "num_tokens": r["num_tokens"],
                     "num_entities": r["num_entities"], "target_tokens": r["target_tokens"],
                     "sha256": sha256_hex(record_line(r).encode())} for r in records],
    }
