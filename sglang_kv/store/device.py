"""Device store: SGLang token slots decoupled from exact K/V rows, so capacity can grow.

SGLang gives every token of every request a *slot* and expects exact K/V behind it. With
offloading, a prompt's candidate tokens (outside the exact windows) are needed exact only while the
prompt is prefilled: afterwards the selector's summary (GPU) and payload (host) serve them. So the
scheduler sees ``num_slots`` slots (capacity sized by the compressed per-token bytes, see
``capacity``), while only ``num_rows`` exact K/V rows exist on the GPU:

* every slot SGLang allocates gets an exact row (``row_of[slot]``);
* when a request's prompt is offloaded, the rows of the candidate slots it owns are released
  (``release``); those slots stay allocated to the request until it finishes, without a row;
* a freed slot gives its row back, if it still has one.

Slots without a row are never shared: an offloaded request's own tokens are kept out of the radix
cache (``hooks.cache_unfinished_req``/``cache_finished_req``), so a prefix-cache hit only ever
reuses exact slots. Slot 0 (SGLang's padding slot) maps to row 0, a dummy row.

``TieredKVPool`` is the KV pool (exact rows, writes translated slot -> row); ``TieredTokenAllocator``
is SGLang's token allocator over the slots: it assigns a row to each slot it hands out, reports
``min(free slots, free rows)`` as available (so the scheduler never admits more than fits) and
translates slots for kernels (``translate_kv_loc``, the hook SGLang's Triton backend already uses
for virtual pools).
"""

from __future__ import annotations

import torch
from sglang.srt.mem_cache.allocator.token import TokenToKVPoolAllocator
from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool, unwrap_write_loc


class TieredKVPool(MHATokenToKVPool):
    """MHA KV pool of ``num_rows`` exact rows behind ``num_slots`` slots (see the module docstring).

    ``get_key_buffer``/``get_value_buffer`` return the row-indexed buffers ``[num_rows + 1, H, D]``:
    index them with ``translate(slots)``.
    """

    def __init__(self, num_slots: int, num_rows: int, **mha_kwargs):
        if not 0 < num_rows <= num_slots:
            raise ValueError(f"need 0 < exact rows ({num_rows}) <= slots ({num_slots})")
        super().__init__(num_rows, **mha_kwargs)
        if self.page_size != 1:
            raise ValueError(f"kv-offload needs --page-size 1, got {self.page_size}")
        self.num_slots = num_slots
        self.num_rows = num_rows
        self.row_of = torch.empty(num_slots + 1, dtype=torch.int64, device=self.device)  # [slots + 1]
        self._free_rows = torch.empty(num_rows, dtype=torch.int64, device=self.device)  # stack
        self.reset()

    def reset(self) -> None:
        """Every slot and every row free (SGLang cleared its allocator: startup, cache flush)."""
        self.row_of.fill_(-1)
        self.row_of[0] = 0
        self._free_rows.copy_(torch.arange(1, self.num_rows + 1, device=self._free_rows.device))
        self.num_free_rows = self.num_rows

    # ---- rows ---------------------------------------------------------------------------------
    def translate(self, slots: torch.Tensor) -> torch.Tensor:
        """Exact rows of ``slots`` (any shape), int64; -1 where a slot has none."""
        return self.row_of[slots]

    def assign(self, slots: torch.Tensor) -> None:
        """Give freshly allocated ``slots`` [n] an exact row each."""
        n = slots.numel()
        if n > self.num_free_rows:
            raise RuntimeError(f"kv-offload: {n} exact rows needed, {self.num_free_rows} free")
        top = self.num_free_rows
        self.row_of[slots] = self._free_rows[top - n: top]
        self.num_free_rows = top - n

    def release(self, slots: torch.Tensor) -> None:
        """``slots`` [n] keep their place in SGLang but no longer need exact K/V: free their rows."""
        rows = self.row_of[slots]
        rows = rows[rows > 0]
        n = rows.numel()
        if n:
            top = self.num_free_rows
            self._free_rows[top: top + n] = rows
            self.num_free_rows = top + n
        self.row_of[slots] = -1

    # ---- SGLang's KV pool API -----------------------------------------------------------------
    def set_kv_buffer(self, layer, loc_info, cache_k, cache_v, *args, **kwargs):
        loc, _, full_loc = unwrap_write_loc(loc_info)
        rows = full_loc if full_loc is not None else self.translate(loc)
        return super().set_kv_buffer(layer, rows, cache_k, cache_v, *args, **kwargs)

    def exact_rows_in_use(self) -> int:
        return self.num_rows - self.num_free_rows


class TieredTokenAllocator(TokenToKVPoolAllocator):
    """SGLang's token allocator over the slots of a ``TieredKVPool``."""

    def __init__(self, size: int, dtype: torch.dtype, device: str, kvcache: TieredKVPool, need_sort: bool):
        super().__init__(size, dtype, device, kvcache, need_sort)
        self.pool = kvcache

    def clear(self):
        super().clear()
        if isinstance(self._kvcache, TieredKVPool):  # also called from the base __init__
            self._kvcache.reset()

    def free_slots(self) -> int:
        return super().available_size()

    def available_size(self) -> int:
        return min(super().available_size(), self.pool.num_free_rows)

    def alloc(self, need_size: int):
        if need_size > self.pool.num_free_rows:
            return None
        slots = super().alloc(need_size)
        if slots is not None:
            self.pool.assign(slots)
        return slots

    def free(self, free_index: torch.Tensor):
        if free_index.numel() and self.is_not_in_free_group:
            self.pool.release(free_index)
        return super().free(free_index)

    def translate_kv_loc(self, virt_tokens: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows for kernels: slots without a row (offloaded) read the dummy row 0; only the decode
        rows of offloaded requests in a mixed batch touch them, and the offload backend replaces
        those outputs."""
        rows = self.pool.translate(virt_tokens).clamp_min(0)  # noqa: the docstring says why
        if out is None:
            return rows
        return out.copy_(rows)
