"""run_pipelined: the chunks of a decode batch, their selects on one CUDA stream and their finishes
on another."""

import pytest
import torch

from sglang_kv.kernels._triton_utils import device_sms, num_sms, sm_limit
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


def test_sm_limit_caps_num_sms_in_its_context_only():
    cpu = torch.device("cpu")
    assert num_sms(cpu) == device_sms(cpu) == 4
    with sm_limit(2):
        assert num_sms(cpu) == 2
        with sm_limit(None):
            assert num_sms(cpu) == 4
        with sm_limit(9):  # never above the device's
            assert num_sms(cpu) == 4
        assert num_sms(cpu) == 2
    assert num_sms(cpu) == 4
    with pytest.raises(ValueError, match="at least 1 SM"):
        with sm_limit(0):
            pass


def test_finishes_run_under_the_finish_sm_limit():
    """Every finish sees ``finish_sms`` SMs, every select all of them."""
    cpu = torch.device("cpu")
    seen = []
    streams = decode_streams(2, cpu, finish_sms=3)
    assert streams == DecodeStreams(2, finish_sms=3)
    run_pipelined(4, streams, lambda part: seen.append(("select", num_sms(cpu))),
                  lambda part, _: seen.append(("finish", num_sms(cpu))))
    assert seen == [("select", 4), ("finish", 3)] * 2
    seen.clear()
    run_pipelined(4, decode_streams(2, cpu), lambda part: seen.append(num_sms(cpu)),
                  lambda part, _: seen.append(num_sms(cpu)))
    assert seen == [4] * 4
    with pytest.raises(ValueError, match="finish_sms must be >= 0"):
        decode_streams(2, cpu, finish_sms=-1)


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_finish_sms_gives_the_finish_stream_top_priority():
    device = torch.device("cuda")
    _, highest = torch.cuda.Stream.priority_range()
    streams = decode_streams(2, device, finish_sms=16)
    assert streams.finish.priority == highest and streams.select.priority == 0
    assert decode_streams(2, device).finish.priority == 0
    seen = []
    run_pipelined(4, streams, lambda part: seen.append(num_sms(device)), lambda part, _: seen.append(num_sms(device)))
    assert seen == [device_sms(device)] * 2 + [16] * 2
