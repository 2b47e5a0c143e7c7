"""Token capacity with offloading: how many token slots the scheduler gets, and how many exact rows.

Stock SGLang divides its KV budget by the exact K+V bytes of a token (all layers). With offloading,
a token costs the GPU only its share of the selector's summary (plus 13 bytes of slot bookkeeping)
once its prompt is offloaded; exact rows are needed only for prompts being prefilled, the exact
windows and generated tokens. So:

    rows  = --kv-offload-exact (a fraction of the stock capacity, or a token count)
    slots = min((budget - rows * exact_bytes) / (summary_bytes + 13),  # GPU
                host_store_bytes / payload_bytes,                     # host
                --max-total-tokens)

Summary and payload bytes per token come from the selector's own accounting (``footprint``) at a
32K-token reference prompt, over every layer. The plan is made once per scheduler process, before
the pools are built (``hooks.config_from_budget``), and logged with both capacities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil
import torch

from sglang_kv.config import ConfigError, OffloadConfig

logger = logging.getLogger("sglang_kv")

REFERENCE_TOKENS = 32768
SLOT_OVERHEAD_BYTES = 8 + 4 + 1  # row_of (int64), pins (int32), offloaded (bool)


@dataclass(frozen=True)
class CapacityPlan:
    stock_tokens: int  # what stock SGLang would hold in the same budget
    slots: int  # token slots the scheduler gets
    rows: int  # exact K/V rows on the GPU
    exact_bytes_per_token: int  # stock K+V bytes of one token over all layers
    summary_bytes_per_token: int  # selector's GPU bytes of one offloaded token over all layers
    payload_bytes_per_token: int  # selector's host bytes of one offloaded token over all layers
    host_store_bytes: int  # size of the host store

    def describe(self, method: str) -> str:
        return (f"KV capacity: stock {self.stock_tokens} token slots ({self.exact_bytes_per_token} B/token); "
                f"--kv-offload {method}: {self.slots} token slots ({self.slots / max(self.stock_tokens, 1):.1f}x), "
                f"{self.rows} exact rows, {self.summary_bytes_per_token} B/token of summary on GPU, "
                f"{self.payload_bytes_per_token} B/token in a {self.host_store_bytes / 2**30:.2f} GiB host store")


_PLAN: CapacityPlan | None = None  # this process's plan (one target model runner per process)


def current_plan() -> CapacityPlan | None:
    return _PLAN


def make_plan(config: OffloadConfig, selector, *, num_layers: int, exact_bytes_per_token: int,
              budget_bytes: int, stock_tokens: int, user_cap: int | None,
              available_host_bytes: int | None = None) -> CapacityPlan:
    """Slots and exact rows for one KV budget (see the module docstring)."""
    global _PLAN
    fp = selector.footprint(REFERENCE_TOKENS)
    summary = -(-fp.gpu_bytes * num_layers // REFERENCE_TOKENS)
    payload = -(-fp.host_bytes * num_layers // REFERENCE_TOKENS)
    if available_host_bytes is None:
        available_host_bytes = psutil.virtual_memory().available
    host_bytes = config.host_mem_bytes(available_host_bytes)
    rows = config.exact_rows(stock_tokens)
    gpu_slots = (budget_bytes - rows * exact_bytes_per_token) // (summary + SLOT_OVERHEAD_BYTES)
    host_slots = host_bytes // max(payload, 1)
    slots = int(min(gpu_slots, host_slots, user_cap if user_cap else gpu_slots))
    if slots < rows:
        if slots <= 0:
            raise ConfigError(f"--kv-offload-host-mem {config.host_mem}: the host store ({host_bytes} B) cannot "
                              f"hold one token ({payload} B of payload)")
        rows = slots
    _PLAN = CapacityPlan(stock_tokens=stock_tokens, slots=slots, rows=rows,
                         exact_bytes_per_token=exact_bytes_per_token, summary_bytes_per_token=summary,
                         payload_bytes_per_token=payload, host_store_bytes=host_bytes)
    return _PLAN


def exact_bytes_per_token(model_config, kv_cache_dtype: torch.dtype, num_layers: int, tp_size: int) -> int:
    """Stock SGLang's K+V bytes of one token over all layers (its ``cell_size`` for MHA models)."""
    return (model_config.get_num_kv_heads(tp_size) * (model_config.head_dim + model_config.v_head_dim)
            * num_layers * torch._utils._element_size(kv_cache_dtype))
