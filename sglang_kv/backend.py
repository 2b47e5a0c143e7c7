"""The SGLang attention backend that drives prefill -> offload -> sparse decode.

``OffloadAttnBackend`` wraps the stock backend SGLang would have used (``--attention-backend``):

* extend (prefill, chunked prefill, prefix-cache hits): delegated unchanged, so prefill attention
  is exact and K/V land in SGLang's KV pool as usual;
* decode: a request's first decode step fixes its prompt length and creates its state; per layer
  the selector summarizes the candidate prompt tokens once (the prompt minus the exact sink and
  local windows) and then, every step, picks top-k tokens per kv head; attention runs over
  [sink | selected | local | generated] (``select.attention.sparse_decode_attention``). A decode
  batch whose requests are all below ``--kv-offload-min-prompt`` goes to the stock backend.

This is the torch reference path: per request and layer, on any device. Every name SGLang calls
on a backend that is not overridden here is delegated to the wrapped backend.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from sglang_kv.config import OffloadConfig
from sglang_kv.select import ModelShape, Selector, make_selector
from sglang_kv.select.attention import sparse_decode_attention
from sglang_kv.state import RequestState, RequestTable

if TYPE_CHECKING:
    from sglang.srt.layers.radix_attention import RadixAttention
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)

# Every OffloadRuntime alive in this process (one per model runner), for the request-free and
# stats hooks, which only see SGLang's objects.
RUNTIMES: "weakref.WeakSet[OffloadRuntime]" = weakref.WeakSet()


class OffloadRuntime:
    """Per model runner: the config, the request table and the selector, shared by the wrapped
    prefill and decode backends (SGLang builds two when they differ)."""

    def __init__(self, model_runner: "ModelRunner", config: OffloadConfig):
        self.config = config
        self.req_to_token_pool = model_runner.req_to_token_pool
        self.token_to_kv_pool = model_runner.token_to_kv_pool
        self.table = RequestTable()
        self._selector: Selector | None = None
        RUNTIMES.add(self)

    @classmethod
    def of(cls, model_runner: "ModelRunner", config: OffloadConfig) -> "OffloadRuntime":
        runtime = getattr(model_runner, "_sglang_kv_runtime", None)
        if runtime is None:
            runtime = cls(model_runner, config)
            model_runner._sglang_kv_runtime = runtime
        return runtime

    def selector(self, layer: "RadixAttention") -> Selector:
        if self._selector is None:
            shape = ModelShape(layer.tp_q_head_num, layer.tp_k_head_num, layer.qk_head_dim)
            self._selector = make_selector(self.config.method, shape, self.config)
        return self._selector


@dataclass(frozen=True)
class DecodeRow:
    """One request of the current decode batch."""

    state: RequestState
    seq_len: int  # tokens including the one being decoded


class OffloadAttnBackend:
    """Wraps a stock SGLang attention backend; see the module docstring."""

    def __init__(self, inner, model_runner: "ModelRunner", config: OffloadConfig):
        self.inner = inner
        self.runtime = OffloadRuntime.of(model_runner, config)
        self.config = config
        self._rows: list[DecodeRow] | None = None  # filled by init_forward_metadata for decode

    # ---- per-step planning ------------------------------------------------------------------
    def init_forward_metadata(self, forward_batch: "ForwardBatch") -> None:
        self.inner.init_forward_metadata(forward_batch)
        mode = forward_batch.forward_mode
        if mode.is_decode():
            self._rows = self._plan_decode(forward_batch)
        else:
            self._rows = None
            if mode.is_extend() or mode.is_mixed():
                self._check_no_decoding_rows(forward_batch)

    def _plan_decode(self, fb: "ForwardBatch") -> list[DecodeRow] | None:
        """The batch's rows with their states (created at a request's first decode), or None
        when no request is offloaded (the stock backend then serves the whole step)."""
        table, cfg = self.runtime.table, self.config
        seq_lens = fb.seq_lens_cpu.tolist() if fb.seq_lens_cpu is not None else fb.seq_lens.tolist()
        req_rows = fb.req_pool_indices.tolist()
        rows = []
        for rid, req_row, seq_len in zip(fb.rids, req_rows, seq_lens):
            state = table.get(rid)
            if state is None:
                prompt_len = seq_len - 1
                state = table.start(rid, req_row, prompt_len, offloaded=prompt_len >= max(cfg.min_prompt, 1))
            elif state.req_row != req_row:
                raise RuntimeError(
                    f"kv-offload: request {rid} moved from row {state.req_row} to {req_row} without being freed"
                )
            rows.append(DecodeRow(state, seq_len))
        if not any(r.state.offloaded for r in rows):
            return None
        table.stats.decode_steps += sum(r.state.offloaded for r in rows)
        return rows

    def _check_no_decoding_rows(self, fb: "ForwardBatch") -> None:
        table = self.runtime.table
        for rid in fb.rids or ():
            if table.get(rid) is not None:
                raise RuntimeError(
                    f"kv-offload: request {rid} is decoding but appears in an extend batch "
                    "(mixed prefill/decode batches are not supported)"
                )

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, q, k, v, layer, forward_batch, save_kv_cache=True, **kwargs):
        mode = forward_batch.forward_mode
        if mode.is_decode():
            return self.forward_decode(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        return self.inner.forward(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)

    def forward_extend(self, q, k, v, layer, forward_batch, save_kv_cache=True, **kwargs):
        return self.inner.forward_extend(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)

    def forward_decode(self, q, k, v, layer: "RadixAttention", forward_batch: "ForwardBatch",
                       save_kv_cache: bool = True, **kwargs):
        if self._rows is None:
            return self.inner.forward_decode(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        from sglang.srt.mem_cache.memory_pool import KVWriteLoc

        pool = self.runtime.token_to_kv_pool
        if save_kv_cache and k is not None and v is not None:
            pool.set_kv_buffer(layer, KVWriteLoc(forward_batch.out_cache_loc, None), k, v)
        hq, d, dv = layer.tp_q_head_num, layer.qk_head_dim, layer.v_head_dim
        q = q.reshape(-1, hq, d)
        out = q.new_empty((q.shape[0], hq, dv))
        k_cache = pool.get_key_buffer(layer.layer_id)  # (slots, Hkv, D)
        v_cache = pool.get_value_buffer(layer.layer_id)
        for i, row in enumerate(self._rows):
            slots = self._attended_slots(layer, q[i], row, k_cache, v_cache)  # (Hkv, n)
            heads = torch.arange(slots.shape[0], device=slots.device)[:, None]
            out[i] = sparse_decode_attention(q[i], k_cache[slots, heads], v_cache[slots, heads], layer.scaling)
        return out.reshape(-1, hq * dv)

    def _attended_slots(self, layer, q_row, row: DecodeRow, k_cache, v_cache) -> torch.Tensor:
        """KV-pool slots each kv head attends to, ``[num_kv_heads, n]``, in position order."""
        state, cfg = row.state, self.config
        req_to_token = self.runtime.req_to_token_pool.req_to_token
        slots_row = req_to_token[state.req_row, : row.seq_len].long()
        hkv = layer.tp_k_head_num
        if not state.offloaded:
            return slots_row.expand(hkv, -1)
        sink = min(cfg.sink, state.prompt_len)
        cand_end = max(sink, state.prompt_len - cfg.local)
        num_candidates = cand_end - sink
        if num_candidates == 0:
            return slots_row.expand(hkv, -1)
        # No shortcut when the budget covers every candidate: selection then returns them all,
        # which is what the budget >= context tests rely on to exercise the whole path.
        budget = cfg.budget_tokens(state.prompt_len)
        summary = state.summaries.get(layer.layer_id)
        selector = self.runtime.selector(layer)
        if summary is None:
            cand_slots = slots_row[sink:cand_end]
            summary = selector.build(k_cache[cand_slots], v_cache[cand_slots])
            state.summaries[layer.layer_id] = summary
            state.summary_bytes += selector.summary_bytes(summary)
        picked = selector.select(q_row, summary, budget, layer.scaling) + sink  # (Hkv, k) positions
        self.runtime.table.stats.selected_tokens += picked.numel()
        exact = torch.cat([torch.arange(sink), torch.arange(cand_end, row.seq_len)]).to(picked.device)
        positions = torch.cat([exact[:sink].expand(hkv, -1), picked, exact[sink:].expand(hkv, -1)], dim=1)
        return slots_row[positions]

    # ---- delegation -------------------------------------------------------------------------
    def support_triton(self):
        return self.inner.support_triton()

    def get_cuda_graph_seq_len_fill_value(self):
        return self.inner.get_cuda_graph_seq_len_fill_value()

    def init_cuda_graph_state(self, *args, **kwargs):
        raise RuntimeError("kv-offload: CUDA graphs are not supported by the offload backend; "
                           "the plugin disables them (--disable-cuda-graph)")

    def __getattr__(self, name):
        # Only reached for names not defined here: attributes SGLang or a model reads from the
        # stock backend (for example prefill/decode backend strings set after construction).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
