"""run_pipelined: the chunks of a decode batch, their selects on one CUDA stream and their finishes
on another."""

import pytest
import torch

from sglang_kv.streams import DecodeStreams, chunk_bounds, decode_streams, run_pipelined


@pytest.mark.parametrize("batch,chunks,sizes", [(4, 1, [4]), (4, 3, [1, 1, 2]), (7, 2, [3, 4]), (2, 5, [1, 1])])
def test_chunks_cover_the_batch_in_order(batch, chunks, sizes):
    parts = chunk_bounds(batch, chunks)
    assert [p.stop - p.start for p in parts] == sizes
    assert [i for p in parts for i in range(p.start, p.stop)] == list(range(batch))


def test_cpu_runs_each_chunk_select_then_finish_in_turn():
    calls = []

    def select(part):
        calls.append(("select", part.start))
        return part.start * 10

    def finish(part, chosen):
        calls.append(("finish", part.start))
        return chosen + part.stop

    assert decode_streams(3, torch.device("cpu")) == DecodeStreams(3)
    assert run_pipelined(7, decode_streams(3, torch.device("cpu")), select, finish) == [2, 24, 47]
    assert calls == [("select", 0), ("finish", 0), ("select", 2), ("finish", 2), ("select", 4), ("finish", 4)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_pipeline_orders_each_finish_after_its_select():
    """Each select sees what the current stream queued before the call and runs on the select
    stream; each finish runs on the finish stream and sees its chunk's select (a long select
    kernel: without the event wait the finish would read zeros); the current stream sees every
    write."""
    device = torch.device("cuda")
    streams = decode_streams(3, device)
    assert streams.select is not None and streams.finish is not None
    x = torch.zeros(6, 1 << 22, device=device)
    x += 1  # queued on the current stream
    out = torch.empty_like(x)
    seen = []

    def select(part):
        seen.append(("select", torch.cuda.current_stream(device)))
        chosen = x[part].clone()
        for _ in range(20):  # keep the select stream busy so a missing wait would show
            chosen = chosen * 1.0 + 0.0
        return chosen * 2 + part.start

    def finish(part, chosen):
        seen.append(("finish", torch.cuda.current_stream(device)))
        out[part] = chosen + 1
        return part

    run_pipelined(6, streams, select, finish)
    assert seen == [("select", streams.select)] * 3 + [("finish", streams.finish)] * 3
    expected = torch.tensor([3.0, 3, 5, 5, 7, 7], device=device)[:, None].expand_as(out)
    assert torch.equal(out, expected)
