"""Prompt sources: text2json records, or synthetic lengths as bench_serving's ``random`` dataset.

A source is a callable returning the next :class:`Prompt`. Every source draws from its own
seeded ``random.Random``; give each load-generating process its own seed (the locustfile adds the
worker index) so that workers do not send identical prompt sequences, which the server's prefix
cache would serve for free.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import NamedTuple

from text2json.data import load_records

# Short common English words: each is one token for typical BPE vocabularies when preceded by a
# space, so N words make a prompt of about N tokens.
_WORDS = (
    "the of and to in is was for on are with as his they be at one have this from or had by hot "
    "word but what some we can out other were all there when up use your how said an each she "
    "which do their time if will way about many then them write would like so these her long make "
    "thing see him two has look more day could go come did number sound no most people my over "
    "know water than call first who may down side been now find any new work part take get place "
    "made live where after back little only round man year came show every good me give our under"
).split()


class Prompt(NamedTuple):
    text: str | None  # the user turn (chat) or raw text (/generate); None with input_ids
    input_ids: tuple[int, ...] | None  # token ids for /generate on --skip-tokenizer-init servers
    max_tokens: int  # max_completion_tokens (chat) / max_new_tokens (/generate)
    ignore_eos: bool  # synthetic prompts generate exactly max_tokens, as bench_serving's random


def load_problems(path: str | os.PathLike) -> list[str]:
    """The prompts (``problem`` fields) of a text2json dataset: a build folder, our JSON lines or
    the published file, read by ``text2json.data.load_records``."""
    problems = [record["problem"] for record in load_records(path)]
    if not problems:
        raise ValueError(f"{path}: no records")
    return problems


def random_len(rng: random.Random, full_len: int, range_ratio: float) -> int:
    """bench_serving's ``compute_random_lens``: uniform in [max(int(full_len * ratio), 1), full_len]."""
    return rng.randint(max(int(full_len * range_ratio), 1), full_len)


class DatasetPrompts:
    """Text prompts cycling through ``problems``, reshuffled (seeded) on every pass."""

    def __init__(self, problems: Sequence[str], max_tokens: int, seed: int) -> None:
        if not problems:
            raise ValueError("problems is empty")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self._problems = list(problems)
        self._max_tokens = max_tokens
        self._rng = random.Random(seed)
        self._order: list[int] = []

    def __call__(self) -> Prompt:
        if not self._order:
            self._order = list(range(len(self._problems)))
            self._rng.shuffle(self._order)
        return Prompt(self._problems[self._order.pop()], None, self._max_tokens, ignore_eos=False)


class _RandomLengths:
    def __init__(self, input_len: int, output_len: int, range_ratio: float, seed: int) -> None:
        if input_len < 1 or output_len < 1:
            raise ValueError(f"input_len and output_len must be >= 1, got {input_len}, {output_len}")
        if not 0.0 <= range_ratio <= 1.0:
            raise ValueError(f"range_ratio must be in [0, 1], got {range_ratio}")
        self.input_len, self.output_len, self.range_ratio = input_len, output_len, range_ratio
        self._rng = random.Random(seed)

    def _lens(self) -> tuple[int, int]:
        return (random_len(self._rng, self.input_len, self.range_ratio),
                random_len(self._rng, self.output_len, self.range_ratio))


class RandomTextPrompts(_RandomLengths):
    """Random-word text of about the drawn input length (the server's usage gives the exact count)."""

    def __call__(self) -> Prompt:
        num_words, max_tokens = self._lens()
        text = " ".join(self._rng.choices(_WORDS, k=num_words))
        return Prompt(text, None, max_tokens, ignore_eos=True)


class RandomTokenPrompts(_RandomLengths):
    """Random token ids in [first_id, vocab_size), exactly the drawn input length.

    ``first_id`` keeps clear of the low ids where most vocabularies put their special tokens.
    """

    def __init__(self, input_len: int, output_len: int, range_ratio: float, seed: int,
                 vocab_size: int, first_id: int = 10) -> None:
        super().__init__(input_len, output_len, range_ratio, seed)
        if not 0 <= first_id < vocab_size:
            raise ValueError(f"need 0 <= first_id < vocab_size, got {first_id}, {vocab_size}")
        self.vocab_size, self.first_id = vocab_size, first_id

    def __call__(self) -> Prompt:
        num_ids, max_tokens = self._lens()
        ids = tuple(self._rng.randrange(self.first_id, self.vocab_size) for _ in range(num_ids))
        return Prompt(None, ids, max_tokens, ignore_eos=True)
