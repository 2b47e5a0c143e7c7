"""Helpers shared by the Triton host wrappers: interpreter detection, device checks, launch sizes and
config choice."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import torch

from sglang_kv.devices import device_index

logger = logging.getLogger(__name__)

# key -> {"chosen": config, "median_ms": {config: ms}, "failed": {config: error}}; read by benchmarks
TUNING_LOG: dict[Hashable, dict[str, Any]] = {}
_CHOSEN: dict[Hashable, Any] = {}
# SMs the persistent kernels launched in this context size their grids for (None: all); see sm_limit
_SM_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("sglang_kv_sm_limit", default=None)


def is_interpreter() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_kernel_device(device: torch.device, name: str) -> None:
    """Kernels run on CUDA tensors, or on CPU tensors under the interpreter."""
    if device.type == "cuda" or (device.type == "cpu" and is_interpreter()):
        return
    raise ValueError(f"{name} is on {device}; Triton kernels need CUDA tensors "
                     f"(or CPU tensors with TRITON_INTERPRET=1)")


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` name one device (a bare ``cuda`` is the current CUDA device)."""
    if a.type != b.type:
        return False
    return a.type != "cuda" or device_index(a) == device_index(b)


def check_readable(t: torch.Tensor, device: torch.device, name: str) -> None:
    """``t`` must live on ``device`` (a bare ``cuda``: the current one), or in pinned host memory read
    directly by a CUDA kernel."""
    if same_device(t.device, device):
        return
    if device.type == "cuda" and t.device.type == "cpu" and t.is_pinned():
        return
    raise ValueError(f"{name} is on {t.device} (pinned={t.device.type == 'cpu' and t.is_pinned()}); "
                     f"it must be on {device} or in pinned host memory")


def check_out(out: torch.Tensor, shape: Sequence[int], dtypes: Sequence[torch.dtype], device: torch.device,
              name: str, readable: bool = False) -> None:
    """Validate a caller-provided output: shape, dtype, device and a unit last stride."""
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    if out.dtype not in dtypes:
        raise ValueError(f"{name}: expected dtype in {tuple(dtypes)}, got {out.dtype}")
    if readable:
        check_readable(out, device, name)
    elif out.device != device:
        raise ValueError(f"{name}: expected device {device}, got {out.device}")
    if out.dim() and out.numel() and out.stride(-1) != 1:
        raise ValueError(f"{name}: last dimension must be contiguous (stride 1), got strides {out.stride()}")


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ints."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """The smallest power of two >= ``n`` (``n >= 1``): a padded ``tl.arange`` length."""
    return 1 << (n - 1).bit_length()


def check_config(config: Any, min_block: int) -> None:
    """A launch config (``block``, ``num_warps``, and ``programs_per_sm`` where it has one: the
    persistent kernels' configs) a wrapper can run."""
    block = config.block
    if (block < min_block or block & (block - 1) or config.num_warps not in (1, 2, 4, 8, 16)
            or getattr(config, "programs_per_sm", 1) < 1):
        raise ValueError(f"config: block must be a power of two >= {min_block}, num_warps in "
                         f"(1, 2, 4, 8, 16) and programs_per_sm >= 1, got {config}")


def common_alignment(addresses, cap: int = 16) -> int:
    """The largest power of two up to ``cap`` dividing every address (a kernel's alignment hint)."""
    align = cap
    for address in addresses:
        while address % align:
            align //= 2
    return align


def size_bucket(num_rows: int) -> int:
    """The size class in tuning keys."""
    return num_rows.bit_length() // 2  # retune only when the size changes about 4x


@functools.cache
def element_type(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An empty ``dtype`` tensor on ``device``: a kernel argument that only gives pointer element
    types (the addresses come from a table), made once per (dtype, device)."""
    return torch.empty(0, dtype=dtype, device=device)


@functools.cache
def device_sms(device: torch.device) -> int:
    """The device's SMs (4 off CUDA), looked up once per device (every launch asks)."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


def num_sms(device: torch.device) -> int:
    """SMs a persistent kernel launched now spreads its programs over: the device's, or fewer inside
    :func:`sm_limit`."""
    limit = _SM_LIMIT.get()
    total = device_sms(device)
    return total if limit is None else min(total, limit)


@contextlib.contextmanager
def sm_limit(sms: int | None) -> Iterator[None]:
    """Inside, the persistent kernels (dequantize-gather, score, row copies) size their grids for at
    most ``sms`` SMs (None: no limit), so that work on another stream keeps the other SMs. Their
    results do not depend on the grid. (The attention's split count, which changes its rounding,
    always uses :func:`device_sms`.)"""
    if sms is not None and sms < 1:
        raise ValueError(f"sm_limit needs at least 1 SM or None, got {sms}")
    token = _SM_LIMIT.set(sms)
    try:
        yield
    finally:
        _SM_LIMIT.reset(token)


def pick_config(key: Hashable, candidates: Sequence[Any], run: Callable[[Any], None]) -> Any:
    """The fastest of ``candidates`` for ``key`` (the first one under the interpreter).

    Only for kernels whose results do not depend on the config (the GPU test
    ``tests/kernels/test_config_invariance.py`` checks each one's candidates give the same bits): a
    config that changes the rounding would make served tokens depend on which candidate won a
    timing race in that process. The attention and the softmax run a fixed config instead.

    On CUDA, the first call per key times ``run(config)`` for each candidate with
    ``triton.testing.do_bench`` (median) and caches the winner. A candidate that fails to compile
    or launch is logged and left out; if all fail, the first error is raised. ``run`` must be
    idempotent (it rewrites the same outputs).
    """
    if is_interpreter():
        return candidates[0]
    if key in _CHOSEN:
        return _CHOSEN[key]
    import triton.testing

    timings: dict[Any, float] = {}
    failures: dict[Any, str] = {}
    first_error: Exception | None = None
    for config in candidates:
        try:
            timings[config] = triton.testing.do_bench(lambda: run(config), warmup=5, rep=25,
                                                      return_mode="median")
        except Exception as error:  # noqa: BLE001 - an unusable config is reported, never chosen
            failures[config] = f"{type(error).__name__}: {error}"[:500]
            first_error = first_error or error
            logger.warning("kernel config %s failed for %s: %s", config, key, failures[config])
    if not timings:
        raise RuntimeError(f"no kernel config ran for {key}: {failures}") from first_error
    chosen = min(timings, key=timings.get)
    _CHOSEN[key] = chosen
    TUNING_LOG[key] = {"chosen": chosen, "median_ms": timings, "failed": failures}
    return chosen
