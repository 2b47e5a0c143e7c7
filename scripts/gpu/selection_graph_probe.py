"""``--kv-offload-decode-graph 2`` against 1 at one layer (GPU host): yakv's batched selection and gather of a
decode batch run eagerly (``select_batch`` + ``gather_batch``, what graph 1 runs between segments) and as
the replayed CUDA graph of :class:`sglang_kv.graphs.SelectionGraphs`, side by side in one run.

Each of ``--layers`` layers has stores of its own (the replay copies each layer's tables in). Per way:
the host's time to queue one layer (no sync inside: what bounds a launch-bound step) and the device's
time per layer (a whole pass over the layers, synchronized, median of ``--iters``), and whether both ways
select and gather the same rows. Writes JSON (``--out``).

    python scripts/gpu/selection_graph_probe.py --model-shape qwen3-30b-a3b --batch 32 --context 32768
"""

import argparse
import json
import time

import torch

from sglang_kv.bench.layer import LOCAL
from sglang_kv.bench.shapes import model_spec
from sglang_kv.config import OffloadConfig
from sglang_kv.graphs import SelectionGraphs
from sglang_kv.results import write_result
from sglang_kv.select import make_selector
from sglang_kv.store.host import HostArena, HostBlock


def _layer(sel, shape, batch, context, arena):
    summaries = []
    for _ in range(batch):
        keys = torch.randn(context - LOCAL, shape.num_kv_heads, shape.head_dim, device="cuda", dtype=torch.bfloat16)
        summary = sel.build(keys, torch.randn_like(keys))
        block = HostBlock(arena, summary.payload)
        summary.payload = block.tensors
        summary._block = block  # keeps the host rows alive
        summaries.append(summary)
    return summaries


def _timed(pass_over_layers, iters):
    """(host ms, device ms) per pass: host = queueing alone (synchronized before, not inside), device = the
    synchronized pass; medians of ``iters``."""
    pass_over_layers()
    host, device = [], []
    for _ in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pass_over_layers()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        host.append(1e3 * (t1 - t0))
        device.append(1e3 * (time.perf_counter() - t0))
    return sorted(host)[iters // 2], sorted(device)[iters // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-shape", default="qwen3-30b-a3b")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=32768)
    p.add_argument("--budget", type=float, default=0.03125)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--iters", type=int, default=7)
    p.add_argument("--host-gib", type=int, default=8, help="pinned host store (4 layers of 32 x 32K need 2.1 GiB)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    shape = model_spec(args.model_shape).shape
    config = OffloadConfig(method="yakv", budget=args.budget, decode_graph=2)
    sel = make_selector("yakv", shape, config)
    arena = HostArena(args.host_gib << 30, pin=True)
    layers = [_layer(sel, shape, args.batch, args.context, arena) for _ in range(args.layers)]
    queries = [torch.randn(args.batch, shape.num_q_heads, shape.head_dim, device="cuda", dtype=torch.bfloat16)
               for _ in layers]
    ks = [config.budget_tokens(args.context)] * args.batch
    scale = shape.head_dim ** -0.5
    graphs = SelectionGraphs(sel)

    def eager_pass():
        for q, summaries in zip(queries, layers):
            selection = sel.select_batch(q, summaries, ks, scale)
            sel.gather_batch(summaries, selection, torch.bfloat16)

    def replayed_pass():
        for q, summaries in zip(queries, layers):
            graphs.run(q, summaries, ks, scale, torch.bfloat16)

    same = True
    for q, summaries in zip(queries, layers):
        selection = sel.select_batch(q, summaries, ks, scale)
        kv = sel.gather_batch(summaries, selection, torch.bfloat16)
        got_selection, got_kv = graphs.run(q, summaries, ks, scale, torch.bfloat16)
        same &= torch.equal(got_selection.index, selection.index) and torch.equal(got_kv.k, kv.k)
        same &= torch.equal(got_kv.v, kv.v)
    eager_host, eager_device = _timed(eager_pass, args.iters)
    graph_host, graph_device = _timed(replayed_pass, args.iters)
    n = args.layers
    figures = {
        "same_rows_and_values": bool(same), "captures": graphs.captures, "replays": graphs.replays,
        "eager_host_ms_per_layer": eager_host / n, "eager_device_ms_per_layer": eager_device / n,
        "replayed_host_ms_per_layer": graph_host / n, "replayed_device_ms_per_layer": graph_device / n,
        "host_ratio_eager_over_replayed": eager_host / graph_host,
        "device_ratio_eager_over_replayed": eager_device / graph_device,
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        write_result(args.out, {k: v for k, v in vars(args).items() if k != "out"}, figures)


if __name__ == "__main__":
    main()
