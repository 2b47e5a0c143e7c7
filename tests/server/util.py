"""Small HTTP helpers for the CPU server tests."""

from __future__ import annotations

import random
import time

import requests


def prompt_ids(length: int, seed: int, vocab: tuple[int, int] = (3, 250)) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(*vocab) for _ in range(length)]


def generate(url: str, input_ids, max_new_tokens: int = 24, timeout: float = 300, **extra) -> dict | list:
    """Greedy /generate with token ids (a list of lists sends one batch)."""
    payload = {
        **({"input_ids": input_ids} if input_ids is not None else {}),
        "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0, "ignore_eos": True},
        **extra,
    }
    r = requests.post(f"{url}/generate", json=payload, timeout=timeout)
    r.raise_for_status()
    return r.json()


def chat(url: str, content: str, max_tokens: int = 32, timeout: float = 300) -> dict:
    payload = {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
               "temperature": 0}
    r = requests.post(f"{url}/v1/chat/completions", json=payload, timeout=timeout)
    r.raise_for_status()
    return r.json()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.5):
    """Poll ``predicate()`` until it returns a truthy value; return it, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)
