"""Small host -> device copies on the decode hot path.

``torch.tensor(values, device="cuda")`` copies from pageable memory and waits for the stream, so the
host stops queueing work until the GPU catches up. :func:`device_ints` stages the values in pinned
memory and copies them asynchronously on the current stream instead (torch keeps the pinned block
alive until the copy has run).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def device_ints(values: Sequence, device: torch.device, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """``values`` (ints, or equal-length rows of ints) as a ``dtype`` tensor on ``device``, without
    synchronizing a CUDA stream."""
    host = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)
