"""Device cache of offloaded payload rows: consecutive decode steps select mostly the same tokens, so
each request keeps a GPU copy of the payload rows it read recently and reads only the others from
host memory (as ShadowKV and SGLang's HiSparse do).

A cache belongs to one request and layer and lives in its summary's ``device`` dict, so it is
created with the summary and freed with it:

* ``cache_row`` int64 ``[C]``: the payload row each slot holds (-1: empty);
* ``cache_stamp`` int64 ``[C]``: the step that last read the slot (-1: never);
* ``cache_<name>`` ``[C, ...]``: the slot's copy of payload tensor ``<name>`` (a row of it).

A *row* is whatever the payload store is indexed by: a token (whole-token payload groups) or a
(token, kv head) pair (per-head groups). Each step, :func:`plan` looks up every requested row of
every request of the batch at once: a hit is read from its slot; a miss takes the least recently
read slot that this step does not read, and is copied there from the host (a *fill*); a miss with no
such slot left (more rows requested than the cache holds) is read from the host directly (*bypass*).
Requested rows and their slots never change the values read: the cache holds the same bytes as the
host store.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sglang_kv.devices import device_ints

ROW_KEY = "cache_row"
STAMP_KEY = "cache_stamp"
PREFIX = "cache_"
META_BYTES_PER_SLOT = 16  # cache_row + cache_stamp (int64)


def new_cache(capacity: int, rows: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Empty cache tensors of ``capacity`` slots for payload tensors ``rows`` (name -> ``[L, ...]``;
    a slot holds one row of each)."""
    cache = {ROW_KEY: torch.full((capacity,), -1, dtype=torch.int64, device=device),
             STAMP_KEY: torch.full((capacity,), -1, dtype=torch.int64, device=device)}
    for name, t in rows.items():
        cache[PREFIX + name] = torch.zeros((capacity, *t.shape[1:]), dtype=t.dtype, device=device)
    return cache


class CachePlan(NamedTuple):
    """Where each requested row is read from this step (rows ``i`` of :func:`plan`'s inputs)."""

    slot: torch.Tensor  # int64 [n]: the slot of its request's cache serving row i; -1: read from host
    fill: torch.Tensor  # bool [n]: row i is copied host -> slot[i] before the read
    hits: torch.Tensor  # int64 0-d, on the device: rows served by a slot that already held them


def plan(row_tables: list[torch.Tensor], stamp_tables: list[torch.Tensor], request: torch.Tensor,
         row: torch.Tensor, num_rows: int, step: int) -> CachePlan:
    """Look up and place the rows one step reads, updating the caches' ``cache_row`` / ``cache_stamp``.

    row_tables[b], stamp_tables[b]: request ``b``'s ``cache_row`` / ``cache_stamp`` (``[C_b]``, any
    ``C_b >= 0``). request, row: int64 ``[n]``, the (request, row) pairs read, sorted by request
    then row and distinct, every row ``< num_rows``. step: larger than every earlier step's (the LRU
    clock). All on one device; no host sync (the hit count stays on the device).
    """
    device = row.device
    n = row.numel()
    sizes = [t.numel() for t in row_tables]
    total = sum(sizes)
    if total == 0 or n == 0:
        return CachePlan(torch.full((n,), -1, dtype=torch.int64, device=device),
                         torch.zeros(n, dtype=torch.bool, device=device),
                         torch.zeros((), dtype=torch.int64, device=device))
    span = num_rows + 1  # key = request * span + row; an empty slot's row is num_rows
    size = device_ints(sizes, device)  # (B,)
    offsets = size.cumsum(0) - size  # (B,) first flat slot of each request
    owner = torch.repeat_interleave(torch.arange(len(sizes), device=device), size, output_size=total)
    cached = torch.cat([*row_tables, row.new_zeros(1)])  # (total + 1,): the last entry absorbs unused writes
    stamp = torch.cat([*stamp_tables, row.new_zeros(1)])
    # hits: the requested (request, row) keys among the cached ones
    slot_keys = owner * span + torch.where(cached[:total] >= 0, cached[:total], num_rows)
    sorted_keys, order = torch.sort(slot_keys)
    keys = request * span + row
    at = torch.searchsorted(sorted_keys, keys).clamp_(max=total - 1)
    hit = sorted_keys[at] == keys
    hit_flat = torch.where(hit, order[at], total)
    # victims: per request, the slots not hit this step, least recently read first
    used = torch.zeros(total + 1, dtype=torch.long, device=device).index_fill_(0, hit_flat, 1)[:total]
    victims = torch.sort(owner * (1 << 50) + used * (1 << 49) + (stamp[:total] + 1), stable=True).indices  # by owner
    free = size - torch.zeros_like(size).index_add_(0, request, hit.long())  # (B,) slots not hit
    miss = (~hit).long()
    misses_before = miss.cumsum(0) - miss  # (n,) misses among rows [0, i)
    first = torch.searchsorted(request, request)  # each row's request's first row (rows sorted by request)
    rank = misses_before - misses_before[first]  # rank of a miss among its request's misses
    fill = (miss > 0) & (rank < free[request])
    victim = victims[(offsets[request] + rank).clamp_(max=total - 1)]
    flat = torch.where(hit, hit_flat, torch.where(fill, victim, -1))  # (n,)
    cached.scatter_(0, torch.where(fill, victim, total), row)
    stamp.scatter_(0, torch.where(flat >= 0, flat, total), torch.full_like(row, step))
    torch._foreach_copy_(row_tables, list(cached[:total].split(sizes)))
    torch._foreach_copy_(stamp_tables, list(stamp[:total].split(sizes)))
    slot = torch.where(flat >= 0, flat - offsets[request], -1)
    return CachePlan(slot, fill, hit.sum())
