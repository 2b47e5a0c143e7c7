"""The selection's top-k (``kernels.topk.topk_sorted_batch``) equals its torch reference on fresh random
scores: per-row counts, padded rows, ties at the threshold, negative scores and the -1 padding of the
batched softmax, blocks shorter than a row. Without CUDA the kernel runs in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch

from sglang_kv.kernels import topk
from sglang_kv.kernels.topk import TopkConfig
from sglang_kv.select.base import topk_sorted

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _counts(values):
    return torch.tensor(values, dtype=torch.int32, device=DEVICE)


@pytest.mark.parametrize("config", [TopkConfig(16, 4, 8), TopkConfig(64, 2, 8), TopkConfig(16, 4, 5),
                                    TopkConfig(64, 2, 6)], ids=str)
def test_topk_sorted_batch_equals_reference(config):
    gen = torch.Generator().manual_seed(config.block)
    scores = torch.randn(6, 150, generator=gen)
    scores[1:3] = scores[1:3].abs()  # probabilities are non-negative
    scores[2, 100:] = -1.0  # a shorter request's padding
    scores = scores.to(DEVICE)
    counts = _counts([7, 150, 100, 1, 33, 16])  # row 2: all of its 100 valid columns
    got = topk.topk_sorted_batch(scores, counts, 150, config=config)
    want = topk.topk_sorted_batch_ref(scores, counts, 150)
    assert got.dtype == torch.int64 and got.shape == (6, 150)
    assert torch.equal(got, want)
    for r, k in enumerate(counts.tolist()):  # the per-row torch path the kernel replaces (no ties here)
        assert torch.equal(got[r, :k], topk_sorted(scores[r:r + 1, :100 if r == 2 else None], k)[0])
        assert (got[r, k:] == got[r, 0]).all()


def test_topk_sorted_batch_ties_take_the_lowest_columns():
    scores = torch.tensor([[0.5, 0.2, 0.5, 0.5, 0.1, 0.5, 0.9, 0.0],
                           [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                           [-2.0, -1.0, -1.0, -3.0, -0.5, -1.0, -4.0, -1.0]], device=DEVICE)
    counts = _counts([3, 5, 3])
    got = topk.topk_sorted_batch(scores, counts, 5, config=TopkConfig(16, 1))
    assert got.tolist() == [[0, 2, 6, 0, 0], [0, 1, 2, 3, 4], [1, 2, 4, 1, 1]]
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 5))


@pytest.mark.parametrize("digit_bits", [5, 7, 8])
def test_topk_sorted_batch_quantized_scores_many_ties(digit_bits):
    """Scores on a coarse grid: every threshold has many equal keys; the count is met exactly."""
    gen = torch.Generator().manual_seed(11)
    scores = (torch.rand(5, 300, generator=gen) * 8).floor().to(DEVICE) / 8
    counts = _counts([1, 37, 150, 299, 300])
    got = topk.topk_sorted_batch(scores, counts, 300, config=TopkConfig(32, 2, digit_bits))
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 300))


@pytest.mark.parametrize("digit_bits", [5, 8])
def test_topk_sorted_batch_softmax_rows_end_early_and_equal_reference(digit_bits):
    """Softmax rows as the selection ranks them: distinct keys end the radix select early (the keys
    sharing the resolved high bits are exactly the ones still to take), and the result still equals the
    reference, with a row that takes everything and one that takes a single column."""
    gen = torch.Generator().manual_seed(digit_bits)
    scores = torch.softmax(3 * torch.randn(4, 4096, generator=gen), dim=-1).to(DEVICE)
    counts = _counts([128, 1, 4096, 77])
    got = topk.topk_sorted_batch(scores, counts, 4096, config=TopkConfig(1024, 4, digit_bits))
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 4096))


@pytest.mark.parametrize("chunks", [2, 4, 8])
@pytest.mark.parametrize("scores_kind", ["softmax_padded", "coarse_ties"])
def test_two_stage_topk_equals_reference(chunks, scores_kind):
    """Rows split in chunks (stage 1: each chunk's top min(count, chunk); stage 2: the row's top count among
    them): the same columns as the reference, ties at the threshold included, with counts below, at and
    above a chunk's length, a row that takes all of its columns, one whose selection sits in one chunk, a
    row of negative scores and a request's -1 padding; the kept scores' strides differ from the rows' (a
    view of wider rows)."""
    gen = torch.Generator().manual_seed(chunks)
    if scores_kind == "softmax_padded":
        scores = torch.softmax(3 * torch.randn(7, 300, generator=gen), dim=-1)[:, :256]
        scores[2, 200:] = -1.0  # a shorter request's padding
        scores[4] = -scores[4] - 1  # below zero: a chunk's padding (-inf in stage 1) must rank below them
        scores[5, :] = 0.0
        scores[5, 224:232] = 1.0  # every selected column in one chunk
    else:
        scores = ((torch.rand(7, 300, generator=gen) * 6).floor() / 6)[:, :256]  # many equal keys
    counts = _counts([1, 40, 200, 256, 31, 8, 100])  # 40 and 100 > a chunk of 32 (8 chunks); 256: everything
    scores = scores.to(DEVICE)
    assert scores.stride(0) == 300
    config = TopkConfig(32, 2, 5, chunks)
    got = topk.topk_sorted_batch(scores, counts, 256, config=config)
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 256))
    narrow = topk.topk_sorted_batch(scores[:, :256], counts.clamp(max=64), 64, config=config)  # width < a row
    assert torch.equal(narrow, topk.topk_sorted_batch_ref(scores, counts.clamp(max=64), 64))


def test_two_stage_configs_need_aligned_chunks():
    scores, counts = torch.rand(2, 96, device=DEVICE), _counts([3, 5])
    with pytest.raises(ValueError, match="4 chunks of a row of 96 scores need the row to be a multiple of 64"):
        topk.topk_sorted_batch(scores, counts, 5, config=TopkConfig(16, 4, 5, 4))
    with pytest.raises(ValueError, match=r"chunks in \[1, 8\]"):
        topk.topk_sorted_batch(scores, counts, 5, config=TopkConfig(16, 4, 5, 16))
    assert {c.chunks for c in topk.topk_configs(96)} == {1, 2}  # 96 = 2 chunks of 48, not 4 of 24
    assert {c.chunks for c in topk.topk_configs(32768)} == {1, 2, 4, 8}
    assert torch.equal(topk.topk_sorted_batch(scores, counts, 5, config=TopkConfig(16, 4, 5, 2)),
                       topk.topk_sorted_batch_ref(scores, counts, 5))


def test_tuned_picks_are_kept_apart_by_the_chunks_that_apply(monkeypatch):
    """Rows of one size class that split into different chunk counts are tuned apart: a two-stage pick
    for rows of 4096 columns never serves rows of 4080 (which 8 chunks of 16-multiples cannot split)."""
    seen = []

    def pick(key, candidates, run):
        seen.append((key, {c.chunks for c in candidates}))
        return candidates[-1]

    monkeypatch.setattr(topk, "pick_config", pick)
    for cols in (4096, 4080):
        scores, counts = torch.rand(2, cols, device=DEVICE), _counts([5, 9])
        got = topk.topk_sorted_batch(scores, counts, 9)
        assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 9))
    (key_a, chunks_a), (key_b, chunks_b) = seen
    assert key_a[:-1] == key_b[:-1] and key_a != key_b  # same size class, another set of chunk counts
    assert chunks_a == {1, 2, 4, 8} and chunks_b == {1}  # 4080 = 16 x 255: no chunks of 16-multiples


def test_topk_sorted_batch_into_out_and_rejects_bad_input():
    scores = torch.rand(3, 40, device=DEVICE)
    counts = _counts([4, 4, 2])
    out = torch.empty(3, 4, dtype=torch.int64, device=DEVICE)
    got = topk.topk_sorted_batch(scores, counts, 4, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 4))
    with pytest.raises(ValueError, match="float32"):
        topk.topk_sorted_batch(scores.half(), counts, 4)
    with pytest.raises(ValueError, match="float32"):
        topk.topk_sorted_batch(scores[None], counts, 4)
    with pytest.raises(ValueError, match="width must be in"):
        topk.topk_sorted_batch(scores, counts, 41)
    with pytest.raises(ValueError, match="counts must be int32"):
        topk.topk_sorted_batch(scores, counts.long(), 4)
    with pytest.raises(ValueError, match="digit_bits in"):
        topk.topk_sorted_batch(scores, counts, 4, config=TopkConfig(16, 4, 4))
    with pytest.raises(ValueError, match="power of two"):
        topk.topk_sorted_batch(scores, counts, 4, config=TopkConfig(24, 4))
    with pytest.raises(ValueError, match="out: expected shape"):
        topk.topk_sorted_batch(scores, counts, 4, out=torch.empty(3, 5, dtype=torch.int64, device=DEVICE))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("config", [None, *topk.TOPK_CONFIGS, TopkConfig(8192, 16, 7)], ids=str)
def test_gpu_topk_sorted_batch_full_size(config):
    """32 requests x 8 kv heads of 64K and 40K scores (softmax-like, -1 past a request's length),
    budgets of 3.125%, the tuned config (None) and every candidate."""
    gen = torch.Generator().manual_seed(5)
    lengths = [65536 if b % 2 else 40000 for b in range(32)]
    scores = torch.softmax(4 * torch.randn(32 * 8, 65536, generator=gen), dim=-1)
    counts = []
    for r in range(32 * 8):
        n = lengths[r // 8]
        scores[r, n:] = -1.0
        counts.append(n // 32)
    scores, counts = scores.to(DEVICE), _counts(counts)
    got = topk.topk_sorted_batch(scores, counts, 2048, config=config)
    assert torch.equal(got, topk.topk_sorted_batch_ref(scores, counts, 2048))
