"""run_chunked: the chunks of a decode batch, each on its own CUDA stream."""

import pytest
import torch

from sglang_kv.streams import chunk_streams, run_chunked


@pytest.mark.parametrize("batch,chunks,sizes", [(4, 1, [4]), (4, 3, [1, 1, 2]), (7, 2, [3, 4]), (2, 5, [1, 1])])
def test_chunks_cover_the_batch_in_order(batch, chunks, sizes):
    parts = run_chunked(batch, chunk_streams(chunks, torch.device("cpu")), lambda part: part)
    assert [p.stop - p.start for p in parts] == sizes
    assert [i for p in parts for i in range(p.start, p.stop)] == list(range(batch))


def test_cpu_has_no_streams():
    assert chunk_streams(3, torch.device("cpu")) == [None, None, None]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_chunks_run_on_their_streams_after_queued_work():
    """Each chunk sees what the current stream queued before the call, runs on its own stream, and
    the current stream sees every chunk's writes."""
    device = torch.device("cuda")
    streams = chunk_streams(2, device)
    x = torch.zeros(6, 1 << 20, device=device)
    x += 1  # queued on the current stream
    out = torch.empty_like(x)
    seen = []

    def step(part):
        seen.append(torch.cuda.current_stream(device))
        out[part] = x[part] * 2 + part.start
        return part

    run_chunked(6, streams, step)
    assert seen == streams
    assert torch.equal(out[:3], torch.full_like(out[:3], 2)) and torch.equal(out[3:], torch.full_like(out[3:], 5))
