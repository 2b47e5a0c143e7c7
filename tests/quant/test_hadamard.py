"""Walsh-Hadamard transform: the Sylvester matrix, its normalization, and bad input."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.quant.hadamard import hadamard_matrix, hadamard_transform


def sylvester(n: int) -> torch.Tensor:
    """H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]] in float64."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@pytest.mark.parametrize("n", [1, 2, 4, 16, 64, 128, 512, 1024])
def test_matches_sylvester_matrix(n):
    x = torch.randn(3, 5, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    h = sylvester(n)
    torch.testing.assert_close(hadamard_transform(x), x @ h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hadamard_matrix(n, torch.float64), h, rtol=0, atol=0)
    torch.testing.assert_close(h @ h, n * torch.eye(n, dtype=torch.float64), rtol=0, atol=0)  # H H = n I


@pytest.mark.parametrize("n", [8, 128, 1024])
def test_norms_and_inverse(n):
    x = torch.randn(7, n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = hadamard_transform(x)
    torch.testing.assert_close(y.square().sum(-1), n * x.square().sum(-1))  # ||Hx||^2 = n ||x||^2
    torch.testing.assert_close(hadamard_transform(y) / n, x)
    y_unit = hadamard_transform(x, normalize=True)
    torch.testing.assert_close(y_unit, y / n ** 0.5)
    torch.testing.assert_close(hadamard_transform(y_unit, normalize=True), x)  # orthonormal involution


def test_keeps_dtype_shape_and_input():
    x = torch.randn(2, 3, 64).to(torch.bfloat16)
    before = x.clone()
    y = hadamard_transform(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    x1 = torch.randn(4, 1)
    y1 = hadamard_transform(x1)
    y1 += 1
    assert not torch.equal(x1, y1)  # n = 1 returns a copy, not a view


def test_non_contiguous_input():
    x = torch.randn(32, 6, dtype=torch.float64).t()  # (6, 32), stride (1, 6)
    torch.testing.assert_close(hadamard_transform(x), x @ sylvester(32))


@pytest.mark.parametrize("n", [3, 12, 100])
def test_rejects_non_power_of_two(n):
    with pytest.raises(ValueError, match="power of two"):
        hadamard_transform(torch.randn(2, n))


def test_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        hadamard_transform(torch.ones(2, 8, dtype=torch.int32))
