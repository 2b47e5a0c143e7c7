"""``python -m sglang_kv.bench fidelity|capture|logits|fidelity-layers|text2json-mini|layer|serve``.

fidelity: recall, attention mass, output error and bytes of each selector and budget, on synthetic
context-intensive layers at a model's shape (``--model-shape``) or on a capture file (``--input``);
prints a Markdown table and writes a result JSON (``--out``).

capture: run a Hugging Face causal LM over a text and write its post-RoPE Q/K/V (safetensors).

fidelity-layers: capture SmolLM2 (or --model) over text2json prompts and answers, then the fidelity of each
selector per layer and overall (``sglang_kv.bench.fidelity_layers``).

text2json-mini: text2json eval of stock and each --kv-offload method through CPU servers, scores and the
release gate of each method against stock (``sglang_kv.bench.text2json_gate``).

logits: greedy and teacher-forced logit fidelity of each --kv-offload method and budget against stock,
through real CPU SGLang servers (``sglang_kv.bench.logits``).

layer: one decode step of one layer on the GPU, against its floor and GPU-resident attention
(``sglang_kv.bench.layer``).

serve: output tokens/s and TTFT of N concurrent requests through real servers, stock vs each
--kv-offload method (``sglang_kv.bench.serve``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Sequence

import torch

from sglang_kv.bench.fidelity import DEFAULT_BUDGETS, DEFAULT_SELECTORS, Variant, evaluate, format_table
from sglang_kv.bench.shapes import MODELS, model_spec


def _add_fidelity(sub) -> None:
    p = sub.add_parser("fidelity", help="selection fidelity of each selector and budget")
    p.add_argument("--model-shape", default="llama-3.1-8b", choices=list(MODELS),
                   help="shape and RoPE of the synthetic layers (ignored with --input)")
    p.add_argument("--input", default=None, help="a capture file from `bench capture` instead of synthetic layers")
    p.add_argument("--tokens", type=int, default=32768, help="prompt tokens of the synthetic layers")
    p.add_argument("--layers", type=int, default=2, help="layers (synthetic draws, or captured layers evenly spaced)")
    p.add_argument("--queries", type=int, default=8, help="decode queries per synthetic layer")
    p.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS),
                   help="selected tokens per kv head: fractions of the prompt (or counts > 1)")
    p.add_argument("--selectors", nargs="+", default=list(DEFAULT_SELECTORS),
                   help="variants as name[:key=value,...]; keys are OffloadConfig fields or method options")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="result JSON path (e.g. results/fidelity_llama31_8b_32k.json)")


def _add_capture(sub) -> None:
    p = sub.add_parser("capture", help="capture post-RoPE Q/K/V of a Hugging Face causal LM over a text")
    p.add_argument("--model", required=True, help="Hugging Face model directory")
    p.add_argument("--text", default=None, help="text file (the whole file is the prompt)")
    p.add_argument("--text-jsonl", default=None, help="JSONL file; the prompt is --field of record --index")
    p.add_argument("--field", default="problem")
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--chat", action="store_true", help="wrap the text in the tokenizer's chat template")
    p.add_argument("--max-tokens", type=int, default=None, help="keep the first N tokens")
    p.add_argument("--queries", type=int, default=16, help="last tokens whose queries play the decode steps")
    p.add_argument("--layers", type=int, nargs="*", default=None, help="layer indices to capture (default all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--out", required=True, help="output .safetensors")


def _add_record_args(p, num_prompts: int) -> None:
    """The model and the text2json records a SmolLM2 accuracy bench runs on (``logits.choose_records``)."""
    p.add_argument("--dataset", required=True, help="text2json build folder or JSONL (e.g. `text2json build --preset mini`)")
    p.add_argument("--model", default=None, help="HF checkpoint dir (default: SmolLM2-135M-Instruct)")
    p.add_argument("--ids", nargs="*", default=None, help="record ids to use (default: picked by length and domain)")
    p.add_argument("--num-prompts", type=int, default=num_prompts)
    p.add_argument("--min-prompt-tokens", type=int, default=2000)
    p.add_argument("--max-prompt-tokens", type=int, default=6000)


def _add_logits(sub) -> None:
    from sglang_kv.bench.fidelity import DEFAULT_BUDGETS as budgets

    p = sub.add_parser("logits", help="greedy and teacher-forced logit fidelity against stock, through servers")
    _add_record_args(p, num_prompts=6)
    p.add_argument("--methods", nargs="+", default=["oracle", "yakv", "shadowkv", "quest"])
    p.add_argument("--budgets", type=float, nargs="*", default=[*budgets, 0.125],
                   help="fractions of the prompt (or counts > 1); none with --exact-check runs only the exact check")
    p.add_argument("--exact-check", action="store_true", help="also run each method at budget 1.0 with 16-bit payload")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--min-prompt", type=int, default=256, help="--kv-offload-min-prompt")
    p.add_argument("--offload-args", default="",
                   help='more flags for every offloaded server, one string: --offload-args="--kv-offload-local 32"')
    p.add_argument("--continuation", choices=["gold", "greedy"], default="gold",
                   help="forced tokens: the gold answer or stock's greedy output (default: gold)")
    p.add_argument("--stock-cache", default=None, help="file keeping stock's outputs for reuse by later invocations")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the servers")
    p.add_argument("--parallel", type=int, default=1, help="offloaded servers run at once (each with --threads)")
    p.add_argument("--log-dir", default=None, help="server logs (default: a temporary folder)")
    p.add_argument("--out", default=None, help="result JSON (written after every config)")


def _add_fidelity_layers(sub) -> None:
    p = sub.add_parser("fidelity-layers", help="per-layer fidelity on real captures of text2json prompts")
    _add_record_args(p, num_prompts=4)
    p.add_argument("--queries", type=int, default=16, help="gold answer tokens whose queries play the decode steps")
    p.add_argument("--layers", type=int, nargs="*", default=None, help="layer indices to capture (default all)")
    p.add_argument("--capture-dir", required=True, help="where captures are written (existing ones are reused)")
    p.add_argument("--budgets", type=float, nargs="+", default=[0.015625, 0.03125, 0.0625, 0.125])
    p.add_argument("--selectors", nargs="+", default=["oracle", "yakv", "yakv:landmark_residual=4", "shadowkv", "quest"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="result JSON")


def _add_text2json(sub) -> None:
    p = sub.add_parser("text2json-mini", help="text2json eval of stock and each method through servers, and the gate")
    p.add_argument("--dataset", required=True, help="text2json build folder or JSONL (`text2json build --preset mini`)")
    p.add_argument("--model", default=None, help="HF checkpoint dir (default: SmolLM2-135M-Instruct)")
    p.add_argument("--methods", nargs="+", default=["yakv", "shadowkv", "quest"])
    p.add_argument("--budget", default=None, help="--kv-offload-budget for every method (default: each method's)")
    p.add_argument("--limit", type=int, default=16, help="the first N samples (the build interleaves the domains)")
    p.add_argument("--max-tokens", type=int, default=384, help="answer budget per sample")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--min-prompt", type=int, default=256, help="--kv-offload-min-prompt")
    p.add_argument("--max-drop", type=float, default=None, help="gate threshold (default: text2json gate's)")
    p.add_argument("--max-domain-drop", type=float, default=None, help="gate threshold (default: text2json gate's)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the servers")
    p.add_argument("--work-dir", required=True, help="results JSONL, score and gate reports per server")
    p.add_argument("--log-dir", default=None, help="server logs (default: a temporary folder)")
    p.add_argument("--out", default=None, help="result JSON")


def run_fidelity(args: argparse.Namespace, command: str | None = None) -> dict:
    from sglang_kv.bench.synthetic import SyntheticSpec, make_layer
    from sglang_kv.results import write_result

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [Variant.parse(s) for s in args.selectors]
    start = time.perf_counter()
    if args.input:
        from sglang_kv.bench.capture import load_capture

        model, layers, meta = load_capture(args.input, args.layers)
        workload = {"kind": "capture", "input": args.input, "capture": meta}
        layer_iter = iter(layers)
    else:
        model = model_spec(args.model_shape)
        spec = SyntheticSpec(num_tokens=args.tokens, num_queries=args.queries, seed=args.seed)
        workload = {"kind": "synthetic", "model_shape": args.model_shape, "shape": model.shape._asdict(),
                    "num_layers_model": model.num_layers, "rope": model.rope.to_dict(), "layers": args.layers,
                    "synthetic": spec.to_dict()}
        layer_iter = (make_layer(spec, model, i) for i in range(args.layers))
    workload.update(budgets=args.budgets, selectors=args.selectors,
                    configs={v.label: {**v.config.__dict__, **v.options} for v in variants})
    figures = evaluate(layer_iter, model, variants, args.budgets, log=lambda m: print(m, file=sys.stderr))
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    figures["torch_threads"] = torch.get_num_threads()
    print(format_table(figures))
    if figures.get("exact_attention"):
        print(f"\nexact attention: {figures['exact_attention']}")
    print(f"wall time {figures['wall_s']} s")
    if args.out:
        write_result(args.out, workload, figures, command=command)
    return figures


def run_capture(args: argparse.Namespace) -> dict:
    from sglang_kv.bench.capture import capture, read_text

    text, source = read_text(args.text, args.text_jsonl, args.field, args.index)
    meta = capture(args.model, text, args.out, num_queries=args.queries, max_tokens=args.max_tokens,
                   layers=args.layers, chat=args.chat, device=args.device, dtype=getattr(torch, args.dtype),
                   source=source)
    print(f"captured {len(meta['layers'])} layers x {meta['num_tokens']} tokens -> {args.out}")
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sglang_kv.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_fidelity(sub)
    _add_capture(sub)
    _add_logits(sub)
    _add_fidelity_layers(sub)
    _add_text2json(sub)
    from sglang_kv.bench import layer, serve

    layer.build_parser(sub.add_parser("layer", help="one layer's decode step vs its floor and full attention (GPU)"))
    serve.build_parser(sub.add_parser("serve", help="throughput and TTFT through servers, stock vs offload"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "sglang_kv.bench", *argv])
    if args.cmd == "layer":
        raise SystemExit(layer.run(args, command))
    if args.cmd == "serve":
        raise SystemExit(serve.run(args, command))
    if args.cmd == "fidelity":
        run_fidelity(args, command=command)
    elif args.cmd == "fidelity-layers":
        from sglang_kv.bench.fidelity_layers import main_fidelity_layers

        main_fidelity_layers(args, command=command)
    elif args.cmd == "text2json-mini":
        from sglang_kv.bench.text2json_gate import main_text2json

        main_text2json(args, command=command)
    elif args.cmd == "logits":
        from sglang_kv.bench.logits import main_logits

        main_logits(args, command=command)
    else:
        run_capture(args)


if __name__ == "__main__":
    main()
