"""The batched gather's distinct per-head rows (``kernels.head_rows``): the torch path equals a
``torch.unique`` of the same keys, and the kernel equals the torch path, on fresh random selections
(padding columns as the top-k writes them, counts from 0 to the width, 1 to 8 heads, int32 and int64
columns, a strided index). Without CUDA the kernel runs in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import head_rows as hr
from tests.kernels.util import specialization

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _selection(gen, batch, heads, width, num_tokens, counts, dtype=torch.int64, extra_columns=0):
    """``index [B, H, W]`` as the top-k writes it: per (request, head) ``counts[b]`` distinct ascending
    tokens below ``num_tokens``, then its first token repeated (the padding), in a wider buffer when
    ``extra_columns`` (a strided view)."""
    index = torch.zeros(batch, heads, width + extra_columns, dtype=torch.int64)
    for b in range(batch):
        for h in range(heads):
            tokens = torch.randperm(num_tokens, generator=gen)[:counts[b]].sort().values
            index[b, h, :counts[b]] = tokens
            index[b, h, counts[b]:width] = tokens[0] if counts[b] else 0
    return index.to(DEVICE, dtype)[:, :, :width]


def _unique_rows(index, counts, num_rows):
    """The same rows through torch.unique of the keys (an independent oracle of the torch path)."""
    batch, heads, width = index.shape
    key_rows = num_rows + heads * width
    column = torch.arange(width, device=index.device)
    keys = (torch.arange(batch, device=index.device)[:, None, None] * key_rows
            + torch.where(column < counts.long()[:, None, None],
                          heads * index.long() + torch.arange(heads, device=index.device)[:, None],
                          num_rows + torch.arange(heads, device=index.device)[:, None] * width + column))
    ordered, inverse = torch.unique(keys, return_inverse=True)
    row = ordered % key_rows
    return ordered // key_rows, torch.where(row < num_rows, row, -1), inverse


CASES = [(2, 3, 40, [40, 17]), (1, 8, 1, [1]), (4, 2, 77, [0, 77, 5, 76]), (3, 4, 300, [300, 129, 128]),
         (2, 1, 130, [3, 130])]


@pytest.mark.parametrize("batch,heads,width,counts", CASES)
def test_head_rows_ref_equals_unique(batch, heads, width, counts):
    gen = torch.Generator().manual_seed(batch * 1000 + width)
    num_tokens = 3 * width + 5
    index = _selection(gen, batch, heads, width, num_tokens, counts)
    counts_t = torch.tensor(counts, dtype=torch.int32, device=DEVICE)
    got = hr.head_rows_ref(index, counts_t, num_tokens * heads)
    request, row, inverse = _unique_rows(index, counts_t, num_tokens * heads)
    assert torch.equal(got.request, request) and torch.equal(got.row, row) and torch.equal(got.inverse, inverse)
    real = torch.arange(width, device=DEVICE) < counts_t.long()[:, None, None]  # (B, 1, W)
    expected = (heads * index.long() + torch.arange(heads, device=DEVICE)[:, None]).expand_as(index)
    assert torch.equal(got.row[got.inverse][real.expand_as(index)], expected[real.expand_as(index)])
    assert (got.row[got.inverse][~real.expand_as(index)] == -1).all()
    assert int((got.row >= 0).sum()) == heads * sum(counts)


@pytest.mark.parametrize("batch,heads,width,counts", CASES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_head_rows_kernel_equals_ref(batch, heads, width, counts, dtype):
    gen = torch.Generator().manual_seed(batch * 7 + width + heads)
    num_tokens = 2 * width + 9
    index = _selection(gen, batch, heads, width, num_tokens, counts, dtype, extra_columns=3)
    counts_t = torch.tensor(counts, dtype=torch.int32, device=DEVICE)
    num_rows = (num_tokens + 11) * heads  # the longest store may be longer than this batch's tokens
    got, ref = hr.head_rows(index, counts_t, num_rows), hr.head_rows_ref(index, counts_t, num_rows)
    for name in hr.HeadRows._fields:
        assert torch.equal(getattr(got, name), getattr(ref, name)), name


def test_head_rows_empty_and_bad_input():
    counts = torch.zeros(2, dtype=torch.int32, device=DEVICE)
    empty = hr.head_rows(torch.zeros(2, 3, 0, dtype=torch.int64, device=DEVICE), counts, 10)
    assert empty.request.shape == (0,) and empty.inverse.shape == (2, 3, 0)
    index = torch.zeros(2, 3, 4, dtype=torch.int64, device=DEVICE)
    with pytest.raises(ValueError, match="index must be"):
        hr.head_rows(index.float(), counts, 10)
    with pytest.raises(ValueError, match="counts must be"):
        hr.head_rows(index, counts.long(), 10)
    with pytest.raises(ValueError, match="counts must be"):
        hr.head_rows(index, counts[:1], 10)
    with pytest.raises(ValueError, match="contiguous last dimension"):
        hr.head_rows(index.transpose(1, 2).contiguous().transpose(1, 2), counts, 10)
    with pytest.raises(ValueError, match="num_rows"):
        hr.head_rows_ref(index, counts, -1)


def test_decode_steps_reuse_one_compiled_variant():
    """Consecutive decode steps (the width growing, the longest store growing every step) keep one
    specialization of the kernel's arguments: one compile per server."""
    from sglang_kv.kernels.head_rows_triton import head_rows_kernel as kernel

    keys, unflagged = set(), set()
    for step in range(40):
        width, num_rows = 1024 + step // 4, 4 * (32_000 + step)
        index = torch.empty(3, 4, width, dtype=torch.int64)
        out = torch.empty(3 * 4 * width, dtype=torch.int64)
        args = hr.kernel_args(index, torch.empty(3, dtype=torch.int32), out, out, out.view(3, 4, width), num_rows)
        keys.add(specialization(kernel, args))
        unflagged.add(specialization(kernel, args, honor_flags=False))
    assert len(keys) == 1 and len(unflagged) > 1


@pytest.mark.gpu
def test_gpu_head_rows_full_size():
    """Llama-3.1-8B's head groups at 32 x 64K, 3.125% (2048 columns of 8 heads), unequal counts."""
    gen = torch.Generator().manual_seed(5)
    counts = [2048 - 37 * b for b in range(32)]
    index = _selection(gen, 32, 8, 2048, 65_536, counts)
    counts_t = torch.tensor(counts, dtype=torch.int32, device=DEVICE)
    got, ref = hr.head_rows(index, counts_t, 8 * 65_536), hr.head_rows_ref(index, counts_t, 8 * 65_536)
    for name in hr.HeadRows._fields:
        assert torch.equal(getattr(got, name), getattr(ref, name)), name
