"""The selection's top-k kernel against an earlier revision of it and against torch, side by side.

    git show REV:sglang_kv/kernels/topk_triton.py > .wh/topk_base/topk_triton.py   # on the dev machine
    python scripts/gpu/topk_bench.py --baseline-file .wh/topk_base/topk_triton.py --baseline-label REV \
        --out results/topk_bench_h200.json

Per shape (rows = requests x kv heads, columns = context tokens, width = the budget's token count):
median ms of ``kernels.topk.topk_sorted_batch`` and of the same kernel as committed at ``REV``
(a copy of its ``topk_triton.py``: the GPU host gets no git history), each at the fastest of
``TOPK_CONFIGS`` (as ``pick_config`` chooses in serving; every config's time is recorded, the two-stage
configs' (``chunks`` > 1) among them; the baseline at each of their one-program-per-row forms too, or at
their block sizes and warps with 8-bit digits where its kernel has no ``DIGIT_BITS``), and of
torch's path (``torch.topk`` + the sort of its indices, ``topk_sorted_batch_ref``-equivalent without
the tie rule); the ratios between them; the scores' read rate (one pass over ``rows x cols x 4``
bytes) of each; and whether the outputs are equal to the torch reference. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch
import triton.testing

from sglang_kv.kernels import topk
from sglang_kv.results import write_result

# (rows, cols, width): Qwen3-30B-A3B (4 kv heads) and Llama-3.1-8B (8 kv heads) at 32 requests, 3.125%
SHAPES = [(128, 16384, 512), (128, 32768, 1024), (256, 32768, 1024), (256, 65536, 2048)]


def load_kernel(path: Path):
    """``topk_sorted_kernel`` of another copy of ``topk_triton.py``."""
    spec = importlib.util.spec_from_file_location("topk_triton_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.topk_sorted_kernel


def bench(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def fastest(run, configs, is_correct) -> tuple[float, str, dict, bool]:
    """Median ms and name of the fastest of ``configs`` for ``run(config)``, every config's median
    ms, and whether every config's output passed ``is_correct(config)``."""
    timings, correct = {}, True
    for cfg in configs:
        correct = is_correct(cfg) and correct
        timings[str(cfg)] = bench(lambda cfg=cfg: run(cfg))
    best = min(timings, key=timings.get)
    return timings[best], best, timings, correct


def measure(rows: int, cols: int, width: int, baseline, device: str = "cuda") -> dict:
    gen = torch.Generator(device=device).manual_seed(rows + cols)
    scores = torch.rand(rows, cols, device=device, generator=gen).softmax(-1)  # probabilities, as served
    counts = torch.full((rows,), width, dtype=torch.int32, device=device)
    out = torch.empty(rows, width, dtype=torch.int64, device=device)
    want = topk.topk_sorted_batch_ref(scores, counts, width)

    def run_kernel(cfg):
        topk.topk_sorted_batch(scores, counts, width, out=out, config=cfg)

    takes_digit_bits = "DIGIT_BITS" in baseline.arg_names  # revisions before 2026-12-03 counted 8 bits, fixed

    def run_baseline(cfg):  # a TopkConfig; its digit_bits only where the baseline takes them
        extra = {"DIGIT_BITS": cfg.digit_bits} if takes_digit_bits else {}
        baseline[(rows,)](scores, counts, out, cols, width, scores.stride(0), out.stride(0),
                          BLOCK=cfg.block, num_warps=cfg.num_warps, **extra)

    def output_correct(run):
        def is_correct(cfg) -> bool:
            out.fill_(-1)
            run(cfg)
            return torch.equal(out, want)
        return is_correct

    kernel_ms, kernel_config, kernel_configs, equal = fastest(run_kernel, topk.TOPK_CONFIGS, output_correct(run_kernel))
    # the baseline runs one program per row: each config's block, warps (and digits where it takes them)
    launch_configs = list(dict.fromkeys((c if takes_digit_bits else c._replace(digit_bits=8))._replace(chunks=1)
                                        for c in topk.TOPK_CONFIGS))
    baseline_ms, baseline_config, baseline_configs, baseline_equal = fastest(run_baseline, launch_configs,
                                                                             output_correct(run_baseline))
    torch_ms = bench(lambda: torch.sort(torch.topk(scores, width, dim=-1, sorted=False).indices, dim=-1))
    read = rows * cols * 4
    return {"rows": rows, "cols": cols, "width": width, "config": kernel_config,
            "baseline_config": baseline_config, "kernel_ms": kernel_ms,
            "baseline_ms": baseline_ms, "torch_ms": torch_ms, "kernel_vs_baseline": baseline_ms / kernel_ms,
            "kernel_vs_torch": torch_ms / kernel_ms, "kernel_read_gbps": read / kernel_ms / 1e6,
            "baseline_read_gbps": read / baseline_ms / 1e6, "torch_read_gbps": read / torch_ms / 1e6,
            "equal_to_reference": equal, "baseline_equal_to_reference": baseline_equal,
            "kernel_ms_per_config": kernel_configs, "baseline_ms_per_config": baseline_configs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-file", type=Path, required=True,
                        help="a topk_triton.py to compare against (git show REV:sglang_kv/kernels/topk_triton.py)")
    parser.add_argument("--baseline-label", required=True, help="the git revision the baseline file was taken at")
    parser.add_argument("--out", default="results/topk_bench_h200.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU")
    baseline = load_kernel(args.baseline_file)
    records = []
    for rows, cols, width in SHAPES:
        record = measure(rows, cols, width, baseline)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)
        records.append(record)
    write_result(args.out, command="python scripts/gpu/topk_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
                 workload={"shapes": [dict(zip(("rows", "cols", "width"), s)) for s in SHAPES],
                           "scores": "softmax of uniform random logits per row, float32",
                           "baseline_rev": args.baseline_label},
                 figures={"records": records})
    return 0 if all(r["equal_to_reference"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
