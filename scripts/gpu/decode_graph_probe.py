"""Probe of ``--kv-offload-decode-graph 1`` for one method: which servers agree with which.

``tests/server/test_decode_graph_gpu.py`` compares one eager server with one graph server; for quest
their batch of four decoded other tokens (8d322c5) while the single requests agreed. This probe runs
two eager and two graph servers of the same tiny Llama at once on the GPU, each serving the test's
prompts twice (singles, then the batch of four), and reports for every pair of (server, round) where
each request's greedy tokens first differ. Eager against eager tells whether the batch is
deterministic at all; graph against graph whether replays are.

    python scripts/gpu/decode_graph_probe.py --method quest --out $OUT/decode_graph_probe_quest.json
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.server helpers

from sglang_kv.cpu.models import make_tiny_llama  # noqa: E402
from sglang_kv.cpu.server import cpu_server  # noqa: E402
from sglang_kv.results import write_result  # noqa: E402
from tests.server.conftest import greedy_outputs  # noqa: E402
from tests.server.test_decode_graph_gpu import OFFLOAD_ARGS, SERVER_ARGS, _first_differences  # noqa: E402

ROUNDS = 2


def _serve(model: Path, args: list[str], log_dir: Path) -> list[dict]:
    with cpu_server(model, args, cpu=False, log_dir=log_dir, startup_timeout=600) as server:
        return [greedy_outputs(server.url) for _ in range(ROUNDS)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="quest", choices=["yakv", "shadowkv", "quest"])
    p.add_argument("--mem-fraction", type=float, default=0.2, help="per server (four run at once)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="decode-graph-probe-"))
    model = make_tiny_llama(work / "tiny-llama-d128", hidden_size=512, num_heads=4, num_kv_heads=2)
    base = [a if prev != "--mem-fraction-static" else str(args.mem_fraction)
            for prev, a in zip([None, *SERVER_ARGS], SERVER_ARGS)]
    base += ["--kv-offload", args.method, *OFFLOAD_ARGS]
    servers = {"eager_a": base, "eager_b": base, "graph_a": [*base, "--kv-offload-decode-graph", "1"],
               "graph_b": [*base, "--kv-offload-decode-graph", "1"]}
    log_dir = Path(args.out).parent / f"decode_graph_probe_{args.method}_logs"
    with cf.ThreadPoolExecutor(len(servers)) as pool:
        futures = {name: pool.submit(_serve, model, server_args, log_dir / name)
                   for name, server_args in servers.items()}
        outputs = {name: future.result() for name, future in futures.items()}
    runs = {f"{name}/{r}": rounds[r] for name, rounds in outputs.items() for r in range(ROUNDS)}
    pairs = {f"{a} vs {b}": _first_differences(runs[a], runs[b]) for a, b in itertools.combinations(runs, 2)}
    for pair, diff in pairs.items():
        print(f"{pair}: {diff}")
    write_result(args.out, {"method": args.method, "servers": servers, "rounds": ROUNDS},
                 {"first_differences": pairs, "outputs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
