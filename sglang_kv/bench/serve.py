"""``python -m sglang_kv.bench serve``: end-to-end serving runs, stock SGLang vs ``--kv-offload``.

For each method, one fresh ``python -m sglang.launch_server`` with dummy weights of a model shape
(``sglang_kv/bench/models/<name>/config.json``, ``--load-format dummy --skip-tokenizer-init``), a
2048-token warm-up request (Triton compiles the prefill, offload and decode kernels on it), then ``--num-requests`` concurrent
streamed ``/generate`` requests of ``--prompt-len`` random token ids and ``--output-len`` new
tokens (``ignore_eos``). Recorded per method: completed and failed requests with their errors,
TTFT and end-to-end latency percentiles, output throughput over the run and decode throughput
(tokens after each request's first, over the span from the first first-token to the last finish),
the steady decode rate (the median of SGLang's own ``gen throughput`` log lines, written every
``--decode-log-interval`` decode steps, among the lines at the largest decode batch the server ran:
the rate while that batch decodes, which the client-side figure mixes with prefill time), with
``--kv-offload-decode-timing N`` in ``--offload-args`` the offloaded attention's device time per
step at the largest batch, its stages, their host time and the step's wall time
(:func:`sglang_kv.timing.parse_decode_timing`), the most requests the scheduler ran at once (its
log), the plugin's accounting and the capacity it logged.
Everything lands in one result JSON (``--out``) with the command and machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import random
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import requests

from sglang_kv.cpu.server import cpu_server
from sglang_kv.results import write_result
from sglang_kv.timing import parse_decode_timing

MODELS_DIR = Path(__file__).resolve().parent / "models"
GPU_ARGS = ["--load-format", "dummy", "--skip-tokenizer-init", "--attention-backend", "triton",
            "--sampling-backend", "pytorch"]


def _stream_one(url: str, input_ids: list[int], output_len: int, timeout: float) -> dict:
    """One streamed /generate request: timestamps of the first token and of the end."""
    start = time.perf_counter()
    record = {"start": start, "ttft": None, "e2e": None, "output_tokens": 0, "error": None}
    payload = {"input_ids": input_ids, "stream": True,
               "sampling_params": {"max_new_tokens": output_len, "temperature": 0, "ignore_eos": True}}
    try:
        with requests.post(f"{url}/generate", json=payload, stream=True, timeout=timeout) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if "error" in chunk:
                    raise RuntimeError(str(chunk["error"]))
                tokens = chunk.get("meta_info", {}).get("completion_tokens", 0)
                if tokens and record["ttft"] is None:
                    record["ttft"] = time.perf_counter() - start
                record["output_tokens"] = max(record["output_tokens"], tokens)
        record["e2e"] = time.perf_counter() - start
        if record["output_tokens"] != output_len:
            raise RuntimeError(f"got {record['output_tokens']} of {output_len} tokens")
    except Exception as e:  # recorded, counted as a failure
        record["error"] = f"{type(e).__name__}: {e}"
    return record


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]  # noqa: E731
    return {"mean": statistics.fmean(values), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99),
            "max": values[-1]}


def run_load(url: str, num_requests: int, prompt_len: int, output_len: int, vocab: int, seed: int,
             timeout: float) -> dict:
    """Send the concurrent requests and summarize them."""
    rng = random.Random(seed)
    prompts = [[rng.randrange(100, vocab) for _ in range(prompt_len)] for _ in range(num_requests)]
    begin = time.perf_counter()
    with cf.ThreadPoolExecutor(num_requests) as pool:
        records = list(pool.map(lambda p: _stream_one(url, p, output_len, timeout), prompts))
    duration = time.perf_counter() - begin
    ok = [r for r in records if r["error"] is None]
    first_tokens = [r["start"] + r["ttft"] for r in ok]
    ends = [r["start"] + r["e2e"] for r in ok]
    decode_span = (max(ends) - min(first_tokens)) if ok else 0.0
    decode_tokens = sum(r["output_tokens"] - 1 for r in ok)
    return {
        "completed": len(ok),
        "failed": len(records) - len(ok),
        "errors": sorted({r["error"] for r in records if r["error"]})[:10],
        "duration_s": duration,
        "output_throughput_tok_s": sum(r["output_tokens"] for r in ok) / duration if duration else 0.0,
        "decode_throughput_tok_s": decode_tokens / decode_span if decode_span > 0 else 0.0,
        "ttft_s": _percentiles([r["ttft"] for r in ok]),
        "e2e_s": _percentiles([r["e2e"] for r in ok]),
    }


def _max_running(log: str) -> int:
    return max((int(n) for n in re.findall(r"#running-req: (\d+)", log)), default=0)


_DECODE_LINE = re.compile(r"Decode batch.*?#running-req: (\d+),.*?gen throughput \(token/s\): ([0-9.]+)")


def steady_decode(log: str) -> dict | None:
    """SGLang's decode log lines -> the median gen throughput at the largest decode batch.

    Each ``Decode batch`` line reports the tokens generated since the previous line over the time
    since then, so a line whose interval also held prefill chunks reads low; the median over the
    lines at the largest batch is the rate while that batch decodes.
    """
    lines = [(int(n), float(rate)) for n, rate in _DECODE_LINE.findall(log)]
    if not lines:
        return None
    batch = max(n for n, _ in lines)
    rates = [rate for n, rate in lines if n == batch]
    return {"batch": batch, "tok_s": statistics.median(rates), "lines_at_batch": len(rates),
            "lines": len(lines), "rates_at_batch": rates}


def _logged(log: str, pattern: str) -> str | None:
    found = re.findall(pattern, log)
    return found[-1] if found else None


def run_method(model_dir: Path, method: str, args: argparse.Namespace) -> dict:
    server_args = ["--decode-log-interval", str(args.decode_log_interval)]
    if not args.cpu:
        server_args += [*GPU_ARGS, *(["--disable-cuda-graph"] if args.no_cuda_graph else []),
                        "--mem-fraction-static", str(args.mem_fraction_static)]
    server_args += shlex.split(args.server_args)
    if method != "none":
        server_args += ["--kv-offload", method, *shlex.split(args.offload_args)]
    started = time.perf_counter()
    with cpu_server(model_dir, server_args, cpu=args.cpu, startup_timeout=args.startup_timeout,
                    log_dir=args.log_dir) as server:
        ready = time.perf_counter() - started
        warm = time.perf_counter()
        # long enough to be offloaded (default --kv-offload-min-prompt 1024): compiles that path too
        warmup_ids = [100 + i % (args.vocab - 100) for i in range(2048)]
        warmup = _stream_one(server.url, warmup_ids, 4, args.request_timeout)
        warmup_s = time.perf_counter() - warm
        load = run_load(server.url, args.num_requests, args.prompt_len, args.output_len, args.vocab,
                        args.seed, args.request_timeout)
        info = server.server_info()["internal_states"][0]
        log = server.log()
    return {
        "method": method,
        "server_args": server_args,
        "startup_s": ready,
        "warmup_s": warmup_s,
        "warmup_error": warmup["error"],
        **load,
        "steady_decode": steady_decode(log),
        "decode_timing": parse_decode_timing(log),
        "max_running_requests": _max_running(log),
        "max_total_num_tokens": info.get("memory_usage", {}).get("token_capacity"),
        "kv_offload": info.get("kv_offload"),
        "capacity_log": _logged(log, r"sglang-kv: (KV capacity: .*)"),
        "max_total_num_tokens_log": _logged(log, r"max_total_num_tokens=(\d+)"),
    }


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="python -m sglang_kv.bench serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="llama-3.1-8b", help=f"model shape under {MODELS_DIR} or a config dir")
    p.add_argument("--methods", default="none,yakv", help="comma-separated: none (stock), yakv, shadowkv, ...")
    p.add_argument("--num-requests", type=int, default=32)
    p.add_argument("--prompt-len", type=int, default=65536)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--vocab", type=int, default=32000, help="random token ids are drawn in [100, vocab)")
    p.add_argument("--mem-fraction-static", type=float, default=0.85)
    p.add_argument("--server-args", default="", help="extra SGLang flags for every method")
    p.add_argument("--offload-args", default="", help="extra --kv-offload-* flags for offload methods")
    p.add_argument("--decode-log-interval", type=int, default=4,
                   help="SGLang's --decode-log-interval for every server: decode steps per gen-throughput log line")
    p.add_argument("--no-cuda-graph", action="store_true", help="also disable CUDA graphs for stock")
    p.add_argument("--cpu", action="store_true",
                   help="CPU smoke run (real weights of a small checkpoint given by --model, torch_native)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--startup-timeout", type=float, default=900)
    p.add_argument("--request-timeout", type=float, default=1800)
    p.add_argument("--log-dir", default=None, help="server logs (default: a temp dir)")
    p.add_argument("--out", default=None, help="result JSON")
    return p


def main(argv: Sequence[str] | None = None, command: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args, command)


def run(args: argparse.Namespace, command: str | None = None) -> int:
    model_dir = MODELS_DIR / args.model if (MODELS_DIR / args.model).is_dir() else Path(args.model)
    if not (model_dir / "config.json").exists():
        raise SystemExit(f"--model {args.model}: no config.json in {model_dir}")
    runs = []
    for method in args.methods.split(","):
        print(f"[serve] {args.model}: {method}, {args.num_requests} x {args.prompt_len} tokens", flush=True)
        try:
            runs.append(run_method(model_dir, method, args))
        except Exception as e:  # a method that cannot start is a result too
            runs.append({"method": method, "error": f"{type(e).__name__}: {e}"[-4000:]})
        print(json.dumps({k: v for k, v in runs[-1].items() if k not in ("server_args",)}, default=str)[:2000],
              flush=True)
    workload = {"model": args.model, "num_requests": args.num_requests, "prompt_len": args.prompt_len,
                "output_len": args.output_len, "methods": args.methods, "offload_args": args.offload_args,
                "server_args": args.server_args, "mem_fraction_static": args.mem_fraction_static,
                "decode_log_interval": args.decode_log_interval}
    figures = {"runs": runs}
    if args.out:
        write_result(args.out, workload, figures,
                     command=command or shlex.join(["python", "-m", "sglang_kv.bench.serve", *sys.argv[1:]]))
    failed = any(r.get("error") or r.get("failed") for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
