"""--kv-offload-decode-graph: the CUDA graph backends the plugin asks SGLang for, their checks,
and the backend's planning of a CUDA graph's padded batch (no GPU needed; the graphs themselves
run in tests/server/test_decode_graph_gpu.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from sglang_kv import backend as backend_module
from sglang_kv import hooks
from sglang_kv.backend import OffloadAttnBackend
from sglang_kv.compat import check_graph_args, cuda_graph_argv
from sglang_kv.config import ConfigError, OffloadConfig
from sglang_kv.state import RequestTable

EAGER = OffloadConfig(method="yakv")
GRAPH = OffloadConfig(method="yakv", decode_graph=1)


def test_argv_asks_for_breakable_decode_graphs_only_when_on():
    assert cuda_graph_argv(EAGER, ["--port", "1"]) == [
        "--port", "1", "--cuda-graph-backend-decode", "disabled", "--cuda-graph-backend-prefill", "disabled"]
    assert cuda_graph_argv(GRAPH, []) == [
        "--cuda-graph-backend-decode", "breakable", "--cuda-graph-backend-prefill", "disabled"]
    assert cuda_graph_argv(GRAPH, ["--cuda-graph-backend-prefill=disabled"])[-3] == "breakable"


@pytest.mark.parametrize("argv", [["--cuda-graph-backend-decode", "full"], ["--cuda-graph-backend-prefill=breakable"],
                                  ["--cuda-graph-config", "{}"]])
def test_argv_refuses_the_users_own_graph_backends(argv):
    for config in (EAGER, GRAPH):
        with pytest.raises(ConfigError, match="the plugin sets the CUDA graph backends"):
            cuda_graph_argv(config, argv)


def _server_args(decode: str, prefill: str = "disabled", device: str = "cuda"):
    phase = lambda backend: SimpleNamespace(backend=backend)  # noqa: E731
    return SimpleNamespace(device=device, disable_cuda_graph=False,
                           cuda_graph_config=SimpleNamespace(decode=phase(decode), prefill=phase(prefill)))


def test_graph_args_must_be_what_the_plugin_asked_for():
    check_graph_args(EAGER, _server_args("disabled"))
    check_graph_args(GRAPH, _server_args("breakable"))
    with pytest.raises(ConfigError, match="decode full, prefill disabled.*needs decode disabled"):
        check_graph_args(EAGER, _server_args("full"))
    with pytest.raises(ConfigError, match="decode disabled, prefill disabled.*needs decode breakable"):
        check_graph_args(GRAPH, _server_args("disabled"))
    with pytest.raises(ConfigError, match="decode breakable, prefill breakable"):
        check_graph_args(GRAPH, _server_args("breakable", prefill="breakable"))


def test_graph_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="--kv-offload-decode-graph 1: CUDA graphs need a CUDA device"):
        check_graph_args(GRAPH, _server_args("breakable", device="cpu"))
    check_graph_args(EAGER, _server_args("disabled", device="cpu"))


def test_replay_view_gets_the_live_batchs_rids(monkeypatch):
    from sglang.srt.model_executor.runner.decode_cuda_graph_runner import build_replay_fb_view
    from sglang.srt.model_executor.forward_batch_info import ForwardMode

    live = SimpleNamespace(rids=["a", "b", "c"], forward_mode=ForwardMode.DECODE, seq_lens_sum=30,
                           seq_lens_cpu=torch.tensor([10, 10, 10]), spec_info=None, out_cache_loc=torch.arange(3))
    buffers = SimpleNamespace(input_ids=torch.zeros(4), positions=torch.zeros(4), req_pool_indices=torch.arange(4),
                              seq_lens=torch.ones(4), seq_lens_cpu=torch.ones(4), mamba_track_indices=None)
    kwargs = dict(forward_batch=live, buffers=buffers, bs=4, raw_bs=3, num_tokens=4, seq_len_fill_value=1,
                  capture_forward_mode=ForwardMode.DECODE, is_encoder_decoder=False)
    view = build_replay_fb_view(**kwargs)
    assert not hasattr(view, "rids")  # SGLang's view alone: why the hook exists
    assert not hasattr(hooks.replay_batch_rids(view, **kwargs), "rids")  # without --kv-offload: inert
    monkeypatch.setenv("SGLANG_KV_OFFLOAD", GRAPH.to_json())
    hooks.process_config.cache_clear()
    try:
        assert hooks.replay_batch_rids(view, **kwargs).rids == ["a", "b", "c"]
    finally:
        hooks.process_config.cache_clear()


class _Inner:
    def __init__(self):
        self.calls = []

    def init_forward_metadata_out_graph(self, fb, in_capture=False):
        self.calls.append(("out_graph", in_capture))

    def init_forward_metadata(self, fb):
        self.calls.append(("eager",))


def _backend(config=GRAPH) -> OffloadAttnBackend:
    backend = OffloadAttnBackend.__new__(OffloadAttnBackend)  # no model runner: planning state only
    backend.inner, backend.config, backend._physical = _Inner(), config, None
    backend.runtime = SimpleNamespace(table=RequestTable(), owned_from={}, decode_timer=None, metrics=None)
    backend._reset_plan(rows=0)
    return backend


def _replay_view(rids, req_rows, seq_lens, padded_bs):
    from sglang.srt.model_executor.forward_batch_info import ForwardMode

    pad = padded_bs - len(rids)
    return SimpleNamespace(rids=rids, batch_size=padded_bs, forward_mode=ForwardMode.DECODE,
                           req_pool_indices=torch.tensor(req_rows + [0] * pad),
                           seq_lens=torch.tensor(seq_lens + [1] * pad), seq_lens_cpu=torch.tensor(seq_lens + [1] * pad))


def test_replay_plans_the_live_rows_of_a_padded_batch():
    backend = _backend()
    table = backend.runtime.table
    table.start("a", 5, 100, sink=0, cand_end=90)
    table.start("c", 9, 200, sink=0, cand_end=190)
    backend.init_forward_metadata_out_graph(_replay_view(["a", "b", "c"], [5, 7, 9], [101, 50, 201], padded_bs=4))
    assert [(row.index, row.state.rid, row.seq_len) for row in backend._decode_rows] == [(0, "a", 101), (2, "c", 201)]
    assert (backend._batch.count, backend._batch.req_rows, backend._batch.seq_lens) == (3, [5, 7, 9], [101, 50, 201])
    assert backend.inner.calls == [("out_graph", True)]  # the stock backend's metadata object rebuilt
    assert table.stats.decode_steps == 2


def test_capture_plans_no_request_and_replay_needs_the_rids():
    backend = _backend()
    backend.runtime.table.start("a", 0, 100, sink=0, cand_end=90)  # row 0 is what a capture batch points at
    capture_batch = _replay_view([], [], [], padded_bs=8)
    backend.init_forward_metadata_out_graph(capture_batch, in_capture=True)
    assert backend._decode_rows == [] and backend._batch.count == 8
    assert backend.inner.calls == [("out_graph", True)]
    del capture_batch.rids
    with pytest.raises(RuntimeError, match="replay batch has no rids"):
        backend.init_forward_metadata_out_graph(capture_batch)


def test_cuda_graph_state_only_with_the_flag():
    backend = _backend(EAGER)
    with pytest.raises(RuntimeError, match="CUDA graphs need --kv-offload-decode-graph 1"):
        backend.init_cuda_graph_state(8, 8)
    backend = _backend(GRAPH)
    backend.inner.init_cuda_graph_state = lambda bs, tokens: backend.inner.calls.append(("state", bs, tokens))
    backend.init_cuda_graph_state(8, 16)
    assert backend.inner.calls == [("state", 8, 16)]


def test_decode_goes_between_segments_only_inside_a_breakable_graph(monkeypatch):
    backend = _backend()
    seen = []
    monkeypatch.setattr(OffloadAttnBackend, "forward_decode", lambda self, *a, **k: seen.append("decode") or "out")
    monkeypatch.setattr(backend_module.graphs, "forward_decode_between_segments",
                        lambda *a, **k: seen.append("break") or "out")
    from sglang.srt.model_executor.forward_batch_info import ForwardMode

    batch = SimpleNamespace(forward_mode=ForwardMode.DECODE)
    for inside, config in ((False, GRAPH), (True, GRAPH), (True, EAGER)):
        monkeypatch.setattr(backend_module.graphs, "in_breakable_graph", lambda inside=inside: inside)
        backend.config = config
        backend.forward(None, None, None, None, batch)
    assert seen == ["decode", "break", "decode"]


def test_breakable_graph_buffers_hold_a_logits_output(monkeypatch):
    """SGLang's breakable backend cannot buffer a language model's decode output; the hooks can."""
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput
    from sglang.srt.model_executor.runner_backend.breakable_cuda_graph_backend import BreakableCudaGraphBackend as B

    monkeypatch.setenv("SGLANG_KV_OFFLOAD", GRAPH.to_json())
    hooks.process_config.cache_clear()
    try:
        graph_backend = B.__new__(B)
        captured = LogitsProcessorOutput(next_token_logits=torch.randn(3, 5), hidden_states=None)
        with pytest.raises(TypeError, match="Unsupported BCG output type"):
            B._alloc_full_buffer(graph_backend, captured, 4)  # SGLang alone
        buffer = hooks.graph_output_alloc(B._alloc_full_buffer, graph_backend, captured, 4)
        assert buffer.next_token_logits.shape == (4, 5) and buffer.hidden_states is None
        hooks.graph_output_copy(B._copy_output_to_buffer, graph_backend, captured, buffer, 3)
        stored = hooks.graph_output_slice(B._slice_output, graph_backend, buffer, 3)
        assert isinstance(stored, LogitsProcessorOutput)
        assert torch.equal(stored.next_token_logits, captured.next_token_logits)
        assert stored.next_token_logits.data_ptr() == buffer.next_token_logits.data_ptr()  # a view: replays land there
        tensor = torch.ones(2)
        assert hooks.graph_output_slice(B._slice_output, graph_backend, tensor, 1).shape == (1,)  # others: SGLang's
    finally:
        hooks.process_config.cache_clear()


@pytest.mark.parametrize("dtype", ["fp8_e4m3", "fp8_e5m2", "mxfp8", "nvfp4"])
def test_server_args_refuse_low_precision_kv_caches(dtype):
    """The offloaded decode reads the KV pool as 16- or 32-bit floats: other --kv-cache-dtype values
    fail at startup naming the flag and the value; auto and bf16 pass."""
    from sglang_kv.compat import check_server_args

    for ok in ("auto", "bf16", "bfloat16"):
        check_server_args(EAGER, SimpleNamespace(kv_cache_dtype=ok, **vars(_server_args("disabled"))))
    with pytest.raises(ConfigError, match=f"cannot be combined with --kv-cache-dtype {dtype} "):
        check_server_args(EAGER, SimpleNamespace(kv_cache_dtype=dtype, **vars(_server_args("disabled"))))
