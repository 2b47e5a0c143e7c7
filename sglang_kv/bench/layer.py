"""``python -m sglang_kv.bench layer``: one decode step of one layer, as served, against its floor.

For each (batch, context, budget): ``batch`` requests of ``context`` prompt tokens at a model's
attention shape (default Llama-3.1-8B: 32 query / 8 kv heads x 128), summarized by the selector
(yakv: 2-bit landmarks on the GPU, 4-bit K/V payload in pinned host memory, exactly as the server
stores them), then timed with CUDA events (median of ``--iters``):

* ``offload_ms``: the serving decode step of one layer: select for the whole batch (landmark
  scores, softmax, top-k: ``select_batch``), gather + dequantize of the selected tokens from host
  memory (``gather_batch``), one attention call over [selected | 64 local exact] of every request
  (the backend's ``_sparse_attention`` minus SGLang's bookkeeping);
* ``full_ms``: GPU-resident bf16 attention over all ``context`` tokens (SDPA), the stock step;
* ``floor_ms``: max(PCIe bytes / 55 GB/s, HBM bytes / 4 TB/s) for the offload step, counting the
  payload rows the gather reads (measured ``load_bytes``) and the landmarks it scores.

With ``--cache F`` (yakv's device cache, ``--kv-offload-cache``) consecutive steps must differ the way
decode steps do: step ``t`` uses the query ``q + drift * noise_t`` (``--drifts``; fresh noise each
step, ``q`` and the noise standard normal), after ``--warmup-steps`` untimed steps that fill the
caches. Reported then: the hit rate of the timed steps, their mean host bytes, the floor on those
bytes and the floor without the cache (``floor_uncached_ms``).

With ``--chunks N ...`` each setting is also timed with the step split into ``N`` chunks of requests
pipelined over two CUDA streams, as the server runs it with ``--kv-offload-decode-chunks N``
(:mod:`sglang_kv.streams`: chunk ``i + 1``'s scores and top-k may run while chunk ``i``'s gather
waits on PCIe); on CPU the chunks run one after another. ``--finish-sms N ...`` times each chunk
count again with the gathers' persistent grids sized for ``N`` SMs on a top-priority stream
(``--kv-offload-decode-finish-sms N``), so that the next chunk's selection keeps the other SMs.

Reported: times, bytes, ratio to the floor and to full attention. GPU only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import shlex
import sys
import time
from typing import NamedTuple, Sequence

import torch

from sglang_kv.bench.shapes import MODELS, model_spec
from sglang_kv.config import PAYLOAD_GROUPS, OffloadConfig
from sglang_kv.select import ModelShape, make_selector
from sglang_kv.select.base import BatchKV
from sglang_kv.select.attention import selected_attention
from sglang_kv.store.host import HostArena, HostBlock
from sglang_kv.streams import DecodeStreams, decode_streams, run_pipelined

PCIE_BYTES_PER_S = 55e9
HBM_BYTES_PER_S = 4.0e12
LOCAL = 64


def _median_ms(fn, iters: int) -> float:
    """Median time of ``fn`` in ms: CUDA events on the GPU, the host clock on CPU (smoke runs)."""
    fn()  # warm-up (kernel tuning and compilation)
    times = []
    for _ in range(iters):
        if torch.cuda.is_available():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    return times[len(times) // 2]


def measure(shape: ModelShape, method: str, batch: int, context: int, budgets: Sequence[float], iters: int,
            arena: HostArena, payload_group: str = PAYLOAD_GROUPS[0], cache: float = 0.0, drifts: Sequence[float] = (0.0,),
            warmup_steps: int = 8, chunks: Sequence[int] = (1,), finish_sms: Sequence[int] = (0,)) -> list[dict]:
    """Build ``batch`` requests once, then time one decode step per budget, query drift, chunk count
    and finish SM limit."""
    if any(not 1 <= n <= batch for n in chunks):
        raise ValueError(f"--chunks must lie in [1, batch={batch}], got {list(chunks)}")
    if any(n < 0 for n in finish_sms):
        raise ValueError(f"--finish-sms must be >= 0 (0: all SMs), got {list(finish_sms)}")
    sel = make_selector(method, shape, OffloadConfig(method=method, payload_group=payload_group, cache=cache))
    dev = torch.device("cuda" if arena.pinned else "cpu")
    hkv, d, scale = shape.num_kv_heads, shape.head_dim, shape.head_dim ** -0.5
    summaries, blocks, locals_ = [], [], []
    for _ in range(batch):
        keys = torch.randn(context, hkv, d, device=dev, dtype=torch.bfloat16)
        values = torch.randn(context, hkv, d, device=dev, dtype=torch.bfloat16)
        summary = sel.build(keys[: context - LOCAL], values[: context - LOCAL])
        block = HostBlock(arena, summary.payload)
        blocks.append(block)
        summaries.append(dataclasses.replace(summary, payload=block.tensors))
        locals_.append((keys[context - LOCAL:], values[context - LOCAL:]))
        del keys, values
    locals_ = tuple(torch.stack(part) for part in zip(*locals_))  # K, V: (B, LOCAL, Hkv, D), pool rows
    q = torch.randn(batch, shape.num_q_heads, d, device=dev, dtype=torch.bfloat16)
    full_ms = _full_attention_ms(q, hkv, context, scale, iters)
    rows = []
    for b in budgets:
        k_budget = OffloadConfig(method=method, budget=b).budget_tokens(context)
        for drift, n_chunks, sms in itertools.product(drifts, chunks, finish_sms):
            step = functools.partial(_chunked_step, sel, summaries, locals_, k_budget=k_budget, scale=scale,
                                     streams=decode_streams(n_chunks, dev, sms))
            noise = torch.randn(warmup_steps + iters + 1, *q.shape, device=dev, dtype=torch.bfloat16)
            queries = iter(q + drift * noise)  # one per step: the untimed ones, _median_ms's warm-up, the timed ones
            for _ in range(warmup_steps if cache else 0):
                step(next(queries))
            row = _time_offload(step, sel.payload_row_bytes(), queries, iters)
            rows.append(row | {"k": k_budget, "budget": b, "cache": cache, "drift": drift, "chunks": n_chunks,
                               "finish_sms": sms})
    for block in blocks:
        block.release()
    hbm = batch * (summaries[0].device_bytes + 2 * hkv * LOCAL * d * 2)  # landmarks + local window
    full_bytes = 2 * batch * hkv * context * d * 2
    for row in rows:
        floor_ms = 1e3 * max(row["pcie_bytes"] / PCIE_BYTES_PER_S, hbm / HBM_BYTES_PER_S)
        row["floor_uncached_ms"] = 1e3 * max(row["pcie_bytes_uncached"] / PCIE_BYTES_PER_S, hbm / HBM_BYTES_PER_S)
        row.update(method=method, batch=batch, context=context, full_ms=full_ms, floor_ms=floor_ms,
                   hbm_bytes=hbm, full_attention_bytes=full_bytes, offload_over_floor=row["offload_ms"] / floor_ms,
                   offload_over_full=row["offload_ms"] / full_ms, full_attention_TB_s=full_bytes / full_ms / 1e9)
    return rows


def _full_attention_ms(q: torch.Tensor, num_kv_heads: int, context: int, scale: float, iters: int) -> float:
    """The stock step: SDPA of one query per request over ``context`` GPU-resident bf16 tokens."""
    batch, _, d = q.shape
    full_k = torch.randn(batch, num_kv_heads, context, d, device=q.device, dtype=torch.bfloat16)
    full_v = torch.randn_like(full_k)
    qf = q[:, :, None, :]
    return _median_ms(lambda: torch.nn.functional.scaled_dot_product_attention(
        qf, full_k, full_v, enable_gqa=True, scale=scale), iters)


def _select(sel, summaries, q, k_budget: int, scale: float):
    """The serving decode step's select for every request (``select_batch``)."""
    return sel.select_batch(q, summaries, [k_budget] * q.shape[0], scale)


