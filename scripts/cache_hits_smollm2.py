"""How often yakv's device cache hits on a real model: SmolLM2-135M-Instruct served on CPU.

Starts one CPU server per ``--caches`` value (``--kv-offload yakv``, defaults otherwise: budget
3.125%, per-head payload groups as SmolLM2 has 3 kv heads x 64), sends the same concurrent
extraction requests (record lists of 3K-7K tokens, greedy, ``--max-tokens`` new tokens; one at a
time with ``--sequential``) and reads the
plugin's counters: payload rows looked up, cache hits, bytes read from host memory. The rows a step
needs do not depend on the cache (it holds copies of the same bytes), so the greedy outputs must
agree across runs; the script checks that. Writes one result JSON (``--out``).

    python scripts/cache_hits_smollm2.py --out results/cache_hits_smollm2_cpu.json
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import shlex
import sys

import requests

from sglang_kv.cpu.models import smollm2_path
from sglang_kv.cpu.prompts import records_document
from sglang_kv.cpu.server import cpu_server
from sglang_kv.results import write_result

PROMPTS = [records_document(n, seed) + f"\nList every record that ships from {city}, one JSON object per line "
           '({"record": ..., "supplier": ..., "part": ..., "days": ...}).'
           for n, seed, city in ((130, 11, "Cork"), (180, 12, "Oslo"), (230, 13, "Lima"), (280, 14, "Kyoto"))]


def _chat(url: str, content: str, max_tokens: int) -> dict:
    payload = {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
               "temperature": 0}
    r = requests.post(f"{url}/v1/chat/completions", json=payload, timeout=3600)
    r.raise_for_status()
    return r.json()


def run_one(model, cache: float, args) -> dict:
    flags = ["--kv-offload", "yakv", "--kv-offload-cache", str(cache), *shlex.split(args.offload_args)]
    with cpu_server(model, flags, startup_timeout=600) as server:
        with cf.ThreadPoolExecutor(1 if args.sequential else len(PROMPTS)) as pool:
            replies = list(pool.map(lambda p: _chat(server.url, p, args.max_tokens), PROMPTS))
        stats = server.offload_stats()
    lookups, hits = stats["cache_lookups"], stats["cache_hits"]
    return {"cache": cache, "offload_args": args.offload_args,
            "prompt_tokens": [r["usage"]["prompt_tokens"] for r in replies],
            "completion_tokens": [r["usage"]["completion_tokens"] for r in replies],
            "outputs": [r["choices"][0]["message"]["content"] for r in replies],
            "cache_lookups": lookups, "cache_hits": hits, "hit_rate": hits / lookups if lookups else None,
            "loaded_bytes": stats["loaded_bytes"], "decode_steps": stats["decode_steps"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--caches", type=float, nargs="+", default=[0.0, 0.0625, 0.125, 0.25])
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sequential", action="store_true",
                   help="one request at a time: the same batches in every run (concurrent requests are batched "
                        "as they happen to arrive, which can change bf16 rounding and so a near-tied greedy token)")
    p.add_argument("--offload-args", default="", help="more --kv-offload-* flags for every run")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    model = smollm2_path()
    runs = []
    for cache in args.caches:
        runs.append(run_one(model, cache, args))
        r = runs[-1]
        print(f"cache {cache}: hit rate {r['hit_rate']}, {r['loaded_bytes']} bytes from host, prompts "
              f"{r['prompt_tokens']}, {sum(r['completion_tokens'])} new tokens", flush=True)
    same = all(r["outputs"] == runs[0]["outputs"] for r in runs)
    print(f"greedy outputs identical across cache sizes: {same}")
    if args.out:
        write_result(args.out, {"model": "SmolLM2-135M-Instruct (bf16, CPU)", "method": "yakv", "sequential": args.sequential,
                                "max_tokens": args.max_tokens, "num_requests": len(PROMPTS), "caches": args.caches},
                     {"runs": runs, "outputs_identical": same},
                     command=shlex.join(["python", "scripts/cache_hits_smollm2.py", *sys.argv[1:]]))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
