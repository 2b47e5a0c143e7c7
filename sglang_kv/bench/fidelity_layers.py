"""Selection fidelity per layer on real activations of several text2json prompts:
``python -m sglang_kv.bench fidelity-layers``.

For each record (``--ids``) of a text2json build, the chat-templated prompt followed by the first
``--queries`` tokens of the gold answer is written to ``CAPTURE_DIR/<id>.txt`` and captured with
``bench capture`` (``sglang_kv.bench.capture``; the answer tokens' queries play the decode steps, so
the queries are the model's own while it writes the entity names and values the document holds).
Every captured layer of every capture is then evaluated on its own with ``fidelity.evaluate`` (the
metrics of ``sglang_kv.bench.fidelity``), and the figures are reported per layer (mean over
captures) and overall (mean over layers and captures; every (capture, layer) has the same number of
queries, so this equals the mean over all queries).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from sglang_kv.bench.fidelity import METRICS, Variant, evaluate

# Figures averaged when rows of several (capture, layer) pairs are merged; ``recall_min`` is a min.
_MEAN_KEYS = tuple(m for m in METRICS if m != "target_recall") + (
    "gpu_bytes_per_token", "host_bytes_per_token", "pcie_bytes_per_step_model", "select_ms_per_query", "budget_tokens")


def capture_text(tokenizer, record: dict, num_answer_tokens: int) -> tuple[str, list[int]]:
    """The text to capture (chat template rendered, then the answer's first tokens) and the ids it
    must tokenize to (the chat prompt's ids, then the answer's)."""
    from sglang_kv.bench.logits import chat_ids

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": record["problem"]}],
                                           add_generation_prompt=True, tokenize=False)
    answer_ids = list(tokenizer(record["answer"], add_special_tokens=False)["input_ids"])[:num_answer_tokens]
    if len(answer_ids) < num_answer_tokens:
        raise ValueError(f"{record['id']}: the gold answer has only {len(answer_ids)} tokens")
    return prompt + tokenizer.decode(answer_ids), chat_ids(tokenizer, record["problem"]) + answer_ids


def make_captures(model: str, records: Sequence[dict], capture_dir: str | Path, num_queries: int,
                  layers: Sequence[int] | None, log=print) -> list[dict]:
    """Capture each record (skipping files already there); returns per capture its path, the
    equivalent ``bench capture`` command and its metadata."""
    from transformers import AutoTokenizer

    from sglang_kv.bench.capture import capture

    tokenizer = AutoTokenizer.from_pretrained(model)
    capture_dir = Path(capture_dir)
    capture_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for record in records:
        text, expected_ids = capture_text(tokenizer, record, num_queries)
        if list(tokenizer(text)["input_ids"]) != expected_ids:
            raise ValueError(f"{record['id']}: the rendered text does not tokenize to the chat prompt + answer ids")
        text_path = capture_dir / f"{record['id']}.txt"
        text_path.write_text(text)
        path = capture_dir / f"{record['id']}.safetensors"
        command = ["python", "-m", "sglang_kv.bench", "capture", "--model", str(model), "--text", str(text_path),
                   "--queries", str(num_queries), *(["--layers", *map(str, layers)] if layers else []),
                   "--out", str(path)]
        if not path.exists():
            t0 = time.perf_counter()
            capture(model, text, str(path), num_queries=num_queries, layers=layers, source=f"file {text_path}")
            log(f"captured {record['id']} ({len(expected_ids)} tokens) in {time.perf_counter() - t0:.0f} s")
        out.append({"id": record["id"], "domain": record["domain"], "path": str(path), "num_tokens": len(expected_ids),
                    "command": shlex.join(command)})
    return out


def _merge(rows: list[dict]) -> dict:
    merged = dict(rows[0])
    for key in _MEAN_KEYS:
        values = [r[key] for r in rows if r.get(key) is not None]
        merged[key] = sum(values) / len(values) if values else None
    merged["recall_min"] = min(r["recall_min"] for r in rows)
    merged["num_queries"] = sum(r["num_queries"] for r in rows)
    return merged


def evaluate_by_layer(capture_paths: Sequence[str], variants: Sequence[Variant], budgets: Sequence[float],
                      log=print) -> dict[str, Any]:
    """Per-layer and overall fidelity rows over the captures (each layer evaluated on its own)."""
    from sglang_kv.bench.capture import load_capture

    cells: dict[tuple[str, float], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    per_capture = []
    for path in capture_paths:
        model, layers, meta = load_capture(path)
        t0 = time.perf_counter()
        for layer_index, data in zip(meta["layers_evaluated"], layers):
            figures = evaluate([data], model, variants, budgets, log=lambda _m: None)
            for row in figures["rows"]:
                cells[(row["selector"], row["budget"])][layer_index].append(row)
        per_capture.append({"path": path, "prompt_len": meta["prompt_len"], "layers": meta["layers_evaluated"],
                            "wall_s": round(time.perf_counter() - t0, 1)})
        log(f"  {Path(path).name}: {len(layers)} layers in {per_capture[-1]['wall_s']} s")
    overall, per_layer = [], defaultdict(list)
    for (label, budget), by_layer in cells.items():
        overall.append(_merge([r for rows in by_layer.values() for r in rows]))
        for layer_index in sorted(by_layer):
            per_layer[layer_index].append({**_merge(by_layer[layer_index]), "layer": layer_index})
    return {"rows": overall, "per_layer": {str(k): v for k, v in sorted(per_layer.items())}, "captures": per_capture}


def format_layer_table(figures: dict, metric: str = "recall") -> str:
    """Rows: variant and budget; columns: layers; cells: ``metric``."""
    layers = list(figures["per_layer"])
    head = "| selector | budget | " + " | ".join(f"L{i}" for i in layers) + " | all |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in figures["rows"]:
        cells = [next(r for r in figures["per_layer"][i] if r["selector"] == row["selector"] and r["budget"] == row["budget"])
                 for i in layers]
        lines.append(f"| {row['selector']} | {row['budget']:.4%} | " + " | ".join(f"{c[metric]:.3f}" for c in cells)
                     + f" | {row[metric]:.3f} |")
    return "\n".join(lines)


def main_fidelity_layers(args, command: str) -> dict:
    """The ``fidelity-layers`` subcommand (arguments from ``__main__._add_fidelity_layers``)."""
    import torch

    from sglang_kv.bench.fidelity import format_table
    from sglang_kv.bench.logits import choose_records
    from sglang_kv.cpu.models import smollm2_path
    from sglang_kv.results import write_result
    from text2json.data import load_records

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or str(smollm2_path())
    chosen = choose_records(load_records(args.dataset), args.ids, args.num_prompts, args.min_prompt_tokens,
                            args.max_prompt_tokens)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    captures = make_captures(model, chosen, args.capture_dir, args.queries, args.layers, log=log)
    capture_s = time.perf_counter() - start
    variants = [Variant.parse(s) for s in args.selectors]
    figures = evaluate_by_layer([c["path"] for c in captures], variants, args.budgets, log=log)
    figures.update(capture_wall_s=round(capture_s, 1), wall_s=round(time.perf_counter() - start, 1),
                   torch_threads=torch.get_num_threads())
    workload = {"kind": "capture-by-layer", "model": model, "dataset": args.dataset, "captures": captures,
                "queries": f"the first {args.queries} tokens of the gold answer after the chat prompt",
                "budgets": args.budgets, "selectors": args.selectors,
                "configs": {v.label: {**v.config.__dict__, **v.options} for v in variants}}
    print(format_table(figures))
    print()
    print(format_layer_table(figures))
    print(f"\nwall time {figures['wall_s']} s (captures {figures['capture_wall_s']} s)")
    if args.out:
        write_result(args.out, workload, figures, command=command)
    return figures
