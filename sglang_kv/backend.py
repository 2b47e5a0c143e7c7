"""The SGLang attention backend that drives prefill -> offload -> sparse decode.

``OffloadAttnBackend`` wraps the stock backend SGLang would have used (``--attention-backend``):

* extend (prefill, chunked prefill, prefix-cache hits): the stock backend computes exact attention
  and writes K/V into SGLang's KV pool. In the extend pass that completes a request's prompt
  (``hooks.mark_prompt_rows`` tells which), each layer's candidate tokens (the prompt minus the
  exact ``sink`` first and ``local`` last tokens) are summarized by the selector: the device part
  stays on the GPU, the payload goes to the host store (``store.host``).
* decode: per layer the selector picks top-k candidates per kv head for every offloaded request of
  the batch at once (``select_batch``); their K/V come from its ``gather_batch`` (payload read from
  host memory, dequantized or rebuilt), the exact windows and the generated tokens from the KV pool;
  attention runs over [sink | selected | local | generated] of each request
  (``select.attention.selected_attention``: on CUDA one fused kernel reading the gathered rows and
  the pool's window rows where they are; elsewhere the SDPA call over them concatenated).
* decode under ``--kv-offload-decode-graph 1``: SGLang replays the rest of each layer as breakable
  CUDA graph segments and calls the decode above eagerly between them (``graphs.py``); the batch
  is planned before each replay from SGLang's view of the graph's padded batch
  (``init_forward_metadata_out_graph``), and padding rows attend to nothing (output zero).
* mixed prefill/decode batches (``--enable-mixed-chunk``): the stock backend serves the batch, then
  the rows of offloaded requests are recomputed with the sparse path.

Requests whose prompt is shorter than ``--kv-offload-min-prompt`` keep plain attention; a decode
batch without any offloaded request goes to the stock backend. Selection and gathering are batched
over the offloaded requests of a step (one launch each per layer with YAKV's kernels on CUDA), and
requests with the same windows and selection size attend in one call. Every name SGLang reads from
a backend that is not defined here is delegated to the wrapped backend.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import psutil
import torch

from sglang_kv import graphs
from sglang_kv.capacity import current_plan
from sglang_kv.config import ConfigError, OffloadConfig
from sglang_kv.devices import device_ints
from sglang_kv.select import ModelShape, RopeParams, Selector, make_selector
from sglang_kv.select.attention import selected_attention, sparse_decode_attention
from sglang_kv.state import RequestState, RequestTable
from sglang_kv.streams import decode_streams, run_pipelined
from sglang_kv.store.device import TieredKVPool
from sglang_kv.store.host import HostArena, HostBlock, HostStoreFull
from sglang_kv.timing import DecodeTimer

if TYPE_CHECKING:
    from sglang.srt.layers.radix_attention import RadixAttention
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch
    from sglang.srt.model_executor.model_runner import ModelRunner

    from sglang_kv.select.base import BatchKV, BatchSelection

logger = logging.getLogger("sglang_kv")

# Every OffloadRuntime alive in this process (one per model runner), for the request-free and
# stats hooks, which only see SGLang's objects.
RUNTIMES: "weakref.WeakSet[OffloadRuntime]" = weakref.WeakSet()

# rid -> prompt length, for the requests whose prompt the next extend pass completes; filled by
# hooks.mark_prompt_rows when SGLang builds the ForwardBatch (the model runner later works on a
# copy of it, so the information cannot ride on the batch object), consumed by the backend.
PROMPTS_COMPLETING: dict[str, int] = {}

# rid -> error message, for requests the offload path cannot serve (host store full); the
# scheduler finishes them with that error when it processes the batch (hooks.abort_failed_requests).
FAILED_REQUESTS: dict[str, str] = {}


def attn_tp_size() -> int:
    from sglang.srt.runtime_context import get_parallel

    return get_parallel().attn_tp_size


def model_shape(model_config) -> ModelShape:
    """Attention shape of one layer on this tensor-parallel rank."""
    tp = attn_tp_size()
    return ModelShape(model_config.get_num_attention_heads(tp), model_config.get_num_kv_heads(tp),
                      model_config.head_dim)


class OffloadRuntime:
    """Per model runner: config, request table, selector and host store, shared by the wrapped
    prefill and decode backends (SGLang builds two when they differ)."""

    def __init__(self, model_runner: "ModelRunner", config: OffloadConfig):
        self.config = config
        self.req_to_token_pool = model_runner.req_to_token_pool
        self.token_to_kv_pool = model_runner.token_to_kv_pool
        # The tiered pool (slots over exact rows) when the capacity plan built it; None otherwise.
        self.tiered = self.token_to_kv_pool if isinstance(self.token_to_kv_pool, TieredKVPool) else None
        self.last_layer_id = self.token_to_kv_pool.start_layer + self.token_to_kv_pool.layer_num - 1
        self.table = RequestTable()
        # rid -> length of the cached prefix the request reused (slots it does not own), recorded at
        # its first extend pass; its own slots start there.
        self.owned_from: dict[str, int] = {}
        self.shape = model_shape(model_runner.model_config)
        self.selector = make_offload_selector(config, self.shape, model_runner.model_config.hf_config)
        self.decode_streams = decode_streams(config.decode_chunks, torch.device(model_runner.device),
                                             config.decode_finish_sms)
        # --kv-offload-decode-timing: device and host time of the offloaded decode attention per step
        # (None = off); per stage only on one stream
        self.decode_timer = (DecodeTimer(model_runner.device, config.decode_timing, stages=config.decode_chunks == 1)
                             if config.decode_timing else None)
        # --kv-offload-decode-graph 2: each batch's selection and gather replayed as one CUDA graph
        self.selection_graphs = graphs.SelectionGraphs(self.selector) if config.decode_graph == 2 else None
        pin = str(model_runner.device).startswith("cuda")
        plan = current_plan()
        capacity = plan.host_store_bytes if plan else config.host_mem_bytes(psutil.virtual_memory().available)
        try:
            self.arena = HostArena(capacity, pin=pin)
        except RuntimeError as e:  # pinned allocation failed
            raise ConfigError(f"--kv-offload-host-mem {config.host_mem}: cannot allocate {capacity / 2**30:.1f} "
                              f"GiB of {'pinned ' if pin else ''}host memory ({e})") from e
        self.metrics = None
        if getattr(model_runner.server_args, "enable_metrics", False):
            from sglang_kv.metrics import OffloadMetrics

            self.metrics = OffloadMetrics(config.method)
        logger.info("sglang-kv: %s selector, %s; host store %.2f GiB (%s)", config.method, self.shape,
                    self.arena.capacity / 2**30, "pinned" if pin else "pageable")
        RUNTIMES.add(self)

    @classmethod
    def of(cls, model_runner: "ModelRunner", config: OffloadConfig) -> "OffloadRuntime":
        runtime = getattr(model_runner, "_sglang_kv_runtime", None)
        if runtime is None:
            runtime = cls(model_runner, config)
            model_runner._sglang_kv_runtime = runtime
        return runtime

    def release(self, rid: str) -> None:
        """A request left (finish, abort, retraction): drop its state. (Its slots, and their rows,
        go back through SGLang's allocator.)"""
        PROMPTS_COMPLETING.pop(rid, None)
        FAILED_REQUESTS.pop(rid, None)
        self.owned_from.pop(rid, None)
        state = self.table.release(rid)
        if state is not None:
            _release_blocks(state)

    def slots(self, req_row: int, length: int) -> torch.Tensor:
        """SGLang's token slots of positions [0, length) of a request, int64 ``[length]``."""
        return self.req_to_token_pool.req_to_token[req_row, :length].long()

    def rows(self, slots: torch.Tensor) -> torch.Tensor:
        """Indices into the KV pool's buffers for ``slots`` (exact rows under the tiered pool)."""
        return slots if self.tiered is None else self.tiered.translate(slots)

    def fail(self, state: RequestState, message: str) -> None:
        """The request cannot be offloaded: free what it holds and have the scheduler abort it."""
        _release_blocks(state)
        state.failed = True
        FAILED_REQUESTS[state.rid] = message
        logger.error("sglang-kv: aborting request %s: %s", state.rid, message)

    def release_all(self) -> None:
        for rid in set(self.table.rids()) | set(self.owned_from):
            self.release(rid)

    def snapshot(self) -> dict:
        snap = {**self.table.snapshot(), "host_bytes_in_use": self.arena.used_bytes,
                "host_bytes_capacity": self.arena.capacity}
        if self.tiered is not None:
            snap.update(token_slots=self.tiered.num_slots, exact_rows=self.tiered.num_rows,
                        exact_rows_in_use=self.tiered.exact_rows_in_use())
        if self.selection_graphs is not None:  # layers whose selection and gather a graph replayed, graphs captured
            snap.update(selection_graph_replays=self.selection_graphs.replays,
                        selection_graph_captures=self.selection_graphs.captures)
        return snap


def _release_blocks(state: RequestState) -> None:
    for block in state.blocks.values():
        block.release()
    state.blocks.clear()
    state.summaries.clear()
    state.device_bytes = state.host_bytes = 0


def _bind_inner_to_rows(inner, runtime: "OffloadRuntime") -> torch.Tensor | None:
    """Make the stock backend read exact rows instead of slots under the tiered pool.

    SGLang's Triton backend translates slots itself (``translate_kv_loc`` of the allocator);
    torch_native indexes the pool with ``req_to_token`` directly, so it gets a row-indexed copy of
    that table (returned; kept in sync by ``_sync_physical``). Other backends are refused.
    """
    from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend

    if getattr(inner, "_translate_kv_loc", None) is not None:
        return None
    if isinstance(inner, TorchNativeAttnBackend):
        physical = torch.zeros_like(runtime.req_to_token_pool.req_to_token)
        inner.req_to_token_pool = _PhysicalRequestTable(runtime.req_to_token_pool, physical)
        return physical
    raise ConfigError(f"--kv-offload {runtime.config.method}: the {type(inner).__name__} attention backend "
                      "cannot read the tiered KV pool; use --attention-backend triton (GPU) or torch_native (CPU)")


class _PhysicalRequestTable:
    """A ReqToTokenPool view whose ``req_to_token`` holds exact rows instead of slots."""

    def __init__(self, pool, physical: torch.Tensor):
        self._pool = pool
        self.req_to_token = physical

    def __getattr__(self, name):
        return getattr(self._pool, name)


def make_offload_selector(config: OffloadConfig, shape: ModelShape, hf_config) -> Selector:
    """The configured selector for one layer shape; ConfigError when it cannot serve the model."""
    try:
        rope = RopeParams.from_hf_config(hf_config)
    except ValueError:
        rope = None  # only selectors that un-rotate keys need it; they refuse below
    try:
        return make_selector(config.method, shape, config, rope=rope)
    except ValueError as e:
        raise ConfigError(f"--kv-offload {config.method}: cannot serve this model: {e}") from e


def _attention_groups(rows: list["RowPlan"], counts: list[int]) -> dict[tuple[int, int, int, int], list[int]]:
    """Rows (by position in ``rows``) with the same (sink, cand_end, seq_len, selected count): their
    attention inputs have one shape, so they attend in one call."""
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for b, (row, n) in enumerate(zip(rows, counts)):
        groups.setdefault((row.state.sink, row.state.cand_end, row.seq_len, n), []).append(b)
    return groups


@dataclass(frozen=True)
class RowPlan:
    """One row of the current batch that the offload path handles."""

    index: int  # row in the batch
    state: RequestState
    seq_len: int  # tokens including the ones of this step


@dataclass(frozen=True)
class _BatchRows:
    """The live rows of the current batch (a CUDA graph's batch may be padded past them)."""

    count: int
    req_rows: list[int]  # [count] rows in SGLang's req_to_token table
    seq_lens: list[int]  # [count] tokens including the ones of this step


class OffloadAttnBackend:
    """Wraps a stock SGLang attention backend; see the module docstring."""

    def __init__(self, inner, model_runner: "ModelRunner", config: OffloadConfig):
        self.inner = inner
        self.runtime = OffloadRuntime.of(model_runner, config)
        self.config = config
        self._decode_rows: list[RowPlan] = []  # offloaded requests decoding in this batch
        self._offload_rows: list[RowPlan] = []  # requests whose prompt completes in this batch
        self._physical = None  # row-indexed copy of req_to_token for an inner backend that needs it
        self._windows: dict[tuple, tuple[torch.Tensor, torch.Tensor | slice]] = {}  # this step's, see _window_rows
        self._write_loc = None  # this decode step's KVWriteLoc (slots, and exact rows under the tiered pool)
        self._batch = _BatchRows(0, [], [])  # this step's live rows
        if self.runtime.tiered is not None:
            self._physical = _bind_inner_to_rows(inner, self.runtime)

    # ---- per-step planning ------------------------------------------------------------------
    def init_forward_metadata(self, forward_batch: "ForwardBatch") -> None:
        """Eager steps: plan the batch, then the stock backend's metadata."""
        if self._plan(forward_batch):
            self.inner.init_forward_metadata(forward_batch)

    def init_forward_metadata_out_graph(self, forward_batch, in_capture: bool = False) -> None:
        """Steps in breakable CUDA graphs (``--kv-offload-decode-graph 1``), before capture and before
        each replay. At replay ``forward_batch`` is SGLang's view of the padded graph batch, which
        ``hooks.replay_batch_rids`` gives the live batch's rids; the batch captured holds no
        request, so nothing is offloaded in it."""
        if in_capture:
            self._reset_plan(rows=forward_batch.batch_size)
        else:
            rids = getattr(forward_batch, "rids", None)
            if rids is None:
                raise RuntimeError("kv-offload: the CUDA graph replay batch has no rids (hook "
                                   "replay_batch_rids not applied?)")
            self._plan(forward_batch)
        # The stock backend's decode never runs inside a captured segment here: it runs eagerly in
        # the break (a batch without offloaded requests), reading the metadata object its capture
        # path builds. Its replay path only refills the buffers behind the object of the last
        # capture, which an eager prefill step in between has replaced; so rebuild it every time.
        self.inner.init_forward_metadata_out_graph(forward_batch, in_capture=True)

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int) -> None:
        if not self.config.decode_graph:
            raise RuntimeError("kv-offload: CUDA graphs need --kv-offload-decode-graph 1")
        self.inner.init_cuda_graph_state(max_bs, max_num_tokens)

    def _reset_plan(self, rows: int) -> None:
        self._decode_rows, self._offload_rows = [], []
        self._windows, self._write_loc = {}, None
        self._batch = _BatchRows(rows, [], [])

    def _plan(self, fb) -> bool:
        """Which rows of the batch decode offloaded, and which complete their prompt in this extend
        pass (starting their offload state). False for an idle batch (nothing to plan)."""
        runtime, cfg = self.runtime, self.config
        self._reset_plan(rows=0)
        if fb.forward_mode.is_idle():
            self.inner.init_forward_metadata(fb)
            return False
        seq_lens = (fb.seq_lens_cpu if fb.seq_lens_cpu is not None else fb.seq_lens.cpu()).tolist()
        req_rows = fb.req_pool_indices.tolist()
        self._batch = _BatchRows(len(fb.rids), req_rows[:len(fb.rids)], seq_lens[:len(fb.rids)])
        extend = fb.forward_mode.is_extend()
        prefix_lens = fb.extend_prefix_lens_cpu if extend else None
        for i, (rid, req_row, seq_len) in enumerate(zip(fb.rids, req_rows, seq_lens)):
            if extend:
                runtime.owned_from.setdefault(rid, prefix_lens[i])
            done = PROMPTS_COMPLETING.pop(rid, None) if extend else None
            state = runtime.table.get(rid)
            if state is not None:
                if state.req_row != req_row:
                    raise RuntimeError(f"kv-offload: request {rid} moved from row {state.req_row} to {req_row} "
                                       "without being freed")
                self._decode_rows.append(RowPlan(i, state, seq_len))
            elif done is not None and done >= max(cfg.min_prompt, 1):
                sink = min(cfg.sink, done)
                cand_end = max(sink, done - cfg.local)
                if cand_end > sink:
                    state = runtime.table.start(rid, req_row, done, sink=sink, cand_end=cand_end)
                    self._offload_rows.append(RowPlan(i, state, seq_len))
        runtime.table.stats.decode_steps += len(self._decode_rows)
        if runtime.decode_timer is not None:
            runtime.decode_timer.step(len(self._decode_rows))
        if runtime.metrics is not None:
            runtime.metrics.update(runtime.snapshot())  # the previous step's figures
        if self._physical is not None:
            self._sync_physical(req_rows, seq_lens, extend)
        return True

    def _sync_physical(self, req_rows: list[int], seq_lens: list[int], extend: bool) -> None:
        """Refresh the row-indexed request table the inner backend reads (positions it may touch)."""
        runtime = self.runtime
        for req_row, seq_len in zip(req_rows, seq_lens):
            start = 0 if extend else seq_len - 1
            slots = runtime.req_to_token_pool.req_to_token[req_row, start:seq_len].long()
            self._physical[req_row, start:seq_len] = runtime.tiered.translate(slots).clamp_min(0).to(
                self._physical.dtype)

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, q, k, v, layer, forward_batch, save_kv_cache=True, **kwargs):
        if forward_batch.forward_mode.is_decode():
            if self.config.decode_graph and graphs.in_breakable_graph():
                # A graph break: captured segments end and restart around this call, which
                # replays eagerly (its output copied to the address the next segment reads).
                return graphs.forward_decode_between_segments(self, q, k, v, layer, forward_batch, save_kv_cache,
                                                              **kwargs)
            return self.forward_decode(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        if forward_batch.forward_mode.is_idle():
            return self.inner.forward(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        return self.forward_extend(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)

    def forward_extend(self, q, k, v, layer: "RadixAttention", forward_batch: "ForwardBatch",
                       save_kv_cache: bool = True, **kwargs):
        out = self.inner.forward_extend(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        for row in self._offload_rows:
            self._offload_layer(layer, row)
        if self._decode_rows:  # mixed batch: decode rows of offloaded requests take the sparse path
            hq, d, dv = layer.tp_q_head_num, layer.qk_head_dim, layer.v_head_dim
            starts = forward_batch.extend_start_loc.tolist()
            q3, out3 = q.reshape(-1, hq, d), out.view(-1, hq, dv)
            live = [row for row in self._decode_rows if not row.state.failed]  # a failed one keeps stock output
            if live:
                # a decode row extends exactly one token
                tokens = device_ints([starts[row.index] for row in live], q3.device)
                out3[tokens] = self._sparse_attention(layer, q3[tokens], live)
        return out

    def forward_decode(self, q, k, v, layer: "RadixAttention", forward_batch: "ForwardBatch",
                       save_kv_cache: bool = True, **kwargs):
        if not self._decode_rows:
            return self.inner.forward_decode(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
        from sglang.srt.mem_cache.memory_pool import KVWriteLoc

        timer = self.runtime.decode_timer
        if timer is not None:
            timer.begin()
        pool = self.runtime.token_to_kv_pool
        if save_kv_cache and k is not None and v is not None:
            if self._write_loc is None:  # the step's new tokens' slots, and their rows: the same for every layer
                loc = forward_batch.out_cache_loc
                self._write_loc = KVWriteLoc(loc, None, None if self.runtime.tiered is None else self.runtime.rows(loc))
            pool.set_kv_buffer(layer, self._write_loc, k, v)
        if timer is not None:
            timer.mark("kv_write")
        hq, d, dv = layer.tp_q_head_num, layer.qk_head_dim, layer.v_head_dim
        q3 = q.reshape(-1, hq, d)
        out = q3.new_empty((q3.shape[0], hq, dv))
        # A failed request (being aborted) may still run this step: plain attention, output dropped.
        live = [row for row in self._decode_rows if not row.state.failed]
        sparse = {row.index for row in live}
        batch = self._batch
        if len(live) == q3.shape[0]:  # every row offloaded and live (rows in batch order): no indexing
            out = self._sparse_attention(layer, q3, live)
        elif live:
            index = device_ints([row.index for row in live], q3.device)  # a list index would wait for the GPU
            out[index] = self._sparse_attention(layer, q3[index], live)
        for i in range(batch.count):
            if i not in sparse:
                out[i] = self._dense_attention(layer, q3[i], batch.req_rows[i], batch.seq_lens[i])
        if batch.count < q3.shape[0]:
            out[batch.count:] = 0  # a CUDA graph's padding rows: no request, output unused
        if timer is not None:
            timer.end()
        return out.reshape(-1, hq * dv)

    # ---- offload ----------------------------------------------------------------------------
    def _offload_layer(self, layer: "RadixAttention", row: RowPlan) -> None:
        """Summarize one layer of a request whose prompt just completed; payload to the host store."""
        state, pool = row.state, self.runtime.token_to_kv_pool
        if state.failed:
            return
        slots = self.runtime.slots(state.req_row, state.prompt_len)[state.sink: state.cand_end]
        rows = self.runtime.rows(slots)
        keys = pool.get_key_buffer(layer.layer_id)[rows]  # (n, Hkv, D)
        values = pool.get_value_buffer(layer.layer_id)[rows]
        positions = torch.arange(state.sink, state.cand_end, device=keys.device)
        summary = self.runtime.selector.build(keys, values, positions)
        try:
            block = HostBlock(self.runtime.arena, summary.payload)
        except HostStoreFull as e:
            self.runtime.fail(state, str(e))
            return
        state.blocks[layer.layer_id] = block
        state.summaries[layer.layer_id] = replace(summary, payload=block.tensors)
        state.device_bytes += summary.device_bytes
        state.host_bytes += block.nbytes
        tiered = self.runtime.tiered
        if tiered is not None and layer.layer_id == self.runtime.last_layer_id:
            # Every layer is summarized: the candidates this request owns need no exact rows any
            # more (a reused cached prefix stays exact: the radix cache owns it).
            own_from = max(self.runtime.owned_from.get(state.rid, 0) - state.sink, 0)
            tiered.release(slots[own_from:])

    # ---- attention --------------------------------------------------------------------------
    def _sparse_attention(self, layer: "RadixAttention", q: torch.Tensor, rows: list[RowPlan]) -> torch.Tensor:
        """Attention of each row's decode query ``q [len(rows), Hq, D]`` over its [sink | selected |
        local | generated] tokens -> ``[len(rows), Hq, Dv]``, in ``--kv-offload-decode-chunks``
        chunks of rows pipelined over two streams (:mod:`sglang_kv.streams`; one chunk by default)."""
        out = q.new_empty((len(rows), q.shape[1], layer.v_head_dim))
        summaries = [row.state.summaries[layer.layer_id] for row in rows]
        if self.runtime.selection_graphs is not None:  # one stream, one chunk (the config checked it)
            self._attend_rows(layer, q, rows, *self._select_gather_replayed(layer, q, rows, summaries), out)
            return out
        run_pipelined(len(rows), self.runtime.decode_streams,
                      lambda part: self._select_rows(layer, q[part], rows[part], summaries[part]),
                      lambda part, selection: self._finish_rows(layer, q[part], rows[part], summaries[part], selection,
                                                                out[part]))
        return out

    def _select_rows(self, layer: "RadixAttention", q: torch.Tensor, rows: list[RowPlan],
                     summaries: list) -> BatchSelection:
        """The tokens each of ``rows`` (with this layer's ``summaries``) selects for query
        ``q [len(rows), Hq, D]``: one batched ``select_batch`` for the chunk."""
        selection = self.runtime.selector.select_batch(q, summaries, self._budgets(rows), layer.scaling)
        if self.runtime.decode_timer is not None:
            self.runtime.decode_timer.mark("select")
        return selection

    def _budgets(self, rows: list[RowPlan]) -> list[int]:
        """Tokens each row selects per kv head (``--kv-offload-budget`` of its prompt)."""
        return [self.config.budget_tokens(row.state.prompt_len) for row in rows]

    def _select_gather_replayed(self, layer: "RadixAttention", q: torch.Tensor, rows: list[RowPlan],
                                summaries: list) -> tuple[BatchSelection, BatchKV]:
        """``_select_rows`` and the gather of ``_finish_rows`` as one replayed CUDA graph
        (``--kv-offload-decode-graph 2``); the timer's ``select`` stage covers both."""
        runtime = self.runtime
        dtype = runtime.token_to_kv_pool.get_key_buffer(layer.layer_id).dtype
        selection, selected = runtime.selection_graphs.run(q, summaries, self._budgets(rows), layer.scaling, dtype)
        if runtime.decode_timer is not None:
            runtime.decode_timer.mark("select")
        return selection, selected

    def _finish_rows(self, layer: "RadixAttention", q: torch.Tensor, rows: list[RowPlan], summaries: list,
                     selection: BatchSelection, out: torch.Tensor) -> None:
        """The rest of one chunk's step into ``out [len(rows), Hq, Dv]``: one batched ``gather_batch`` of
        ``selection``, then :meth:`_attend_rows`."""
        runtime = self.runtime
        dtype = runtime.token_to_kv_pool.get_key_buffer(layer.layer_id).dtype
        selected = runtime.selector.gather_batch(summaries, selection, dtype=dtype)
        if runtime.decode_timer is not None:
            runtime.decode_timer.mark("gather")
        self._attend_rows(layer, q, rows, selection, selected, out)

    def _attend_rows(self, layer: "RadixAttention", q: torch.Tensor, rows: list[RowPlan], selection: BatchSelection,
                     selected: BatchKV, out: torch.Tensor) -> None:
        """Attention of ``rows`` over their exact windows and ``selected`` into ``out [len(rows), Hq, Dv]``:
        one call per group of rows with the same windows and selection size (in a batch of equal prompts,
        one group)."""
        runtime = self.runtime
        pool = runtime.token_to_kv_pool
        k_cache, v_cache = pool.get_key_buffer(layer.layer_id), pool.get_value_buffer(layer.layer_id)
        timer = runtime.decode_timer
        stats = runtime.table.stats
        stats.selected_tokens += sum(selection.counts) * selection.index.shape[1]
        stats.loaded_bytes += selected.load_bytes
        stats.cache_lookups += selected.cache_lookups
        stats.cache_hits += selected.cache_hits
        for (sink, cand_end, seq_len, n), members in _attention_groups(rows, selection.counts).items():
            exact, index = self._window_rows(rows, members, sink, cand_end, seq_len, q.device)
            if isinstance(index, slice):  # the group is every row: the attention writes out in place
                selected_attention(q, selected, index, n, k_cache, v_cache, exact, sink, layer.scaling, out=out)
            else:
                out[index] = selected_attention(q[index], selected, index, n, k_cache, v_cache, exact, sink,
                                                layer.scaling)
        if timer is not None:
            timer.mark("attend")

    def _window_rows(self, rows: list[RowPlan], members: list[int], sink: int, cand_end: int, seq_len: int,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor | slice]:
        """KV-pool rows of the exact windows ``[0, sink) + [cand_end, seq_len)`` of the group
        ``members`` of ``rows`` -> (int64 ``[G, n_exact]``, the members as an index: a device
        tensor ``[G]``, or ``slice(None)`` when the group is all of ``rows``, so that indexing with
        it takes views instead of copies).

        The same for every layer of a step (slots map to rows from allocation on), so the first
        layer computes them and the others reuse them: 6 small ops and 2 host copies fewer per layer.
        """
        req_rows = tuple(rows[b].state.req_row for b in members)
        key = (sink, cand_end, seq_len, req_rows, tuple(members))
        found = self._windows.get(key)
        if found is None:
            runtime = self.runtime
            positions = torch.cat([torch.arange(sink, device=device), torch.arange(cand_end, seq_len, device=device)])
            slots = runtime.req_to_token_pool.req_to_token[device_ints(req_rows, device)[:, None], positions[None, :]]
            index = slice(None) if len(members) == len(rows) else device_ints(members, device)
            found = self._windows[key] = (runtime.rows(slots.long()), index)
        return found

    def _dense_attention(self, layer: "RadixAttention", q_row: torch.Tensor, req_row: int, seq_len: int):
        pool = self.runtime.token_to_kv_pool
        rows = self.runtime.rows(self.runtime.slots(req_row, seq_len))
        k = pool.get_key_buffer(layer.layer_id)[rows].transpose(0, 1)
        v = pool.get_value_buffer(layer.layer_id)[rows].transpose(0, 1)
        return sparse_decode_attention(q_row, k, v, layer.scaling)

    # ---- delegation -------------------------------------------------------------------------
    def support_triton(self):
        return self.inner.support_triton()

    def get_cuda_graph_seq_len_fill_value(self):
        return self.inner.get_cuda_graph_seq_len_fill_value()

    def __getattr__(self, name):
        # Only reached for names not defined here: attributes SGLang or a model reads from the
        # stock backend (for example prefill/decode backend strings set after construction).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
