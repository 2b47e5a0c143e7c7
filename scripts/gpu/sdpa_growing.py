"""The decode attention call with a key length that grows one token per step, as in serving (GPU host).

``sparse_decode_attention`` over ``[B, Hkv, n, D]`` keys for ``n = n0, n0 + 1, ...``: per call, the
host's time to issue it and the wall time to its completion, with the package's backends (cuDNN left
out on CUDA) and with cuDNN's SDPA allowed first (torch's default on the H200), side by side in one
run; then the same with the length held at ``n0`` (what ``bench layer`` does). cuDNN builds a graph
per new length, so its growing-length calls are expected to cost milliseconds and its fixed-length
calls not. Prints one line per case and writes JSON with ``--out``:

    python scripts/gpu/sdpa_growing.py [--batch 32] [--q-heads 32] [--kv-heads 4] [--n0 1100] [--steps 20]
"""

import argparse
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from sglang_kv.select import attention


def run_case(backends, lengths, batch, hq, hkv, d):
    """Median host ms to issue one call and median wall ms per call (synchronized), over ``lengths``."""
    host, wall = [], []
    q = torch.randn(batch, hq, d, device="cuda", dtype=torch.bfloat16)
    kv = torch.randn(2, batch, hkv, max(lengths), d, device="cuda", dtype=torch.bfloat16)
    for n in lengths:
        k, v = kv[0, :, :, :n].contiguous(), kv[1, :, :, :n].contiguous()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        if backends is None:
            attention.sparse_decode_attention(q, k, v, d ** -0.5)
        else:
            with sdpa_kernel(backends, set_priority=True):  # the order given, cuDNN first
                attention.scaled_dot_product_attention(
                    q.unsqueeze(-2), k, v, enable_gqa=hq != hkv, scale=d ** -0.5)
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        host.append(1e3 * (t1 - t0))
        wall.append(1e3 * (t2 - t0))
    return statistics.median(host), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--q-heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--n0", type=int, default=1100, help="first key length (Qwen3-30B-A3B 32K at 3.125%%: ~1100)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cudnn_first = [SDPBackend.CUDNN_ATTENTION, *attention.CUDA_BACKENDS]
    shape = (args.batch, args.q_heads, args.kv_heads, args.head_dim)
    growing = list(range(args.n0 + 1, args.n0 + 1 + args.steps))
    fixed = [args.n0] * args.steps
    run_case(None, [args.n0], *shape)  # warm both paths at n0 (first-call setup is not what is measured)
    run_case(cudnn_first, [args.n0], *shape)
    records = []
    for label, backends in (("package (no cuDNN)", None), ("cuDNN first", cudnn_first)):
        for kind, lengths in (("growing", growing), ("fixed", fixed)):
            host_ms, wall_ms = run_case(backends, lengths, *shape)
            records.append({"backends": label, "lengths": kind, "host_ms": host_ms, "wall_ms": wall_ms})
            print(f"{label:<18} {kind:<8} host {host_ms:8.3f} ms  wall {wall_ms:8.3f} ms per call")
    if args.out:
        from sglang_kv.results import write_result

        workload = {"q": f"[{args.batch}, {args.q_heads}, {args.head_dim}] bf16",
                    "kv": f"[{args.batch}, {args.kv_heads}, n, {args.head_dim}] bf16",
                    "growing": f"n = {growing[0]}..{growing[-1]}, one call each", "fixed": f"n = {args.n0}",
                    "timing": "median over the calls of perf_counter around the call (host) and to sync (wall)"}
        write_result(args.out, workload, {"records": records})


if __name__ == "__main__":
    main()