def _finish(sel, summaries, locals_, q, selection, scale: float) -> BatchKV:
    """The rest of the serving decode step: ``gather_batch`` of ``selection``, then one attention
    call for every request (equal prompts: one call, as the backend groups them; the local windows
    ``(B, LOCAL, Hkv, D)`` read as rows of a KV pool). Returns ``gather_batch``'s :class:`BatchKV`."""
    batch = q.shape[0]
    k_local, v_local = (x.flatten(0, 1) for x in locals_)  # (B * LOCAL, Hkv, D)
    selected = sel.gather_batch(summaries, selection, dtype=torch.bfloat16)
    window = torch.arange(batch * LOCAL, device=q.device).view(batch, LOCAL)
    selected_attention(q, selected, slice(None), selection.counts[0], k_local, v_local, window, 0, scale)
    return selected


def _chunked_step(sel, summaries, locals_, q, k_budget: int, scale: float, streams: DecodeStreams) -> StepCounts:
    """The decode step on ``streams.chunks`` chunks of the requests, pipelined as the backend runs
    them with ``--kv-offload-decode-chunks`` (:func:`sglang_kv.streams.run_pipelined`). Returns the
    bytes and cache counts of all chunks."""
    def finish(part: slice, selection) -> StepCounts:
        kv = _finish(sel, summaries[part], tuple(x[part] for x in locals_), q[part], selection, scale)
        return StepCounts(kv.load_bytes, kv.cache_lookups, kv.cache_hits)

    steps = run_pipelined(q.shape[0], streams, lambda part: _select(sel, summaries[part], q[part], k_budget, scale),
                          finish)
    return StepCounts(*(sum(column) for column in zip(*steps)))


