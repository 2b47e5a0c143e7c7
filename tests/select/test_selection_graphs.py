"""``--kv-offload-decode-graph 2``: yakv's selection and gather as one launch sequence per batch, captured
at the batch's first layer and replayed, with the layer's query and address tables copied in, for the
others (:class:`sglang_kv.graphs.SelectionGraphs`).

On CPU the kernels run in the Triton interpreter and a stand-in capture replays by running the captured
launches again and copying the results into the captured outputs (what a graph replay does to them);
the GPU test captures real CUDA graphs with the payload in pinned host memory.
"""

from __future__ import annotations

import pytest
import torch

from sglang_kv import graphs
from sglang_kv.config import ConfigError, OffloadConfig
from sglang_kv.select import ModelShape, make_selector
from sglang_kv.select import yakv as yakv_module
from sglang_kv.kernels import higgs as higgs_kernels
from tests.select.test_select_batch import DEVICE, SHAPE, _pinned_requests

SCALE = 0.2


def _outputs(result) -> list[torch.Tensor]:
    selection, kv = result
    return [selection.index, kv.k_rows, kv.v_rows, kv.rows]


class _RerunCapture:
    """Stand-in for :func:`graphs.capture_cuda` on CPU: ``launch`` runs once at capture (checked to copy
    nothing from the host), and every replay runs it again into the captured outputs."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.pools = []

    def __call__(self, launch, pool):
        self.pools.append(pool)
        result = self._launch_without_host_copies(launch)

        def replay():
            for kept, fresh in zip(_outputs(result), _outputs(launch())):
                kept.copy_(fresh)

        return replay, result

    def _launch_without_host_copies(self, launch):
        def refuse(*args, **kwargs):
            raise AssertionError("the captured launches copied values from the host")

        with self.monkeypatch.context() as patch:
            for module in (yakv_module, higgs_kernels):
                patch.setattr(module, "device_ints", refuse)
            patch.setattr(torch, "unique", refuse)
            return launch()


def _layers(sel, lengths, num_layers, seed):
    """``num_layers`` layers of the same requests: each layer's summaries (stores of their own) and query."""
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(num_layers):
        summaries = [sel.build(torch.randn(n, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen).to(DEVICE),
                               torch.randn(n, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen).to(DEVICE))
                     for n in lengths]
        q = (3 * torch.randn(len(lengths), SHAPE.num_q_heads, SHAPE.head_dim, generator=gen)).to(DEVICE)
        layers.append((q, summaries))
    return layers


def _assert_equals_eager(sel, q, summaries, ks, result):
    """The replayed (or eager) selection and gather equal the batched kernels' separate calls, bit for bit."""
    selection, kv = result
    want = sel._select_batch_kernels(q, summaries, ks, SCALE)
    want_kv = sel._gather_batch_rows(summaries, want, torch.float32, kernels=True)
    assert selection.counts == want.counts
    assert torch.equal(selection.index, want.index)
    assert torch.equal(kv.k, want_kv.k) and torch.equal(kv.v, want_kv.v)
    assert kv.load_bytes == want_kv.load_bytes


def test_layers_of_one_batch_replay_one_capture(monkeypatch):
    """Three layers, two steps: the first layer runs eagerly and captures, the other five replay, each
    with its own layer's stores (a replay that kept the captured layer's tables would score and gather
    layer 0's tokens)."""
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv"))
    capture = _RerunCapture(monkeypatch)
    selection_graphs = graphs.SelectionGraphs(sel, capture=capture, pool="pool")
    lengths, ks = [70, 33, 120], [16, 40, 24]
    layers = _layers(sel, lengths, 3, seed=11)
    for step in range(2):
        for layer, (q, summaries) in enumerate(layers):
            q = q + step  # a new query every step
            _assert_equals_eager(sel, q, summaries, ks, selection_graphs.run(q, summaries, ks, SCALE, torch.float32))
    assert (selection_graphs.captures, selection_graphs.replays) == (1, 5)
    assert capture.pools == ["pool"]
    first, second = layers[0][1], layers[1][1]
    assert not torch.equal(sel.step_plan(first, ks, DEVICE).select.table, sel.step_plan(second, ks, DEVICE).select.table)


