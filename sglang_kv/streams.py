"""A decode batch in chunks of requests, each chunk on its own CUDA stream
(``--kv-offload-decode-chunks``).

A layer's offloaded decode step is select (scores, top-k) -> gather (host rows over PCIe) ->
attention, each stage waiting on the one before. Split into chunks on separate streams, one
chunk's select and attention can run while another chunk's gather waits on PCIe. Measured at
32 x 64K, 3.125%, Llama-3.1-8B shape on the H200 (``python -m sglang_kv.bench layer --chunks``):
two chunks took 6-10% off the step with token payload groups and no device cache; more chunks, the
cached step and per-head groups were slower. The results do not depend on the split.
"""

from __future__ import annotations

import contextlib
from typing import Callable, TypeVar

import torch

T = TypeVar("T")


def chunk_streams(chunks: int, device: torch.device) -> list[torch.cuda.Stream | None]:
    """One stream per chunk on CUDA; ``[None] * chunks`` (run in turn on the current stream) for one
    chunk or another device."""
    if chunks > 1 and device.type == "cuda":
        return [torch.cuda.Stream(device) for _ in range(chunks)]
    return [None] * chunks


def run_chunked(batch: int, streams: list[torch.cuda.Stream | None], step: Callable[[slice], T]) -> list[T]:
    """``step(part)`` for contiguous slices ``part`` of ``range(batch)``, one per stream (fewer when
    ``batch < len(streams)``), chunk ``i`` launched on ``streams[i]`` after it waits for the work
    already queued on the current stream; the current stream then waits for every chunk. ``step``
    must only read tensors made before the call (or in its own chunk) and write disjoint outputs."""
    chunks = min(batch, len(streams))
    bounds = [batch * i // chunks for i in range(chunks + 1)]
    used = [s for s in streams[:chunks] if s is not None]
    main = torch.cuda.current_stream(used[0].device) if used else None
    results = []
    for i, stream in enumerate(streams[:chunks]):
        if stream is not None:
            stream.wait_stream(main)
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            results.append(step(slice(bounds[i], bounds[i + 1])))
    for stream in used:
        main.wait_stream(stream)
    return results
