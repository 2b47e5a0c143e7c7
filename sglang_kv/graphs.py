"""The offload decode step inside SGLang's breakable CUDA graphs (``--kv-offload-decode-graph 1``).

SGLang's ``breakable`` decode backend captures the forward pass as a chain of CUDA graph segments
separated by *breaks*: functions wrapped with ``eager_on_graph`` end the segment being captured,
run eagerly, and start the next one. At replay each segment replays, then the break's function
runs again eagerly with the same arguments (tensors at the addresses the segments write) and its
output is copied to the address the next segment reads.

The offloaded attention is such a break: its selection, gather and attention depend on how many
tokens each request holds and which ones the scores pick, so it stays eager Python, while the
projections, MLP / MoE, norms and sampling of the whole batch replay as graphs. Per layer the
break costs one output copy (``[bs, Hq * Dv]``).

With ``--kv-offload-decode-graph 2`` the break's selection and gather replay too
(:class:`SelectionGraphs`). For a fixed batch (the same requests, so the same candidate counts and
budgets) every layer launches the same kernels with the same sizes; only the query and the two
address tables of the layer's stores differ. So the first layer of a new batch runs eagerly (which
compiles and tunes the kernels) and then captures that launch sequence as one CUDA graph, with the
query and the tables in buffers of its own; every later layer of that batch copies its query and
tables in and replays it: four launches from Python instead of the selection's and gather's seven
and their host-side checks. The graph's outputs live at fixed addresses that the next replay
overwrites, so the attention reads them before the next layer's replay (the same stream).

Status (2026-12-05): built and tested on CPU only (the Triton interpreter with a stand-in capture,
``tests/select/test_selection_graphs.py``); its GPU tests, the graph-2 server test and
``scripts/gpu/selection_graph_probe.py`` have not run yet (no GPU host was lent that session).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch


def in_breakable_graph() -> bool:
    """True while SGLang captures or replays a breakable CUDA graph."""
    from sglang.srt.model_executor.runner_backend_utils.breakable_cuda_graph import is_in_breakable_cuda_graph

    return is_in_breakable_cuda_graph()


def _forward_decode(backend, q, k, v, layer, forward_batch, save_kv_cache, **kwargs):
    return backend.forward_decode(q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)


@functools.cache
def _between_segments():
    from sglang.srt.model_executor.runner_backend_utils.breakable_cuda_graph import eager_on_graph

    return eager_on_graph(True)(_forward_decode)


def forward_decode_between_segments(backend, q, k, v, layer, forward_batch, save_kv_cache, **kwargs):
    """``backend.forward_decode(...)`` as a graph break: eager at capture and at every replay.
    Outside a capture (the warm-up runs, eager steps) it is the plain call."""
    return _between_segments()(backend, q, k, v, layer, forward_batch, save_kv_cache, **kwargs)


# ---- --kv-offload-decode-graph 2: the selection and gather replayed -----------------------------
class Captured(NamedTuple):
    """One captured launch sequence: ``replay`` reruns it on the current stream, reading ``q`` and the
    tables and rewriting ``result`` in place."""

    replay: Callable[[], None]
    q: torch.Tensor  # [B, Hq, D]: the query the sequence reads
    score_table: torch.Tensor  # int64 [B, 3]
    gather_table: torch.Tensor  # int64 [B, 2]
    result: tuple  # (BatchSelection, BatchKV) at fixed addresses
    plan: object  # the StepPlan captured: keeps the device tables the launches read alive


def capture_cuda(launch: Callable[[], tuple], pool) -> tuple[Callable[[], None], tuple]:
    """``launch()`` captured as a CUDA graph in memory pool ``pool`` on a side stream (captures need
    one), without the synchronize, ``gc.collect`` and ``empty_cache`` of ``torch.cuda.graph``: nothing
    runs, and ``launch`` must only queue work on the current stream (no host copies, no waits).
    Returns the graph's replay and what ``launch`` returned (tensors the replay rewrites)."""
    if torch.cuda.is_current_stream_capturing():
        raise RuntimeError("sglang-kv: cannot capture the selection graph inside another CUDA graph capture")
    graph = torch.cuda.CUDAGraph()
    main = torch.cuda.current_stream()
    side = _capture_stream(main.device)
    side.wait_stream(main)
    with torch.cuda.stream(side):
        graph.capture_begin(pool=pool, capture_error_mode="thread_local")
        try:
            result = launch()
        finally:
            graph.capture_end()
    main.wait_stream(side)
    return graph.replay, result


@functools.cache
def _capture_stream(device: torch.device) -> torch.cuda.Stream:
    return torch.cuda.Stream(device)


class SelectionGraphs:
    """Each decode batch's selection and gather (``selector.select_gather`` of ``selector.step_plan``) as
    one launch sequence, captured at the batch's first layer and replayed for the others (module
    docstring). Keeps the ``max_graphs`` batches seen last; all share one memory pool, which is safe
    because each replay's outputs are read before the next replay.

    ``capture(launch, pool) -> (replay, result)``: :func:`capture_cuda` (tests pass a stand-in);
    ``pool``: the graphs' memory pool (``torch.cuda.graph_pool_handle()`` when None on CUDA)."""

    def __init__(self, selector, *, max_graphs: int = 2, capture=capture_cuda, pool=None):
        problem = (selector.step_graph_problem() if hasattr(selector, "step_graph_problem")
                   else "no batched kernels of a fixed launch sequence")
        if problem is not None:
            raise ValueError(f"--kv-offload-decode-graph 2 replays the selection and gather as CUDA graphs; "
                             f"the {selector.name} selector cannot with {problem}")
        if max_graphs < 1:
            raise ValueError(f"max_graphs must be >= 1, got {max_graphs}")
        self.selector = selector
        self.max_graphs = max_graphs
        self._capture = capture
        self._pool = pool
        self._graphs: OrderedDict[tuple, Captured] = OrderedDict()
        self.captures = 0  # graphs captured so far
        self.replays = 0  # layers served by a replay

    def run(self, q: torch.Tensor, summaries, ks, scale: float, dtype: torch.dtype) -> tuple:
        """``selector.select_gather`` of one layer's batch (query ``q [B, Hq, D]``, the requests'
        ``summaries`` of this layer, budgets ``ks``) -> ``(BatchSelection, BatchKV)``. A replay's results
        are the graph's buffers: read them before the next call."""
        plan = self.selector.step_plan(summaries, ks, q.device)
        key = (plan.signature(), tuple(q.shape), q.dtype, q.device, float(scale), dtype)
        found = self._graphs.get(key)
        if found is None:
            result = self.selector.select_gather(q, plan, scale, dtype)  # eager: compiles and tunes first
            self._graphs[key] = self._capture_plan(q, plan, scale, dtype)
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
            return result
        self._graphs.move_to_end(key)
        found.q.copy_(q)
        found.score_table.copy_(plan.select.table)
        found.gather_table.copy_(plan.gather.table)
        found.replay()
        self.replays += 1
        return found.result

    def _capture_plan(self, q: torch.Tensor, plan, scale: float, dtype: torch.dtype) -> Captured:
        q_in = q.clone()
        score_table, gather_table = plan.select.table.clone(), plan.gather.table.clone()
        captured = plan._replace(select=plan.select._replace(table=score_table),
                                 gather=plan.gather._replace(table=gather_table))
        if self._pool is None and q.is_cuda:
            self._pool = torch.cuda.graph_pool_handle()
        replay, result = self._capture(lambda: self.selector.select_gather(q_in, captured, scale, dtype), self._pool)
        self.captures += 1
        return Captured(replay, q_in, score_table, gather_table, result, captured)