class StepCounts(NamedTuple):
    """What one decode step moved: host bytes, device-cache lookups and hits (as :class:`BatchKV`: with
    the cache, bytes and hits are device tensors)."""

    load_bytes: int | torch.Tensor
    cache_lookups: int
    cache_hits: int | torch.Tensor


def _time_offload(step, payload_row_bytes: int, queries, iters: int) -> dict:
    """Median time of ``step(q)`` over ``iters`` steps, each on the next of ``queries``; their mean
    host bytes and cache hits (the first, untimed step of ``_median_ms`` is left out of the counts)."""
    steps = []
    offload_ms = _median_ms(lambda: steps.append(step(next(queries))), iters)
    timed = steps[1:]
    # with the device cache, hits and bytes are device tensors: read once the steps are timed
    lookups, hits = sum(s.cache_lookups for s in timed), int(sum(s.cache_hits for s in timed))
    loaded = int(sum(s.load_bytes for s in timed)) / len(timed)
    uncached = lookups * payload_row_bytes / len(timed) if lookups else loaded
    return {"offload_ms": offload_ms, "pcie_bytes": loaded, "pcie_bytes_uncached": uncached,
            "cache_hit_rate": hits / lookups if lookups else None}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="python -m sglang_kv.bench layer", description=__doc__.split("\n\n")[0])
    p.add_argument("--model-shape", default="llama-3.1-8b", choices=list(MODELS))
    p.add_argument("--method", default="yakv")
    p.add_argument("--payload-group", default=PAYLOAD_GROUPS[0], choices=PAYLOAD_GROUPS,
                   help="yakv payload groups (--kv-offload-payload-group)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--contexts", type=int, nargs="+", default=[32768, 65536, 131072])
    p.add_argument("--budgets", type=float, nargs="+", default=[0.015625, 0.03125, 0.0625])
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--cache", type=float, default=0.0, help="yakv device cache (--kv-offload-cache): a fraction of the prompt")
    p.add_argument("--drifts", type=float, nargs="+", default=[0.0],
                   help="per-step query noise (relative to the unit-variance query); decides the cache's hit rate")
    p.add_argument("--warmup-steps", type=int, default=8, help="untimed steps that fill the cache")
    p.add_argument("--chunks", type=int, nargs="+", default=[1],
                   help="also time the step split into N chunks of requests pipelined over two CUDA streams "
                        "(as --kv-offload-decode-chunks N runs it)")
    p.add_argument("--finish-sms", type=int, nargs="+", default=[0],
                   help="also time each chunk count with the gathers' grids sized for N SMs on a top-priority "
                        "stream (as --kv-offload-decode-finish-sms N runs it; 0: all SMs)")
    p.add_argument("--host-gib", type=float, default=40.0, help="pinned host store for the payloads")
    p.add_argument("--cpu", action="store_true", help="functional smoke run on CPU (times are not meaningful)")
    p.add_argument("--out", default=None)
    return p


def run(args: argparse.Namespace, command: str | None = None) -> int:
    from sglang_kv.results import write_result

    if not torch.cuda.is_available() and not args.cpu:
        raise SystemExit("bench layer needs a CUDA GPU (--cpu: a functional smoke run, not a measurement)")
    shape = model_spec(args.model_shape).shape
    arena = HostArena(int(args.host_gib * 2**30), pin=not args.cpu)
    rows = []
    for context in args.contexts:
        for batch in args.batches:
            t0 = time.time()
            for row in measure(shape, args.method, batch, context, args.budgets, args.iters, arena, args.payload_group,
                               args.cache, args.drifts, args.warmup_steps, args.chunks, args.finish_sms):
                rows.append(row)
                hit = "" if row["cache_hit_rate"] is None else f" drift {row['drift']} hits {row['cache_hit_rate']:.0%}"
                hit += f" chunks {row['chunks']}" if row["chunks"] > 1 else ""
                hit += f" finish SMs {row['finish_sms']}" if row["finish_sms"] else ""
                print(f"B={batch:3d} L={context:6d} budget={row['budget']:.4f}{hit}: offload {row['offload_ms']:8.2f} ms, "
                      f"floor {row['floor_ms']:6.3f} ms (x{row['offload_over_floor']:.1f}), full attention "
                      f"{row['full_ms']:6.3f} ms (x{row['offload_over_full']:.1f}) [{time.time() - t0:.0f} s]",
                      flush=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if args.out:
        write_result(args.out, {"model_shape": args.model_shape, "method": args.method, "local": LOCAL,
                                "payload_group": args.payload_group, "cache": args.cache, "drifts": args.drifts,
                                "warmup_steps": args.warmup_steps, "chunks": args.chunks, "finish_sms": args.finish_sms,
                                "pcie_GB_s": PCIE_BYTES_PER_S / 1e9, "hbm_TB_s": HBM_BYTES_PER_S / 1e12},
                     {"rows": rows}, command=command or shlex.join(["python", "-m", "sglang_kv.bench.layer",
                                                                      *sys.argv[1:]]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
