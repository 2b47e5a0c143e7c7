"""Gaussian grids for HIGGS: fit, store, load.

A grid is ``N = 2**(p*bits)`` points in ``p`` dimensions fitted to the standard normal by Lloyd
iterations on fresh Gaussian samples (each step draws new samples, assigns them to the nearest
point and moves every point to the mean of its samples). Fitting is seeded and uses only elementwise
float32 ops, argmin and float64 sums, so the same command gives the same points.

Points are rounded to float16-representable values before they are stored, so kernels may hold the
grid in float16 (and feed it to fp16 tensor-core dots) without changing a single codeword; the MSE
stored with each grid is measured after that rounding, on samples independent of the fit.

Regenerate the committed files (a few minutes per 256-point grid on one core)::

    python -m sglang_kv.quant.grids --out sglang_kv/quant/grids
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import NamedTuple

import torch

# (p, bits): grid dimension and bits per value; the grid has 2**(p*bits) points.
SUPPORTED_GRIDS = ((1, 2), (1, 3), (1, 4), (2, 2), (2, 3), (2, 4), (4, 1), (4, 2))
GRID_DIR = Path(__file__).resolve().parent / "grids"
DEFAULT_SEED = 0
EVAL_SEED = 20_250_101  # distinct from every fitting seed: the stored MSE is out-of-sample
EVAL_SAMPLES = 1 << 22  # sub-vectors; relative standard error of the MSE estimate about 0.1%


class FitSchedule(NamedTuple):
    num_iters: int
    samples_per_iter: int  # p-dimensional samples drawn per Lloyd step
    polish_iters: int = 0  # final steps with 4x the samples (less noise in the last positions)


def fit_schedule(p: int, bits: int) -> FitSchedule:
    """Steps and batch sizes for grid (p, bits): many cheap steps (Lloyd converges slowly once the
    points are nearly in place), then a few larger ones."""
    num_points = 2 ** (p * bits)
    if num_points >= 256:
        return FitSchedule(num_iters=500, samples_per_iter=1 << 18, polish_iters=20)
    return FitSchedule(num_iters=300, samples_per_iter=1 << 18, polish_iters=20)


def _check_supported(p: int, bits: int) -> None:
    if (p, bits) not in SUPPORTED_GRIDS:
        raise ValueError(f"no HIGGS grid for (p, bits)=({p}, {bits}); supported: {SUPPORTED_GRIDS}")


def grid_name(p: int, bits: int) -> str:
    return f"p{p}_b{bits}"


def grid_file(p: int, bits: int, grid_dir: Path = GRID_DIR) -> Path:
    return Path(grid_dir) / f"{grid_name(p, bits)}.json"


@functools.lru_cache(maxsize=None)
def _load_points(p: int, bits: int) -> torch.Tensor:
    path = grid_file(p, bits)
    record = json.loads(path.read_text())
    points = torch.tensor(record["points"], dtype=torch.float32)
    expected = (2 ** (p * bits), p)
    if tuple(points.shape) != expected or record["p"] != p or record["bits"] != bits:
        raise ValueError(f"{path}: expected {expected[0]} points of dimension {p}, "
                         f"got shape {tuple(points.shape)} (p={record['p']}, bits={record['bits']})")
    return points


def load_grid(p: int, bits: int) -> torch.Tensor:
    """The committed grid for (p, bits): float32 CPU tensor ``[2**(p*bits), p]`` (a fresh copy).

    Row ``i`` is the codeword of index ``i``. Raises ``ValueError`` for an unsupported pair.
    """
    _check_supported(p, bits)
    return _load_points(p, bits).clone()


def nearest_point(x: torch.Tensor, points: torch.Tensor, chunk_rows: int | None = None) -> torch.Tensor:
    """Index of the nearest point (squared L2, first one on ties) for each row.

    x: ``[num_rows, p]`` float32; points: ``[num_points, p]`` float32 on the same device.
    Returns int64 ``[num_rows]``. Works in chunks of rows so the distance buffer stays small
    (``chunk_rows x num_points`` floats).
    """
    num_rows, p = x.shape
    if chunk_rows is None:
        chunk_rows = 4096 if x.device.type == "cpu" else 1 << 16
    out = torch.empty(num_rows, dtype=torch.int64, device=x.device)
    dist = torch.empty(min(chunk_rows, max(num_rows, 1)), points.shape[0], device=x.device)
    term = torch.empty_like(dist)
    cols = [points[:, k].contiguous() for k in range(p)]
    for start in range(0, num_rows, chunk_rows):
        rows = x[start:start + chunk_rows]
        d, t = dist[: rows.shape[0]], term[: rows.shape[0]]
        torch.sub(rows[:, 0, None], cols[0], out=d).square_()
        for k in range(1, p):
            d.add_(torch.sub(rows[:, k, None], cols[k], out=t).square_())
        torch.argmin(d, dim=1, out=out[start:start + rows.shape[0]])
    return out


def mse_per_value(points: torch.Tensor, num_samples: int | None = None, seed: int = EVAL_SEED,
                  batch: int = 1 << 20) -> float:
    """Mean squared error per value of rounding N(0, I_p) samples to the nearest point
    (``num_samples`` p-dimensional samples, default :data:`EVAL_SAMPLES`)."""
    num_samples = EVAL_SAMPLES if num_samples is None else num_samples
    p = points.shape[1]
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, num_samples, batch):
        x = torch.randn(min(batch, num_samples - start), p, generator=gen)
        err = x - points[nearest_point(x, points)]
        total += err.double().square().sum().item()
    return total / (num_samples * p)


def _initial_points(p: int, num_points: int, gen: torch.Generator) -> torch.Tensor:
    if p == 1:  # Gaussian quantiles: Lloyd in 1-D then converges to Lloyd-Max in few steps
        probs = (torch.arange(num_points, dtype=torch.float64) + 0.5) / num_points
        return torch.special.ndtri(probs).float()[:, None]
    return torch.randn(num_points, p, generator=gen)


def fit_grid(p: int, bits: int, seed: int = DEFAULT_SEED, num_iters: int | None = None,
             samples_per_iter: int | None = None, polish_iters: int | None = None, log=None) -> torch.Tensor:
    """Fit ``2**(p*bits)`` points to N(0, I_p) by Lloyd steps on fresh samples (CPU, float32):
    ``num_iters`` steps of ``samples_per_iter`` samples, then ``polish_iters`` steps of 4x as many
    (defaults: :func:`fit_schedule`).

    Returns ``[2**(p*bits), p]`` float32, rounded to float16-representable values. A point that
    receives no sample in a step keeps its position.
    """
    schedule = fit_schedule(p, bits)
    num_iters = schedule.num_iters if num_iters is None else num_iters
    samples_per_iter = schedule.samples_per_iter if samples_per_iter is None else samples_per_iter
    polish_iters = schedule.polish_iters if polish_iters is None else polish_iters
    num_points = 2 ** (p * bits)
    gen = torch.Generator().manual_seed(seed)
    points = _initial_points(p, num_points, gen)
    total = num_iters + polish_iters
    for step in range(total):
        x = torch.randn(samples_per_iter * (4 if step >= num_iters else 1), p, generator=gen)
        assign = nearest_point(x, points)
        sums = torch.zeros(num_points, p, dtype=torch.float64).index_add_(0, assign, x.double())
        counts = torch.bincount(assign, minlength=num_points).double()[:, None]
        points = torch.where(counts > 0, sums / counts.clamp(min=1), points.double()).float()
        if log is not None and (step % 50 == 0 or step == total - 1):
            log(f"  {grid_name(p, bits)} step {step + 1}/{total}")
    points = points.half().float()
    if p == 1:
        points = points.sort(dim=0).values
    return points


def _format_record(record: dict) -> str:
    """JSON with one point per line (short diffs, easy to read)."""
    header = json.dumps({k: v for k, v in record.items() if k != "points"}, indent=1)
    points = ",\n".join("  " + json.dumps(point) for point in record["points"])
    return header[:-2] + ',\n "points": [\n' + points + "\n ]\n}\n"


def fit_and_save(p: int, bits: int, out_dir: Path, seed: int = DEFAULT_SEED, log=print) -> dict:
    """Fit grid (p, bits), measure its MSE and write ``out_dir/p{p}_b{bits}.json``."""
    _check_supported(p, bits)
    schedule = fit_schedule(p, bits)
    start = time.perf_counter()
    points = fit_grid(p, bits, seed, *schedule, log=log)
    fit_s = time.perf_counter() - start
    record = {
        "name": grid_name(p, bits),
        "p": p,
        "bits": bits,
        "num_points": points.shape[0],
        "seed": seed,
        "fit": {"method": "Lloyd steps on fresh N(0, I_p) samples, float16-rounded points",
                "num_iters": schedule.num_iters, "samples_per_iter": schedule.samples_per_iter,
                "polish_iters": schedule.polish_iters, "polish_samples_per_iter": 4 * schedule.samples_per_iter,
                "seconds": round(fit_s, 1)},
        "mse_per_value": round(mse_per_value(points), 6),
        "mse_eval": {"num_samples": EVAL_SAMPLES, "seed": EVAL_SEED},
        "points": points.tolist(),
    }
    path = grid_file(p, bits, out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_format_record(record))
    log(f"{record['name']}: {record['num_points']} points, MSE/value {record['mse_per_value']:.6f}, "
        f"fit {fit_s:.0f} s -> {path}")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=GRID_DIR, help="folder for the grid JSON files")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", nargs="*", default=None, metavar="pP_bB",
                        help="fit only these grids, e.g. p4_b2 p2_b4 (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    names = {grid_name(p, b): (p, b) for p, b in SUPPORTED_GRIDS}
    chosen = list(names) if args.only is None else args.only
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit(f"--only: unknown grid(s) {unknown}; choose from {list(names)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for name in chosen:
        fit_and_save(*names[name], out_dir=args.out, seed=args.seed)


if __name__ == "__main__":
    main()
