"""Where one batched decode step of one layer spends its time (GPU host): the stages of
``bench layer``'s offload step timed apart (synchronized, median of 7), Llama-3.1-8B shape.

``attention``: the fused attention as serving calls it; ``attention_kernel`` the kernel alone with
the GB/s of the bytes it must read and write (against ~4 TB/s of HBM); ``attention_sdpa_cat`` the
gather-cat-SDPA path it replaced. ``step_host``: the host's time to queue one step (no sync inside). ``topk*``: torch's top-k and sort
against the package's one-launch top-k (``kernels.topk``), device and host time; with head groups,
the gather's distinct per-head rows by the kernel (``kernels.head_rows``) against its torch path.
``softmax_topk_*``: the selection's softmax and top-k over rows a multiple of 16 columns wide, one column
wider, and that width padded to a multiple of 16 (as ``select_batch`` pads it). Then the whole step under
``torch.profiler``: a table of the ops by host (self CPU) time, kernels and copies per step, the time the GPU is busy
and the time it idles while the host launches work or waits on a sync (what CUDA graphs could at
most save; the step's data-dependent sizes, e.g. ``torch.unique``, keep it from being captured).

    python scripts/gpu/profile_layer.py --batch 32 --context 65536 --budget 0.03125 --payload-group token
"""

import argparse
import json
import time

import torch

from sglang_kv.bench.layer import LOCAL
from sglang_kv.bench.shapes import model_spec
from sglang_kv.config import OffloadConfig
from sglang_kv.kernels import head_rows
from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import softmax as sk
from sglang_kv.kernels import topk as tpk
from sglang_kv.select import make_selector
from sglang_kv.select.attention import selected_attention, sparse_decode_attention
from sglang_kv.select.base import topk_sorted
from sglang_kv.store.host import HostArena, HostBlock


