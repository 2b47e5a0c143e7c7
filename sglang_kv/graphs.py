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
"""

from __future__ import annotations

import functools


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
