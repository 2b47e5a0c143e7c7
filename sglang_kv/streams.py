"""A decode batch in chunks of requests, pipelined over two CUDA streams
(``--kv-offload-decode-chunks``).

A layer's offloaded decode step is select (scores, top-k) -> finish (gather of the selected host
rows over PCIe, then attention), each waiting on the one before. Split into chunks, every chunk's
select runs in turn on one stream and every chunk's finish in turn on another, each finish after
its own chunk's select: chunk ``i``'s gather waits on PCIe while chunk ``i + 1``'s scores run.

The schedule before 2026-12-03 (commit 7b3d71f) put each chunk's whole step on a stream of its
own, so the chunks' selects ran at once and finished together and no gather overlapped a select;
measured at 32 x 64K, 3.125%, Llama-3.1-8B shape on the H200 (``python -m sglang_kv.bench layer
--chunks``), 2 such chunks took 6-10% off the step with token payload groups and lost with per-head
groups. This schedule, measured the same way with per-head groups against 7b3d71f's in one call:
2 chunks within 2% of 1 (3.88 / 3.77 vs 3.80 / 3.76 ms), 4 chunks 13-16% slower; the selects' and
gathers' persistent kernels likely hold the SMs the other stage would need. ``finish_sms``
(``--kv-offload-decode-finish-sms``) tested that: the gather from host alone took as long on 8 SMs
as on all 132, and with the finishes sized for 32 SMs on a top-priority stream 2 chunks took 3.56
against 3.81 ms (-6%; 8d322c5, one run). So the server's default stays 1 chunk on all SMs. The
results do not depend on the split, the schedule or the SM limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from sglang_kv.kernels._triton_utils import sm_limit

S = TypeVar("S")
R = TypeVar("R")


@dataclass(frozen=True)
class DecodeStreams:
    """Where :func:`run_pipelined` runs a step: ``chunks`` chunks of requests, their selects on
    ``select`` and their finishes on ``finish`` (both None: in turn on the current stream);
    ``finish_sms``: the SMs the finishes' persistent kernels size their grids for (0: all)."""

    chunks: int
    select: torch.cuda.Stream | None = None
    finish: torch.cuda.Stream | None = None
    finish_sms: int = 0


def decode_streams(chunks: int, device: torch.device, finish_sms: int = 0) -> DecodeStreams:
    """Two streams for ``chunks > 1`` on CUDA; none (the current stream) for one chunk or another
    device. With ``finish_sms`` the finish stream has the highest priority, so the block scheduler
    starts a gather's programs before the select kernels' pending ones: the gather holds about
    ``finish_sms`` SMs while the next chunk's select runs on the others."""
    if finish_sms < 0:
        raise ValueError(f"finish_sms must be >= 0 (0: all SMs), got {finish_sms}")
    if chunks > 1 and device.type == "cuda":
        finish = torch.cuda.Stream(device, priority=-100 if finish_sms else 0)  # clamped to the highest
        return DecodeStreams(chunks, torch.cuda.Stream(device), finish, finish_sms)
    return DecodeStreams(chunks, finish_sms=finish_sms)


def chunk_bounds(batch: int, chunks: int) -> list[slice]:
    """``min(batch, chunks)`` contiguous slices covering ``range(batch)`` in order, sizes within one."""
    n = min(batch, chunks)
    return [slice(batch * i // n, batch * (i + 1) // n) for i in range(n)]


def run_pipelined(batch: int, streams: DecodeStreams, select: Callable[[slice], S],
                  finish: Callable[[slice, S], R]) -> list[R]:
    """``finish(part, select(part))`` for the chunks ``part`` of ``range(batch)``
    (:func:`chunk_bounds`). On streams: both wait for the work already queued on the current
    stream; every ``select`` is launched on ``streams.select`` in chunk order, then every
    ``finish`` on ``streams.finish``, each after its chunk's select; the current stream then waits
    for both. ``select`` and ``finish`` must only read tensors made before the call or by their own
    chunk, and write disjoint outputs. What ``select`` returns stays referenced until both streams
    are joined, so its memory is not reused while a finish may still read it. Every ``finish`` runs
    under :func:`~sglang_kv.kernels._triton_utils.sm_limit` of ``streams.finish_sms`` (0: none)."""
    parts = chunk_bounds(batch, streams.chunks)
    limit = streams.finish_sms or None
    if streams.select is None:
        results = []
        for part in parts:
            chosen = select(part)
            with sm_limit(limit):
                results.append(finish(part, chosen))
        return results
    device = streams.select.device
    main = torch.cuda.current_stream(device)
    streams.select.wait_stream(main)
    streams.finish.wait_stream(main)
    selected = []
    with torch.cuda.stream(streams.select):
        for part in parts:
            selected.append((select(part), streams.select.record_event()))
    results = []
    with torch.cuda.stream(streams.finish), sm_limit(limit):
        for part, (chosen, done) in zip(parts, selected):
            streams.finish.wait_event(done)
            results.append(finish(part, chosen))
    main.wait_stream(streams.select)
    main.wait_stream(streams.finish)
    return results