def test_a_new_batch_captures_and_the_oldest_graph_goes(monkeypatch):
    """A batch of other requests (other lengths) captures a graph of its own; ``max_graphs`` batches are
    kept, the least recently run one dropped."""
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv"))
    selection_graphs = graphs.SelectionGraphs(sel, capture=_RerunCapture(monkeypatch), pool="pool", max_graphs=2)
    batches = {name: (_layers(sel, lengths, 1, seed)[0], ks) for name, lengths, ks, seed in
               [("a", [70, 33], [16, 40], 1), ("b", [50, 50, 64], [12, 12, 12], 2), ("c", [40], [8], 3)]}
    counts = []
    for name in "aabbaca":  # a: captured, replayed; b: captured, replayed; a: replayed; c evicts b; a replayed
        (q, summaries), ks = batches[name]
        _assert_equals_eager(sel, q, summaries, ks, selection_graphs.run(q, summaries, ks, SCALE, torch.float32))
        counts.append((selection_graphs.captures, selection_graphs.replays))
    assert counts == [(1, 0), (1, 1), (2, 1), (2, 2), (2, 3), (3, 3), (3, 4)]
    (q, summaries), ks = batches["b"]
    selection_graphs.run(q, summaries, ks, SCALE, torch.float32)
    assert selection_graphs.captures == 4  # b was dropped: captured again


def test_scale_and_dtype_are_part_of_the_graph(monkeypatch):
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv"))
    selection_graphs = graphs.SelectionGraphs(sel, capture=_RerunCapture(monkeypatch), pool="pool", max_graphs=4)
    (q, summaries), = _layers(sel, [70, 33], 1, seed=5)
    for scale, dtype in [(SCALE, torch.float32), (0.1, torch.float32), (SCALE, torch.bfloat16), (SCALE, torch.float32)]:
        selection_graphs.run(q, summaries, [16, 16], scale, dtype)
    assert (selection_graphs.captures, selection_graphs.replays) == (3, 1)


@pytest.mark.parametrize("options,problem", [
    ({"cache": 0.1}, "cache 0.1"), ({"payload_group": "token"}, "payload_group 'token'"),
    ({"landmark_residual": 4}, "landmark_residual 4"), ({"kv_bits": 8}, "kv_bits 8")])
def test_selectors_without_a_fixed_launch_sequence_are_refused(options, problem):
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv", **options))
    with pytest.raises(ValueError, match=f"cannot with .*{problem}"):
        graphs.SelectionGraphs(sel)
    with pytest.raises(ValueError, match=problem):
        sel.step_plan([], [], DEVICE)


def test_other_selectors_are_refused():
    with pytest.raises(ValueError, match="quest selector cannot with no batched kernels"):
        graphs.SelectionGraphs(make_selector("quest", SHAPE, OffloadConfig(method="quest")))


@pytest.mark.parametrize("options,flag", [
    ({"method": "shadowkv"}, "--kv-offload shadowkv"), ({"method": "yakv", "cache": 0.1}, "--kv-offload-cache"),
    ({"method": "yakv", "payload_group": "token"}, "--kv-offload-payload-group token"),
    ({"method": "yakv", "decode_chunks": 2}, "--kv-offload-decode-chunks 2"),
    ({"method": "yakv", "kv_bits": 16}, "--kv-offload-kv-bits 16"),
    ({"method": "yakv", "landmark_residual": 4}, "--kv-offload-landmark-residual 4")])
def test_decode_graph_2_config_names_what_it_cannot_serve(options, flag):
    with pytest.raises(ConfigError, match=f"^--kv-offload-decode-graph 2 .*{flag}"):
        OffloadConfig(decode_graph=2, **options)
    assert OffloadConfig(method="yakv", decode_graph=2).decode_graph == 2


def test_table_must_match_the_stores():
    sel = make_selector("yakv", SHAPE, OffloadConfig(method="yakv"))
    (q, summaries), = _layers(sel, [70, 33], 1, seed=5)
    plan = sel.step_plan(summaries, [16, 16], DEVICE)
    bad = plan._replace(select=plan.select._replace(table=plan.select.table[:1]))
    with pytest.raises(ValueError, match=r"table must be int64 \[2, 3\]"):
        sel.select_gather(q, bad, SCALE, torch.float32)
    bad = plan._replace(gather=plan.gather._replace(table=plan.gather.table.int()))
    with pytest.raises(ValueError, match=r"table must be int64 \[2, 2\]"):
        sel.select_gather(q, bad, SCALE, torch.float32)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", [ModelShape(32, 4, 128), ModelShape(32, 8, 128)])
