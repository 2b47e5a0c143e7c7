"""Gaussian grids: the committed files, their MSE against the published reference, the fit.

About 10 s: each committed grid's MSE is re-measured on 2**18 fresh samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sglang_kv.quant import grids
from sglang_kv.quant.grids import (
    SUPPORTED_GRIDS, FitSchedule, fit_grid, grid_file, load_grid, mse_per_value, nearest_point,
)

# MSE per value on N(0, 1) of the reference grids: EDEN grids for p = 2 and 4 (the reference JSON files'
# mse_per_value; methods.md rounds them), Lloyd-Max scalar quantizers for p = 1 (methods.md).
REFERENCE_MSE = {
    (1, 2): 0.1175, (1, 3): 0.03454, (1, 4): 0.009497,
    (2, 2): 0.10803, (2, 3): 0.02973, (2, 4): 0.00774,
    (4, 1): 0.34317, (4, 2): 0.0962,
}
REFERENCE_FILES = {(2, 2): "EDEN2-16", (2, 3): "EDEN2-64", (2, 4): "EDEN2-256",
                   (4, 1): "EDEN4-16", (4, 2): "EDEN4-256"}
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "higgs_grids"
TEST_SEED = 7  # neither a fitting seed nor grids.EVAL_SEED


@pytest.mark.parametrize("p,bits", SUPPORTED_GRIDS)
def test_committed_grid_file(p, bits):
    record = json.loads(grid_file(p, bits).read_text())
    assert (record["p"], record["bits"], record["num_points"]) == (p, bits, 2 ** (p * bits))
    assert isinstance(record["seed"], int)
    assert record["fit"]["num_iters"] > 0 and record["fit"]["samples_per_iter"] > 0
    assert record["mse_eval"]["seed"] != record["seed"]
    points = load_grid(p, bits)
    assert points.dtype == torch.float32 and points.shape == (2 ** (p * bits), p)
    torch.testing.assert_close(points.half().float(), points, rtol=0, atol=0)  # float16-exact
    assert torch.unique(points, dim=0).shape[0] == points.shape[0]


@pytest.mark.parametrize("p,bits", SUPPORTED_GRIDS)
def test_grid_mse_within_2_percent_of_reference(p, bits):
    measured = mse_per_value(load_grid(p, bits), num_samples=1 << 18, seed=TEST_SEED)
    assert measured <= 1.02 * REFERENCE_MSE[(p, bits)], (measured, REFERENCE_MSE[(p, bits)])
    assert measured >= 0.97 * REFERENCE_MSE[(p, bits)], (measured, REFERENCE_MSE[(p, bits)])
    stored = json.loads(grid_file(p, bits).read_text())["mse_per_value"]
    assert abs(measured - stored) <= 0.01 * stored, (measured, stored)


@pytest.mark.parametrize("p,bits", sorted(REFERENCE_FILES))
def test_grid_against_reference_points(p, bits):
    """Cross-check on the same samples against the reference grid files when they are present."""
    path = REFERENCE_DIR / f"{REFERENCE_FILES[(p, bits)]}.json"
    if not path.exists():
        pytest.skip(f"reference grids not found at {REFERENCE_DIR}")
    reference = torch.tensor(json.loads(path.read_text())["points"], dtype=torch.float32)
    ours = mse_per_value(load_grid(p, bits), num_samples=1 << 17, seed=TEST_SEED)
    theirs = mse_per_value(reference, num_samples=1 << 17, seed=TEST_SEED)
    assert ours <= 1.02 * theirs, (ours, theirs)


def test_load_grid_returns_a_copy():
    grid = load_grid(2, 2)
    grid.zero_()
    assert load_grid(2, 2).abs().sum() > 0


@pytest.mark.parametrize("p,bits", [(3, 2), (2, 5), (1, 1)])
def test_load_grid_rejects_unsupported(p, bits):
    with pytest.raises(ValueError, match="supported"):
        load_grid(p, bits)


@pytest.mark.parametrize("p", [1, 2, 4])
def test_nearest_point_matches_brute_force(p):
    gen = torch.Generator().manual_seed(p)
    points = torch.randn(37, p, generator=gen)
    x = 2 * torch.randn(5000, p, generator=gen)
    expected = torch.cdist(x.double(), points.double()).argmin(dim=1)
    torch.testing.assert_close(nearest_point(x, points, chunk_rows=333), expected, rtol=0, atol=0)
    assert nearest_point(x[:0], points).shape == (0,)


def test_nearest_point_first_on_ties():
    points = torch.tensor([[1.0], [-1.0], [1.0]])
    assert nearest_point(torch.tensor([[0.0], [2.0]]), points).tolist() == [0, 0]


def test_fit_is_deterministic_and_seeded():
    first = fit_grid(2, 2, seed=3, num_iters=4, samples_per_iter=4096, polish_iters=1)
    again = fit_grid(2, 2, seed=3, num_iters=4, samples_per_iter=4096, polish_iters=1)
    other = fit_grid(2, 2, seed=4, num_iters=4, samples_per_iter=4096, polish_iters=1)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)


def test_fit_improves_on_its_start():
    gen = torch.Generator().manual_seed(11)
    start = grids._initial_points(2, 16, gen)
    fitted = fit_grid(2, 2, seed=11, num_iters=10, samples_per_iter=1 << 15, polish_iters=0)
    assert mse_per_value(fitted, 1 << 15) < 0.9 * mse_per_value(start, 1 << 15)


def test_regenerate_command(tmp_path, monkeypatch):
    monkeypatch.setattr(grids, "fit_schedule", lambda p, bits: FitSchedule(3, 4096))
    monkeypatch.setattr(grids, "EVAL_SAMPLES", 4096)
    grids.main(["--out", str(tmp_path), "--only", "p1_b2", "p4_b1", "--seed", "5"])
    assert sorted(f.name for f in tmp_path.iterdir()) == ["p1_b2.json", "p4_b1.json"]
    record = json.loads((tmp_path / "p4_b1.json").read_text())
    assert (record["seed"], record["fit"]["num_iters"], record["mse_eval"]["num_samples"]) == (5, 3, 4096)
    points = torch.tensor(record["points"])
    torch.testing.assert_close(points, fit_grid(4, 1, seed=5, num_iters=3, samples_per_iter=4096))
    assert record["mse_per_value"] == round(mse_per_value(points), 6)


def test_regenerate_command_rejects_unknown_grid(tmp_path):
    with pytest.raises(SystemExit, match="unknown grid"):
        grids.main(["--out", str(tmp_path), "--only", "p3_b3"])
