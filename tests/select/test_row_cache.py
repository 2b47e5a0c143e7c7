"""The device cache's step plan (``row_cache.plan``) against a plain-Python LRU cache per request."""

from __future__ import annotations

import random

import pytest
import torch

from sglang_kv.select import row_cache


class PyCache:
    """The documented policy, one request: hits keep their slot; each miss takes the least recently
    read slot not read this step (empty slots first, then lower slot index on equal stamps)."""

    def __init__(self, capacity):
        self.row = [-1] * capacity
        self.stamp = [-1] * capacity

    def step(self, rows, step):
        slots, fills, hits = [], [], 0
        hit_slots = {self.row.index(r) for r in rows if r in self.row}
        free = sorted((s for s in range(len(self.row)) if s not in hit_slots), key=lambda s: (self.stamp[s], s))
        for r in rows:
            if r in self.row:
                slots.append(self.row.index(r)), fills.append(False)
                hits += 1
            elif free:
                s = free.pop(0)
                self.row[s] = r
                slots.append(s), fills.append(True)
            else:
                slots.append(-1), fills.append(False)
        for s in slots:
            if s >= 0:
                self.stamp[s] = step
        return slots, fills, hits


@pytest.mark.parametrize("seed", range(4))
def test_plan_matches_a_python_lru_over_steps(seed):
    rnd = random.Random(seed)
    capacities, num_rows = [6, 0, 3, 10], 24
    tables = [row_cache.new_cache(c, {}, torch.device("cpu")) for c in capacities]
    models = [PyCache(c) for c in capacities]
    total_hits = 0
    for step in range(12):
        want = [sorted(rnd.sample(range(num_rows), rnd.randint(0, 9))) for _ in capacities]
        request = torch.tensor([b for b, rows in enumerate(want) for _ in rows], dtype=torch.int64)
        row = torch.tensor([r for rows in want for r in rows], dtype=torch.int64)
        got = row_cache.plan([t[row_cache.ROW_KEY] for t in tables], [t[row_cache.STAMP_KEY] for t in tables],
                             request, row, num_rows, step)
        slots, fills, hits = [], [], 0
        for model, rows in zip(models, want):
            s, f, h = model.step(rows, step)
            slots += s
            fills += f
            hits += h
        assert got.slot.tolist() == slots, f"step {step}"
        assert got.fill.tolist() == fills
        assert got.hits == hits
        total_hits += hits
        for t, model in zip(tables, models):
            assert t[row_cache.ROW_KEY].tolist() == model.row
            assert t[row_cache.STAMP_KEY].tolist() == model.stamp
    assert total_hits > 0  # the walk revisits rows, so the test exercises hits


def test_new_cache_shapes():
    payload = {"k_codes": torch.zeros(5, 16, dtype=torch.uint8), "k_scales": torch.zeros(5, 1, dtype=torch.float16)}
    cache = row_cache.new_cache(3, payload, torch.device("cpu"))
    assert cache["cache_k_codes"].shape == (3, 16) and cache["cache_k_scales"].dtype == torch.float16
    assert cache[row_cache.ROW_KEY].tolist() == [-1, -1, -1]