def test_gpu_replayed_graphs_equal_the_eager_launches(shape):
    """Real CUDA graphs, payload in pinned host memory, 4 layers x 3 steps, then another batch: every
    replay equals the eager launches bit for bit (the same kernels with the same tuned configs)."""
    sel = make_selector("yakv", shape, OffloadConfig(method="yakv"))
    selection_graphs = graphs.SelectionGraphs(sel)
    gen = torch.Generator().manual_seed(8)
    for lengths, ks in [([3000, 700, 5000], [96, 700, 160]), ([2048] * 4, [64] * 4)]:
        layers = [_pinned_requests(sel, shape, lengths, gen) for _ in range(4)]  # (summaries, blocks) per layer
        for step in range(3):
            for summaries, _blocks in layers:
                q = torch.randn(len(lengths), shape.num_q_heads, shape.head_dim, generator=gen).cuda()
                selection, kv = selection_graphs.run(q, summaries, ks, shape.head_dim ** -0.5, torch.bfloat16)
                want = sel.select_gather(q, sel.step_plan(summaries, ks, q.device), shape.head_dim ** -0.5,
                                         torch.bfloat16)
                assert torch.equal(selection.index, want[0].index)
                assert torch.equal(kv.k, want[1].k) and torch.equal(kv.v, want[1].v)
                assert torch.equal(kv.rows, want[1].rows) and kv.load_bytes == want[1].load_bytes
    assert (selection_graphs.captures, selection_graphs.replays) == (2, 22)


def test_backend_attends_over_the_replayed_selection(monkeypatch):
    """The offload backend's sparse attention with ``--kv-offload-decode-graph 2`` (the selection and gather
    from ``SelectionGraphs``, here with the stand-in capture) gives the eager path's outputs and counts,
    layer after layer over two steps."""
    from types import SimpleNamespace

    from sglang_kv.backend import OffloadAttnBackend, RowPlan
    from sglang_kv.state import OffloadStats, RequestState
    from sglang_kv.streams import decode_streams

    config = OffloadConfig(method="yakv", decode_graph=2, budget=24)
    sel = make_selector("yakv", SHAPE, config)
    lengths, sink, local = [70, 120], 4, 6
    layers = _layers(sel, lengths, 2, seed=13)  # candidates [sink, sink + n) of each request
    gen = torch.Generator().manual_seed(14)
    pool_k = torch.randn(400, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen)
    pool_v = torch.randn(400, SHAPE.num_kv_heads, SHAPE.head_dim, generator=gen)
    req_to_token = torch.arange(2 * 200, dtype=torch.int32).view(2, 200)  # request b's token t: pool row 200 b + t
    states = []
    for b, n in enumerate(lengths):
        state = RequestState(f"r{b}", b, sink + n + local, sink, sink + n)
        state.summaries = {layer: summaries[b] for layer, (_, summaries) in enumerate(layers)}
        states.append(state)

    def backend(selection_graphs):
        b = OffloadAttnBackend.__new__(OffloadAttnBackend)
        b.config, b._windows = config, {}
        b.runtime = SimpleNamespace(
            selector=sel, selection_graphs=selection_graphs, decode_timer=None, table=SimpleNamespace(stats=OffloadStats()),
            token_to_kv_pool=SimpleNamespace(get_key_buffer=lambda layer: pool_k, get_value_buffer=lambda layer: pool_v),
            req_to_token_pool=SimpleNamespace(req_to_token=req_to_token), rows=lambda slots: slots,
            decode_streams=decode_streams(1, DEVICE))
        return b

    replayed = backend(graphs.SelectionGraphs(sel, capture=_RerunCapture(monkeypatch), pool="pool"))
    eager = backend(None)
    for step in range(2):
        rows = [RowPlan(b, state, state.prompt_len + 1 + step) for b, state in enumerate(states)]
        for b in (replayed, eager):
            b._windows = {}  # a new step (the backend's plan resets it)
        for layer_id, (q, _) in enumerate(layers):
            layer = SimpleNamespace(layer_id=layer_id, scaling=0.2, v_head_dim=SHAPE.head_dim)
            got = replayed._sparse_attention(layer, q + step, rows)
            want = eager._sparse_attention(layer, q + step, rows)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert replayed.runtime.selection_graphs.replays == 3
    assert replayed.runtime.table.stats == eager.runtime.table.stats
    assert eager.runtime.table.stats.selected_tokens == 4 * SHAPE.num_kv_heads * 2 * 24
