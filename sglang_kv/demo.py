"""CPU demo: SmolLM2-135M-Instruct served by stock SGLang and with ``--kv-offload``, side by side.

    python -m sglang_kv.demo [--method oracle] [--budget 0.03125] [--max-new-tokens 64]

Starts a real ``python -m sglang.launch_server`` on CPU twice (stock, then offloaded), sends the
same long chat prompts to each (greedy), and prints per prompt: prompt length, both answers, token
agreement (matching prefix and position-wise) and latencies, then the plugin's accounting.
"""

from __future__ import annotations

import argparse
import time

import requests

from sglang_kv.config import METHODS
from sglang_kv.cpu.models import smollm2_path
from sglang_kv.cpu.prompts import record_questions
from sglang_kv.cpu.server import cpu_server


def _run(url: str, prompts: list[list[int]], max_new_tokens: int) -> list[dict]:
    results = []
    for ids in prompts:
        start = time.perf_counter()
        r = requests.post(f"{url}/generate", timeout=900, json={
            "input_ids": ids,
            "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0},
        })
        r.raise_for_status()
        out = r.json()
        out["wall_s"] = time.perf_counter() - start
        results.append(out)
    return results


def token_agreement(a: list[int], b: list[int]) -> tuple[int, float]:
    """(length of the common prefix, fraction of positions < max(len) where both agree)."""
    prefix = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    n = max(len(a), len(b), 1)
    same = sum(x == y for x, y in zip(a, b))
    return prefix, same / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="oracle", choices=[m for m in METHODS if m != "none"])
    parser.add_argument("--budget", default="0.03125", help="--kv-offload-budget (default 0.03125)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--model", default=None, help="HF checkpoint dir (default: SmolLM2-135M-Instruct)")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    model = args.model or smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(model)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             tokenize=True, return_dict=False) for q in record_questions()]
    offload_flags = ["--kv-offload", args.method, "--kv-offload-budget", args.budget,
                     "--kv-offload-min-prompt", "512"]
    runs = {}
    for name, flags in (("stock", []), (args.method, offload_flags)):
        print(f"[demo] starting {name} server: {' '.join(flags) or '(no --kv-offload)'}", flush=True)
        with cpu_server(model, flags) as server:
            runs[name] = _run(server.url, prompts, args.max_new_tokens)
            stats = server.offload_stats() if flags else None
    stock, offload = runs["stock"], runs[args.method]
    print(f"\nSmolLM2-135M-Instruct on CPU: stock vs --kv-offload {args.method} --kv-offload-budget {args.budget}")
    for i, (ids, s, o) in enumerate(zip(prompts, stock, offload)):
        prefix, frac = token_agreement(s["output_ids"], o["output_ids"])
        print(f"\n--- prompt {i}: {len(ids)} tokens; agreement: first {prefix} tokens identical, "
              f"{100 * frac:.0f}% of positions; latency stock {s['wall_s']:.2f} s, "
              f"{args.method} {o['wall_s']:.2f} s")
        print(f"  stock : {s['text'][:200]!r}")
        print(f"  {args.method:6s}: {o['text'][:200]!r}")
    print(f"\nplugin accounting: {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
