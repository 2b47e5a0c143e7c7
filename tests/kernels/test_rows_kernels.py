"""The device cache's row copy (``kernels.rows.copy_rows_batch``) equals its torch reference on fresh
random stores: several requests, row widths copied as 8-, 2- and 1-byte units, strided rows.
Without CUDA the kernel runs in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import rows

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _stores(gen, num, shape, dtype, stride_pad=0):
    out = []
    for b in range(num):
        full = torch.randint(0, 255, (shape[0] + b, shape[1] + stride_pad), generator=gen, dtype=torch.uint8)
        t = full.view(dtype) if dtype != torch.uint8 else full
        out.append(t[:, :shape[1]].to(DEVICE) if stride_pad else t.to(DEVICE))
    return out


@pytest.mark.parametrize("width,dtype,stride_pad", [(512, torch.uint8, 0), (1, torch.float16, 0),
                                                   (3, torch.uint8, 5), (64, torch.uint8, 64)])
def test_copy_rows_batch_equals_reference(width, dtype, stride_pad):
    gen = torch.Generator().manual_seed(width + stride_pad)
    cols = width * (2 if dtype == torch.float16 else 1)  # uint8 columns behind the view
    src = _stores(gen, 3, (40, cols), torch.uint8, stride_pad)
    src = [s.view(dtype) if dtype != torch.uint8 else s for s in src]
    dst = [torch.zeros(12, width, dtype=dtype, device=DEVICE) for _ in range(3)]
    request, src_index, dst_index = [], [], []
    for b in (0, 2):  # request 1 copies nothing
        slots = torch.randperm(12, generator=gen)[:7]
        request += [b] * 9
        src_index += torch.randint(0, 40, (9,), generator=gen).tolist()
        dst_index += slots.tolist() + [-1, -1]  # two skipped rows
    args = (torch.tensor(request, dtype=torch.int32, device=DEVICE), torch.tensor(src_index, device=DEVICE),
            torch.tensor(dst_index, device=DEVICE))
    expected = [d.clone() for d in dst]
    rows.copy_rows_batch_ref(src, expected, *args)
    rows.copy_rows_batch(src, dst, *args)
    for got, want in zip(dst, expected):
        assert torch.equal(got.view(torch.uint8), want.view(torch.uint8))
    assert expected[1].view(torch.uint8).eq(0).all() and not expected[0].view(torch.uint8).eq(0).all()
    assert (expected[0].view(torch.uint8).reshape(12, -1).ne(0).any(1)).sum() == 7  # only the 7 destinations


def test_copy_rows_batch_reads_strided_and_expanded_indices():
    """Index tensors that are not dense: every row of one request as an expanded (stride-0) view
    (ShadowKV's batch of one request builds it so), source rows every other element. The kernel
    must read their values, not the memory behind them (here zeros: request 0's store)."""
    gen = torch.Generator().manual_seed(3)
    src = _stores(gen, 2, (30, 16), torch.uint8)
    dst = [torch.zeros(10, 16, dtype=torch.uint8, device=DEVICE) for _ in range(2)]
    base = torch.zeros(64, dtype=torch.int32, device=DEVICE)
    base[0] = 1
    request = base[:1].expand(10)  # stride 0: request 1 for every row
    src_index = torch.randint(0, 30, (20,), generator=gen).to(DEVICE)[::2]  # stride 2
    dst_index = torch.randperm(10, generator=gen).to(DEVICE)
    assert request.stride() == (0,) and src_index.stride() == (2,)
    expected = [d.clone() for d in dst]
    rows.copy_rows_batch_ref(src, expected, request, src_index, dst_index)
    rows.copy_rows_batch(src, dst, request, src_index, dst_index)
    assert torch.equal(dst[0], expected[0]) and torch.equal(dst[1], expected[1])
    assert dst[0].eq(0).all() and torch.equal(dst[1][dst_index], src[1][src_index])


def test_copy_rows_batch_rejects_bad_input():
    src = [torch.zeros(4, 8, dtype=torch.uint8, device=DEVICE)]
    dst = [torch.zeros(4, 8, dtype=torch.uint8, device=DEVICE)]
    one = torch.zeros(1, dtype=torch.int64, device=DEVICE)
    with pytest.raises(ValueError, match="request must be 1-D int32"):
        rows.copy_rows_batch(src, dst, one, one, one)
    with pytest.raises(ValueError, match="one dtype"):
        rows.copy_rows_batch(src, [torch.zeros(4, 8, dtype=torch.int16, device=DEVICE)], one.int(), one, one)
    with pytest.raises(ValueError, match="one destination per source"):
        rows.copy_rows_batch(src, [], one.int(), one, one)
