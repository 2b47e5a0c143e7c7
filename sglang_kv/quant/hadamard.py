"""Walsh-Hadamard transform over the last dimension (torch, any device).

Convention: the Sylvester matrix ``H_n[i, j] = (-1)**popcount(i & j)`` for ``n`` a power of two
(``H_1 = [1]``, ``H_2n = [[H_n, H_n], [H_n, -H_n]]``). It is symmetric and ``H_n @ H_n = n * I``.

- ``normalize=False`` (default, the HIGGS convention): ``y = H_n x``, so ``||y||**2 = n ||x||**2`` and
  the inverse is ``x = H_n y / n``.
- ``normalize=True``: ``y = H_n x / sqrt(n)``, orthonormal and its own inverse.

No random sign flips are applied (as in the released HIGGS code).
"""

from __future__ import annotations

import functools

import torch


def check_power_of_two(n: int, name: str) -> None:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{name} must be a power of two, got {n}")


def hadamard_transform(x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Walsh-Hadamard transform of ``x [..., n]`` over its last dimension (``n`` a power of two).

    Returns a new tensor of the same shape and dtype, computed in ``x.dtype`` by ``log2(n)``
    butterfly stages (pass float32 for accuracy). See the module docstring for the convention.
    """
    if not x.is_floating_point():
        raise ValueError(f"hadamard_transform: x must be a floating tensor, got {x.dtype}")
    n = x.shape[-1]
    check_power_of_two(n, "hadamard_transform: last dimension of x")
    lead = x.shape[:-1]
    y = x.reshape(-1, n).clone() if n == 1 else x.reshape(-1, n)
    half = 1
    while half < n:
        pairs = y.view(-1, n // (2 * half), 2, half)  # (rows, blocks, 2, half)
        a, b = pairs[:, :, 0], pairs[:, :, 1]
        y = torch.stack((a + b, a - b), dim=2).view(-1, n)
        half *= 2
    if normalize:
        y = y * (n ** -0.5)
    return y.reshape(*lead, n)


@functools.lru_cache(maxsize=16)
def _hadamard_matrix_cpu(n: int) -> torch.Tensor:
    idx = torch.arange(n)
    bits = idx[:, None] & idx[None, :]
    parity = torch.zeros_like(bits)
    while bool(bits.any()):
        parity ^= bits & 1
        bits = bits >> 1
    return (1 - 2 * parity).float()


def hadamard_matrix(n: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The unnormalized Sylvester matrix ``H_n`` as a dense ``[n, n]`` tensor (for references)."""
    check_power_of_two(n, "hadamard_matrix: n")
    return _hadamard_matrix_cpu(n).to(dtype=dtype, device=device)