def timed(fn, iters=7):
    fn()
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - t0))
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-shape", default="llama-3.1-8b")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=65536)
    p.add_argument("--budget", type=float, default=0.03125)
    p.add_argument("--payload-group", default="token")
    p.add_argument("--cprofile", action="store_true", help="print the host's 30 costliest functions over 5 steps")
    p.add_argument("--cache", type=float, default=0.0, help="yakv device cache (steps repeat the query: all hits)")
    args = p.parse_args()
    shape = model_spec(args.model_shape).shape
    hq, hkv, d = shape.num_q_heads, shape.num_kv_heads, shape.head_dim
    config = OffloadConfig(method="yakv", payload_group=args.payload_group, budget=args.budget, cache=args.cache)
    sel = make_selector("yakv", shape, config)
    arena = HostArena(48 << 30, pin=True)
    summaries = []
    for _ in range(args.batch):
        keys = torch.randn(args.context - LOCAL, hkv, d, device="cuda", dtype=torch.bfloat16)
        s = sel.build(keys, torch.randn_like(keys))
        block = HostBlock(arena, s.payload)
        s.payload = block.tensors
        s._block = block
        summaries.append(s)
    q = torch.randn(args.batch, hq, d, device="cuda", dtype=torch.bfloat16)
    k = config.budget_tokens(args.context)
    ks = [k] * args.batch
    scale = d ** -0.5
    refs = [sel._landmark_ref(s, q.device) for s in summaries]  # head-major, as the selector scores them
    lengths_list = [args.context - LOCAL] * args.batch
    logits = torch.empty(args.batch, hq, args.context - LOCAL, device="cuda")
    stages = {}
    stages["score_batch"] = timed(lambda: hk.score_refs(sel.landmark_q, q, refs, lengths_list, out=logits))
    lengths = torch.full((args.batch,), logits.shape[-1], dtype=torch.int32, device="cuda")
    stages["softmax_gqa_max"] = timed(lambda: sk.group_max_softmax_batch(logits, lengths, hkv, scale))
    scores = sk.group_max_softmax_batch(logits, lengths, hkv, scale)
    stages["topk"] = timed(lambda: torch.topk(scores, k, dim=-1, sorted=True))
    stages["topk_unsorted"] = timed(lambda: torch.topk(scores, k, dim=-1, sorted=False))
    stages["topk_host"] = host_ms(lambda: torch.topk(scores, k, dim=-1, sorted=True))
    stages["topk_unsorted_host"] = host_ms(lambda: torch.topk(scores, k, dim=-1, sorted=False))
    top = torch.topk(scores, k, dim=-1).indices
    stages["sort"] = timed(lambda: torch.sort(top, dim=-1))
    stages["topk_then_sort_host"] = host_ms(lambda: topk_sorted(scores, k))  # the torch path: topk, then sort
    # the package's top-k (one launch: the same index-ordered set), against its torch reference
    flat = scores.view(-1, scores.shape[-1])
    counts = torch.full((flat.shape[0],), k, dtype=torch.int32, device="cuda")
    stages["topk_kernel"] = timed(lambda: tpk.topk_sorted_batch(flat, counts, k))
    stages["topk_kernel_host"] = host_ms(lambda: tpk.topk_sorted_batch(flat, counts, k))
    stages["topk_kernel_read_gbps"] = flat.numel() * 4 / stages["topk_kernel"] / 1e6  # one read of the scores
    stages["topk_kernel_equals_reference"] = torch.equal(tpk.topk_sorted_batch(flat, counts, k),
                                                         tpk.topk_sorted_batch_ref(flat, counts, k))
    # softmax + top-k over rows a multiple of 16 wide (aligned), one column wider (unaligned: the width is
    # the longest prompt's candidate count, so 15 of 16 prompt lengths give one), and that width padded to
    # a multiple of 16 (as select_batch pads it)
    wide = logits.shape[-1] + 1
    for name, columns, length in (("aligned", wide - 1, wide - 1), ("unaligned", wide, wide),
                                  ("padded", -(-wide // 16) * 16, wide)):
        rows = torch.empty(args.batch, hq, columns, device="cuda")
        rows[..., :wide - 1] = logits
        rows[..., wide - 1:length] = logits[..., :length - wide + 1]
        lens = torch.full((args.batch,), length, dtype=torch.int32, device="cuda")

        def softmax_topk(rows=rows, lens=lens):
            got = sk.group_max_softmax_batch(rows, lens, hkv, scale)
            return tpk.topk_sorted_batch(got.view(-1, got.shape[-1]), counts, k)

        stages[f"softmax_topk_{name}"] = timed(softmax_topk)
    stages["select_batch"] = timed(lambda: sel.select_batch(q, summaries, ks, scale))
    selection = sel.select_batch(q, summaries, ks, scale)
    stages["gather_batch"] = timed(lambda: sel.gather_batch(summaries, selection, torch.bfloat16))
    if args.payload_group == "head":  # the gather's distinct per-head rows: the kernel vs its torch path
        counts = torch.tensor(selection.counts, dtype=torch.int32, device="cuda")
        num_rows = logits.shape[-1] * hkv
        for name, fn in (("head_rows_kernel", lambda: head_rows.head_rows(selection.index, counts, num_rows)),
                         ("head_rows_torch", lambda: head_rows.head_rows_ref(selection.index, counts, num_rows))):
            stages[name] = timed(fn)
            stages[name + "_host"] = host_ms(fn)
        stages["head_rows_equal"] = all(
            torch.equal(a, b) for a, b in zip(head_rows.head_rows(selection.index, counts, num_rows),
                                              head_rows.head_rows_ref(selection.index, counts, num_rows)))
    kv = sel.gather_batch(summaries, selection, torch.bfloat16)
    loc = torch.randn(args.batch * LOCAL, hkv, d, device="cuda", dtype=torch.bfloat16)  # local windows, pool rows
    window = torch.arange(args.batch * LOCAL, device="cuda").view(args.batch, LOCAL)

    n = selection.counts[0]
    loc_b = loc.view(args.batch, LOCAL, hkv, d).transpose(1, 2)
    # the fused kernel (serving's path) against SDPA over the rows concatenated (the path before it)
    stages["attention"] = timed(lambda: selected_attention(q, kv, slice(None), n, loc, loc, window, 0, scale))
    # the kernel alone on the same rows, and the bytes it must read (K and V rows, their row ids, q) per ms
    from sglang_kv.kernels.attention import sparse_decode_attention_rows

    sel_rows = kv.rows[:, :, :n]
    stages["attention_kernel"] = timed(lambda: sparse_decode_attention_rows(
        q, kv.k_rows, kv.v_rows, sel_rows, loc, loc, window, scale))
    kernel_bytes = ((sel_rows.numel() + window.numel() * hkv) * 2 * d * 2 + sel_rows.numel() * 8
                    + window.numel() * 8 + 2 * q.numel() * 2)
    stages["attention_kernel_GB_s"] = kernel_bytes / stages["attention_kernel"] / 1e6
    stages["attention_sdpa_cat"] = timed(lambda: sparse_decode_attention(
        q, torch.cat([kv.k[:, :, :n], loc_b], 2), torch.cat([kv.v[:, :, :n], loc_b], 2), scale))
    stages["load_bytes"] = kv.load_bytes

    def step():
        chosen = sel.select_batch(q, summaries, ks, scale)
        got = sel.gather_batch(summaries, chosen, torch.bfloat16)
        selected_attention(q, got, slice(None), n, loc, loc, window, 0, scale)

    stages["step"] = timed(step)
    stages["step_host"] = host_ms(step)
    if args.cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    try:
        stages["launch_overhead"] = launch_overhead(step)
    except Exception as error:  # noqa: BLE001 - the stage timings above still print
        stages["launch_overhead"] = f"{type(error).__name__}: {error}"
    stages["tuning"] = {str(key): {"chosen": str(v["chosen"]), "median_ms": {str(c): t for c, t in v["median_ms"].items()}}
                        for key, v in __import__("sglang_kv.kernels._triton_utils", fromlist=["x"]).TUNING_LOG.items()}
    print(json.dumps({"args": vars(args), "stages_ms": stages}, indent=1))


def host_ms(fn, iters=7) -> float:
    """Median host time to queue ``fn`` on an idle GPU (no sync inside the timed span): what the
    step costs the CPU, against ``timed``'s end-to-end time."""
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    torch.cuda.synchronize()
    return sorted(times)[len(times) // 2]


def launch_overhead(step, steps: int = 5) -> dict:
    """Per step: GPU kernels and copies, the time the GPU is busy (union of their intervals) and the
    span from the first to the last, under torch.profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    # the host's cost per op kind (self CPU time, under the profiler's own overhead)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA)
    busy, end = 0.0, float("-inf")
    for start, stop in spans:  # union of intervals
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    span = spans[-1][1] - spans[0][0] if spans else 0.0
    return {"device_ops_per_step": len(spans) / steps, "gpu_busy_ms": busy / steps / 1e3,
            "gpu_span_ms": span / steps / 1e3, "gpu_idle_fraction": 1 - busy / span if span else None}


if __name__ == "__main__":
    main()
