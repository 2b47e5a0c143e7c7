"""Text2JSON through real CPU servers, stock then each ``--kv-offload`` method, and the release gate:
``python -m sglang_kv.bench text2json-mini``.

For stock SGLang and for each method (at its default budget unless ``--budget``), one CPU server
(``sglang_kv.cpu.server``) is started and the first ``--limit`` samples of a text2json build are run
with ``text2json eval`` (the build interleaves the four domains, so the first 4n samples are n per
domain). Each results file is scored (``text2json score --mode both``) and each method is gated
against stock (``text2json gate``, its default thresholds unless given). The exact ``text2json``
commands run are recorded. Every server gets ``--disable-radix-cache`` (no prefix-cache hit makes
stock and offloaded runs compute different things) and a fixed ``OMP_NUM_THREADS``; offloaded ones
``--kv-offload-min-prompt`` low enough that every sample is offloaded, which is checked on the
server's ``requests_offloaded``. Besides the scores, the share of samples whose prediction is
identical to stock's and the mean length of the common prefix are reported: with a model that
scores ~0, they are the only accuracy signal in these runs.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

PY = sys.executable
SERVER_FLAGS = ("--disable-radix-cache",)


def _run(args: list[str], log) -> subprocess.CompletedProcess:
    log("$ " + shlex.join(["python", *args[1:]]))
    return subprocess.run(args, capture_output=True, text=True)


def _predictions(path: Path) -> dict[str, str]:
    from text2json.results import read_results

    return {r["id"]: r.get("prediction") or "" for r in read_results(path)[1]}


def _agreement(stock: dict[str, str], other: dict[str, str]) -> dict:
    ids = sorted(stock)
    prefix = [next((i for i, (a, b) in enumerate(zip(stock[k], other[k])) if a != b),
                   min(len(stock[k]), len(other[k]))) for k in ids]
    return {"identical_predictions": sum(stock[k] == other[k] for k in ids), "num_samples": len(ids),
            "common_prefix_chars_mean": sum(prefix) / len(ids),
            "common_prefix_share_mean": sum(p / max(len(stock[k]), 1) for p, k in zip(prefix, ids)) / len(ids)}


def _score_summary(report: dict) -> dict:
    keys = ("score", "triple_iou", "triple_f1", "parse_failure_rate", "truncation_rate")
    return {**{k: report[k] for k in keys}, "per_domain": {d: v["score"] for d, v in report["per_domain"].items()}}


def run_text2json(model: str, dataset: str, work_dir: str | Path, methods: Sequence[str], *, limit: int,
                  max_tokens: int, concurrency: int = 1, budget: str | None = None, min_prompt: int = 256,
                  threads: int = 1, max_drop: float | None = None, max_domain_drop: float | None = None,
                  log_dir: str | Path | None = None, log=print) -> dict:
    """Run stock and each method, score, gate; returns the figures (see the module docstring)."""
    from sglang_kv.cpu.server import cpu_server

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    configs: dict[str, dict] = {}
    for label in ["stock", *methods]:
        out = work / f"{label}.jsonl"
        if out.exists():
            out.unlink()  # a fresh run: text2json eval would resume an old file
        flags = list(SERVER_FLAGS)
        if label != "stock":
            flags += ["--kv-offload", label, "--kv-offload-min-prompt", str(min_prompt)]
            flags += ["--kv-offload-budget", budget] if budget else []
        start = time.perf_counter()
        with cpu_server(model, flags, env={"OMP_NUM_THREADS": str(threads)}, log_dir=log_dir) as server:
            eval_args = [PY, "-m", "text2json", "eval", "--dataset", dataset, "--base-url", f"{server.url}/v1",
                         "--model", "default", "--out", str(out), "--limit", str(limit), "--max-tokens",
                         str(max_tokens), "--concurrency", str(concurrency), "--no-progress"]
            t0 = time.perf_counter()
            proc = _run(eval_args, log)
            eval_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"text2json eval against {label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            stats = server.offload_stats() if label != "stock" else None
        commands.append(shlex.join(["python", "-m", "text2json", "eval", "--dataset", dataset, "--base-url", "URL/v1",
                                    *eval_args[8:]]) + f"   # server: {label}, flags {shlex.join(flags)}")
        if stats is not None and stats["requests_offloaded"] < limit:
            raise RuntimeError(f"{label}: the server offloaded {stats['requests_offloaded']} of {limit} requests "
                               f"(--kv-offload-min-prompt {min_prompt}); the run would be stock's")
        score_json = work / f"score_{label}.json"
        score_args = [PY, "-m", "text2json", "score", str(out), "--mode", "both", "--json", str(score_json)]
        proc = _run(score_args, log)
        if proc.returncode != 0:
            raise RuntimeError(f"text2json score {out} failed:\n{proc.stderr[-3000:]}")
        commands.append(shlex.join(["python", *score_args[1:]]))
        reports = json.loads(score_json.read_text())["figures"]
        configs[label] = {"server_flags": flags, "paper": _score_summary(reports["paper"]),
                          "robust": _score_summary(reports["robust"]), "offload_stats": stats,
                          "eval_wall_s": round(eval_s, 1), "wall_s": round(time.perf_counter() - start, 1)}
        log(f"{label}: paper {configs[label]['paper']['score']}, robust {configs[label]['robust']['score']}, "
            f"eval {eval_s:.0f} s")
    stock_pred = _predictions(work / "stock.jsonl")
    for label in methods:
        gate_args = [PY, "-m", "text2json", "gate", "--baseline", str(work / "stock.jsonl"), "--candidate",
                     str(work / f"{label}.jsonl"), "--markdown", str(work / f"gate_{label}.md"),
                     "--json", str(work / f"gate_{label}.json")]
        gate_args += ["--max-drop", str(max_drop)] if max_drop is not None else []
        gate_args += ["--max-domain-drop", str(max_domain_drop)] if max_domain_drop is not None else []
        proc = _run(gate_args, log)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"text2json gate {label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        commands.append(shlex.join(["python", *gate_args[1:]]))
        report = json.loads((work / f"gate_{label}.json").read_text())
        configs[label]["gate"] = {"passed": report["passed"], "exit_code": proc.returncode,
                                  "checks": report["checks"], "report": str(work / f"gate_{label}.md")}
        configs[label]["vs_stock"] = _agreement(stock_pred, _predictions(work / f"{label}.jsonl"))
        log(f"gate {label}: {'PASS' if report['passed'] else 'FAIL'}")
    return {"configs": configs, "text2json_commands": commands}


def format_table(figures: dict) -> str:
    head = ("| server | paper score | robust score | parse failures | truncated | requests offloaded | "
            "identical to stock | gate | eval s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for label, c in figures["configs"].items():
        stats = c["offload_stats"]
        same = c.get("vs_stock")
        gate = c.get("gate")
        lines.append(f"| {label} | {c['paper']['score']:.2f} | {c['robust']['score']:.2f} | "
                     f"{c['paper']['parse_failure_rate']:.0%} | {c['paper']['truncation_rate']:.0%} | "
                     f"{'-' if stats is None else stats['requests_offloaded']} | "
                     f"{'-' if same is None else str(same['identical_predictions']) + '/' + str(same['num_samples'])} | "
                     f"{'-' if gate is None else ('pass' if gate['passed'] else 'FAIL')} | {c['eval_wall_s']:.0f} |")
    return "\n".join(lines)


def main_text2json(args, command: str) -> dict:
    """The ``text2json-mini`` subcommand (arguments from ``__main__._add_text2json``)."""
    from sglang_kv.cpu.models import smollm2_path
    from sglang_kv.results import write_result

    model = args.model or str(smollm2_path())
    start = time.perf_counter()
    figures = run_text2json(model, args.dataset, args.work_dir, args.methods, limit=args.limit,
                            max_tokens=args.max_tokens, concurrency=args.concurrency, budget=args.budget,
                            min_prompt=args.min_prompt, threads=args.threads, max_drop=args.max_drop,
                            max_domain_drop=args.max_domain_drop, log_dir=args.log_dir,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    workload = {"model": model, "dataset": args.dataset, "limit": args.limit, "max_tokens": args.max_tokens,
                "concurrency": args.concurrency, "methods": args.methods, "budget": args.budget or "method default",
                "min_prompt": args.min_prompt, "threads": args.threads, "work_dir": str(args.work_dir),
                "gate_thresholds": {"max_drop": args.max_drop, "max_domain_drop": args.max_domain_drop}}
    print(format_table(figures))
    print(f"\nwall time {figures['wall_s']} s")
    if args.out:
        write_result(args.out, workload, figures, command=command)
    return figures
