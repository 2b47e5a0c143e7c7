"""HIGGS Triton kernels against the torch path (HiggsQuantizer) on fresh random, irregular inputs.

Without CUDA the kernels run in the Triton interpreter on CPU (small shapes, about 1-2 minutes on
2 cores); on the GPU host the same small cases run compiled, and the ``gpu`` tests check full sizes
and every kernel config the wrappers may pick.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from sglang_kv.kernels import higgs as hk  # imports the jit kernels lazily, at the first launch
from sglang_kv.quant.grids import nearest_point
from sglang_kv.quant.hadamard import hadamard_transform
from sglang_kv.quant.higgs import HiggsCodes, HiggsQuantizer, unpack_indices

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs on the GPU host)")
# bfloat16 outputs: compiled kernels round to nearest (half an ulp, 2**-8 relative); Triton 3.6's
# interpreter truncates float32 -> bfloat16 casts (up to one ulp).
BF16_REL = 2 ** -8 if torch.cuda.is_available() else 2 ** -7
# float32 rounding of a transform of up to 1024 points, relative to the row RMS: the torch butterfly
# itself is up to ~2.4e-6 RMS from exact on keys with outlier channels (the kernel about 1e-6)
F32_RMS = 1e-5


@pytest.fixture(scope="module", autouse=True)
def triton_interpreter_without_gpu():
    """Without CUDA, TRITON_INTERPRET=1 while this module's tests run (the kernels are decorated at
    their first import, inside a test, and the interpreter reads it at run time too); restored
    afterwards, so processes that other tests start do not inherit it."""
    if torch.cuda.is_available():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")
        yield


def test_kernels_run_where_they_can():
    kernels = importlib.import_module("sglang_kv.kernels.higgs_triton")
    interpreted = type(kernels.higgs_score_kernel).__name__ == "InterpretedFunction"
    assert interpreted == (DEVICE.type == "cpu"), (
        "without CUDA the kernels must be first imported with TRITON_INTERPRET=1 (something imported "
        "sglang_kv.kernels.higgs_triton earlier in this process)")


def randn(*shape, seed, scale=1.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=gen)).to(dtype=dtype, device=DEVICE)


# --- checks ----------------------------------------------------------------------------------------
def assert_codes_nearest(quantizer: HiggsQuantizer, x: torch.Tensor, codes: HiggsCodes, atol: float = 1e-4):
    """Each code names a nearest codeword of its rotated, normalized sub-vector (using the scales
    under test), up to ``atol`` in squared distance; float64 distances."""
    n, p = quantizer.group_size, quantizer.p
    groups = x.double().reshape(-1, n)
    scale = codes.scales.double().reshape(-1, 1)
    rotated = hadamard_transform(groups / torch.where(scale > 0, scale, torch.ones_like(scale)))
    sub = rotated.reshape(-1, p)
    chosen = unpack_indices(codes.codes, quantizer.index_bits).reshape(-1)
    grid = quantizer.grid(x.device).double()
    best = nearest_point(sub.float(), quantizer.grid(x.device))
    chosen_dist = (sub - grid[chosen]).square().sum(-1)
    best_dist = (sub - grid[best]).square().sum(-1)
    worst = (chosen_dist - best_dist).max().item()
    assert worst <= atol, f"a code is {worst:.2e} farther (squared) than the nearest codeword"


def assert_quantize_matches(quantizer: HiggsQuantizer, x: torch.Tensor, got: HiggsCodes, min_equal: float):
    ref = hk.quantize_ref(quantizer, x)
    assert got.codes.shape == ref.codes.shape and got.codes.dtype == torch.uint8
    assert got.scales.shape == ref.scales.shape and got.scales.dtype == ref.scales.dtype
    ulp = torch.finfo(got.scales.dtype).eps  # scales may differ by one rounding step
    torch.testing.assert_close(got.scales.float(), ref.scales.float(), rtol=ulp, atol=0)
    assert_codes_nearest(quantizer, x, got)
    # where the scales are equal, codes may differ only at near-ties of two codewords
    subs_per_group = quantizer.group_size // quantizer.p
    same_scale = (got.scales == ref.scales).repeat_interleave(subs_per_group, dim=-1)
    got_idx = unpack_indices(got.codes, quantizer.index_bits)[same_scale]
    ref_idx = unpack_indices(ref.codes, quantizer.index_bits)[same_scale]
    assert same_scale.double().mean() >= 0.5
    equal = (got_idx == ref_idx).double().mean().item()
    assert equal >= min_equal, f"only {equal:.5f} of the codes equal the torch path's"


def assert_scores_close(quantizer, q, codes, scales, got, rel=2e-6):
    """|kernel - torch| <= rel * |q_h| * |k'| per entry (float32 rounding of a D-term dot product);
    q ``[Hq, D]``, one request's store, ``got [Hq, rows]``."""
    ref = hk.score_ref(quantizer, q, codes, scales)
    num_kv_heads = scales.shape[1]
    keys = quantizer.dequantize(codes.reshape(codes.shape[0], num_kv_heads, codes.shape[1] // num_kv_heads),
                                scales[..., None])
    key_norm = keys.norm(dim=-1).T  # (Hkv, rows)
    gqa = q.shape[0] // num_kv_heads
    bound = q.float().norm(dim=-1).amax(0) * key_norm.repeat_interleave(gqa, 0)  # (Hq, rows)
    err = (got - ref).abs()
    assert (err <= rel * bound + 1e-30).all(), f"max error / bound = {(err / bound).max().item():.2e}"


def assert_batch_scores_close(quantizer, q, codes, scales, got):
    """Each request's columns as :func:`assert_scores_close`."""
    for b, (c, sc) in enumerate(zip(codes, scales)):
        assert_scores_close(quantizer, q[b], c.to(q.device), sc.to(q.device), got[b, :, :c.shape[0]])


# --- quantize --------------------------------------------------------------------------------------
QUANT_CASES = [  # (group_size, channels, rows, p, bits)
    (16, 48, 37, 1, 3),
    (64, 192, 23, 4, 2),
    (64, 192, 19, 2, 3),
    (128, 256, 21, 2, 4),
    (128, 128, 17, 1, 2),
    (128, 256, 9, 4, 1),
    (256, 256, 6, 2, 2),
    (512, 512, 3, 1, 4),
    (1024, 1024, 3, 2, 4),
]


@pytest.mark.parametrize("group_size,channels,rows,p,bits", QUANT_CASES)
def test_quantize_matches_torch(group_size, channels, rows, p, bits):
    quantizer = HiggsQuantizer(group_size, p, bits)
    x = randn(rows, channels, seed=group_size + rows, scale=3.0)
    got = hk.quantize(quantizer, x)
    assert_quantize_matches(quantizer, x, got, min_equal=0.99)


def test_quantize_lead_dims_bf16_zero_rows_and_out():
    quantizer = HiggsQuantizer(64, 4, 2, scale_dtype=torch.bfloat16)
    x = randn(2, 5, 192, seed=1, dtype=torch.bfloat16)
    x[0, 1] = 0
    x[1, 2, 64:128] = 0
    out = HiggsCodes(torch.empty(2, 5, 48, dtype=torch.uint8, device=DEVICE),
                     torch.empty(2, 5, 3, dtype=torch.bfloat16, device=DEVICE))
    got = hk.quantize(quantizer, x, out=out)
    assert got.codes.data_ptr() == out.codes.data_ptr()
    assert got.scales[0, 1].abs().sum() == 0 and got.scales[1, 2, 1] == 0
    assert_quantize_matches(quantizer, x, got, min_equal=0.99)
    assert torch.isfinite(quantizer.dequantize(*got)).all()


def test_quantize_non_contiguous_input():
    quantizer = HiggsQuantizer(128, 2, 4)
    x = randn(128, 11, seed=2).T  # (11, 128), row stride 1
    assert_quantize_matches(quantizer, x, hk.quantize(quantizer, x), min_equal=0.99)


def test_quantize_into_store_slice():
    """Rows written into a column slice of a wider store buffer; the rest stays untouched."""
    quantizer = HiggsQuantizer(64, 2, 4)
    x = randn(13, 128, seed=3)
    store_codes = torch.full((13, 80), 7, dtype=torch.uint8, device=DEVICE)
    store_scales = torch.zeros(13, 4, dtype=torch.float16, device=DEVICE)
    got = hk.quantize(quantizer, x, out=HiggsCodes(store_codes[:, 8:72], store_scales[:, 1:3]))
    assert (store_codes[:, :8] == 7).all() and (store_codes[:, 72:] == 7).all()
    assert (store_scales[:, 0] == 0).all() and (store_scales[:, 3] == 0).all()
    assert_quantize_matches(quantizer, x, got, min_equal=0.99)
    with pytest.raises(ValueError, match="contiguous"):
        wide = torch.empty(2, 13, 80, dtype=torch.uint8, device=DEVICE)
        hk.quantize(quantizer, x.view(1, 13, 128).expand(2, 13, 128),
                    out=HiggsCodes(wide[..., :64], torch.empty(2, 13, 2, dtype=torch.float16, device=DEVICE)))


def test_quantize_rejects_bad_input():
    quantizer = HiggsQuantizer(128, 2, 4)
    with pytest.raises(ValueError, match="multiple of group_size"):
        hk.quantize(quantizer, randn(3, 100, seed=0))
    with pytest.raises(ValueError, match="dtype"):
        hk.quantize(quantizer, randn(3, 128, seed=0).double())
    bad_out = HiggsCodes(torch.empty(3, 63, dtype=torch.uint8, device=DEVICE),
                         torch.empty(3, 1, dtype=torch.float16, device=DEVICE))
    with pytest.raises(ValueError, match="out.codes: expected shape"):
        hk.quantize(quantizer, randn(3, 128, seed=0), out=bad_out)
    with pytest.raises(ValueError, match="config"):
        hk.quantize(quantizer, randn(3, 128, seed=0), config=hk.KernelConfig(8, 4))


# --- dequantize-gather -----------------------------------------------------------------------------
GATHER_CASES = [  # (group_size, channels, rows, p, bits)
    (64, 192, 29, 4, 2),
    (128, 256, 33, 2, 4),
    (16, 32, 40, 1, 3),
    (512, 1024, 9, 2, 3),
    (1024, 1024, 11, 2, 4),
    (32, 64, 21, 4, 2),  # 8 codewords per row: the dot's rows padded to 16
    (256, 512, 7, 4, 1),  # 16 x 16 transform with 4 codewords per row of X: padded
]


def _store(quantizer, rows, channels, seed, outliers=False):
    keys = randn(rows, channels, seed=seed, scale=2.0)
    if outliers:  # a few channels 30x larger: their energy gathers in few entries of a partial transform
        keys[:, torch.randperm(channels, generator=torch.Generator().manual_seed(seed))[:4]] *= 30
    return hk.quantize_ref(quantizer, keys)


@pytest.mark.parametrize("group_size,channels,rows,p,bits", GATHER_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("outliers", [False, True])
def test_dequantize_gather_matches_torch(group_size, channels, rows, p, bits, dtype, outliers):
    quantizer = HiggsQuantizer(group_size, p, bits)
    codes, scales = _store(quantizer, rows, channels, seed=rows, outliers=outliers)
    gen = torch.Generator().manual_seed(rows)
    index = torch.randint(0, rows, (2, 7), generator=gen).to(DEVICE)  # repeats allowed
    got = hk.dequantize_gather(quantizer, codes, scales, index, dtype=dtype)
    ref = hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32)
    assert got.shape == (2, 7, channels) and got.dtype == dtype
    row_rms = ref.square().mean(-1, keepdim=True).sqrt()
    if dtype == torch.float32:
        assert ((got - ref).abs() <= 1e-5 * ref.abs() + F32_RMS * row_rms).all()
    else:  # one bfloat16 rounding of the float32 result
        assert ((got.float() - ref).abs() <= BF16_REL * ref.abs() + F32_RMS * row_rms).all()


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_dequantize_gather_strided_store_and_out(index_dtype):
    quantizer = HiggsQuantizer(64, 4, 2)
    codes, scales = _store(quantizer, 31, 128, seed=5)
    wide = torch.zeros(31, 100, dtype=torch.uint8, device=DEVICE)  # a store row with spare bytes
    wide[:, 10:42] = codes  # 128 channels x 2 bits = 32 bytes
    codes_view = wide[:, 10:42]
    index = torch.tensor([30, 0, 7, 7, 12], dtype=index_dtype, device=DEVICE)
    out = torch.full((5, 128), float("nan"), device=DEVICE)
    got = hk.dequantize_gather(quantizer, codes_view, scales, index, dtype=torch.float32, out=out)
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got, hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32),
                               rtol=1e-5, atol=1e-6)
    empty = hk.dequantize_gather(quantizer, codes, scales, index[:0])
    assert empty.shape == (0, 128)


def test_dequantize_gather_persistent_loop():
    """Few programs, each looping over many blocks of output rows."""
    quantizer = HiggsQuantizer(64, 2, 3)
    codes, scales = _store(quantizer, 57, 192, seed=6)
    index = torch.randint(0, 57, (3, 50), generator=torch.Generator().manual_seed(6)).to(DEVICE)
    got = hk.dequantize_gather(quantizer, codes, scales, index, dtype=torch.float32,
                               config=hk.KernelConfig(16, 4, programs_per_sm=1))
    torch.testing.assert_close(got, hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32),
                               rtol=1e-5, atol=1e-6)


def test_dequantize_gather_per_head_rows():
    """A per-head store [tokens, Hkv, D*bits/8] gathered per (token, head) as rows token * Hkv + head."""
    quantizer = HiggsQuantizer(64, 2, 4)
    num_tokens, num_kv_heads = 13, 3
    codes, scales = _store(quantizer, num_tokens, num_kv_heads * 64, seed=9)
    rows_codes = codes.view(num_tokens * num_kv_heads, -1)
    rows_scales = scales.view(num_tokens * num_kv_heads, 1)
    tokens = torch.tensor([[2, 5], [0, 12], [7, 7]], device=DEVICE)  # (Hkv, k)
    index = tokens * num_kv_heads + torch.arange(num_kv_heads, device=DEVICE)[:, None]
    got = hk.dequantize_gather(quantizer, rows_codes, rows_scales, index, dtype=torch.float32)
    full = quantizer.dequantize(codes, scales).view(num_tokens, num_kv_heads, 64)
    expected = torch.stack([full[tokens[h], h] for h in range(num_kv_heads)])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_sm_limit_changes_grids_not_results():
    """Under ``sm_limit`` the persistent gather and score launch fewer programs (one per SM here),
    each looping over more blocks; their outputs are bit-identical to the full grids'."""
    from sglang_kv.kernels._triton_utils import sm_limit

    quantizer = HiggsQuantizer(64, 2, 4)
    stores = [_store(quantizer, n, 2 * 64, seed=70 + n) for n in (45, 23)]
    codes, scales = [c for c, _ in stores], [sc for _, sc in stores]
    gen = torch.Generator().manual_seed(71)
    request = torch.randint(0, 2, (3, 40), generator=gen, dtype=torch.int32).to(DEVICE)
    index = torch.randint(0, 23, (3, 40), generator=gen).to(DEVICE)
    q = randn(2, 4, 64, seed=72, dtype=torch.bfloat16)
    gather_config, score_config = hk.KernelConfig(16, 4, programs_per_sm=1), hk.KernelConfig(16, 4, 1)

    def run():
        return (hk.dequantize_gather_batch(quantizer, codes, scales, request, index, dtype=torch.float32,
                                           config=gather_config),
                hk.score_batch(quantizer, q, codes, scales, config=score_config))

    full = run()
    with sm_limit(1):
        limited = run()
    assert torch.equal(full[0], limited[0])
    for b, n in enumerate((45, 23)):  # score columns past a request's rows are not written
        assert torch.equal(full[1][b, :, :n], limited[1][b, :, :n])


@pytest.mark.parametrize("group_size,channels", [(64, 128), (1024, 1024)])
def test_dequantize_gather_batch_separate_stores(group_size, channels):
    """Rows of several requests' stores in one launch, each output row naming its request."""
    quantizer = HiggsQuantizer(group_size, 2, 4)
    lengths = [9, 4, 13]
    stores = [_store(quantizer, n, channels, seed=40 + n) for n in lengths]
    request = torch.tensor([[2, 0, 1], [0, 2, 2]], dtype=torch.int32, device=DEVICE)
    index = torch.tensor([[12, 8, 3], [0, 0, 5]], device=DEVICE)
    got = hk.dequantize_gather_batch(quantizer, [c for c, _ in stores], [sc for _, sc in stores], request, index,
                                     dtype=torch.float32, config=hk.KernelConfig(16 if group_size <= 128 else 1, 4))
    assert got.shape == (2, 3, channels)
    for i in range(2):
        for j in range(3):
            codes, scales = stores[request[i, j].item()]
            row = index[i, j:j + 1]
            torch.testing.assert_close(got[i, j], hk.dequantize_gather_ref(quantizer, codes, scales, row,
                                                                           torch.float32)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="request must be int32"):
        hk.dequantize_gather_batch(quantizer, [stores[0][0]], [stores[0][1]], request.long(), index)
    with pytest.raises(ValueError, match="one scales tensor per codes"):
        hk.dequantize_gather_batch(quantizer, [stores[0][0]], [], request, index)


@pytest.mark.parametrize("group_size", [64, 1024])
@pytest.mark.parametrize("strided", [False, True])
def test_dequantize_gather_group_major_records(group_size, strided):
    """Rows of two groups (yakv's K|V records) read whole: group g of row index[i] lands at out[g, i],
    equal to the torch path; in stores of several requests, rows with a row stride past the record."""
    quantizer = HiggsQuantizer(group_size, 2, 4)
    lengths = [11, 5]
    stores = []
    for n in lengths:
        codes, scales = _store(quantizer, n, 2 * group_size, seed=60 + n)
        if strided:  # each record inside a wider row (a padded layout): views with a larger row stride
            wide_codes = torch.zeros(n, codes.shape[1] + 16, dtype=codes.dtype, device=DEVICE)
            wide_scales = torch.zeros(n, 3, dtype=scales.dtype, device=DEVICE)
            wide_codes[:, :codes.shape[1]], wide_scales[:, :2] = codes, scales
            codes, scales = wide_codes[:, :codes.shape[1]], wide_scales[:, :2]
        stores.append((codes, scales))
    request = torch.tensor([1, 0, 0, 1, 0], dtype=torch.int32, device=DEVICE)
    index = torch.tensor([4, 10, 0, 0, 10], device=DEVICE)
    config = hk.dequantize_gather_configs(group_size, 2)[0]
    got = hk.dequantize_gather_batch(quantizer, [c for c, _ in stores], [sc for _, sc in stores], request, index,
                                     dtype=torch.float32, config=config, group_major=True)
    assert got.shape == (2, 5, group_size)
    ref = hk.dequantize_gather_batch_ref(quantizer, [c for c, _ in stores], [sc for _, sc in stores], request,
                                         index, torch.float32, group_major=True)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    for i in range(5):  # the reference itself: K's group, then V's, of each record
        codes, scales = stores[request[i].item()]
        row = hk.dequantize_gather_ref(quantizer, codes, scales, index[i:i + 1], torch.float32)[0]
        torch.testing.assert_close(ref[:, i], row.view(2, group_size), rtol=0, atol=0)
    with pytest.raises(ValueError, match="group_major gathers rows of 2 groups"):
        hk.dequantize_gather_batch(quantizer, [c[:, :c.shape[1] // 2] for c, _ in stores],
                                   [sc[:, :1] for _, sc in stores], request, index, group_major=True)


@pytest.mark.parametrize("group_major", [False, True])
def test_dequantize_gather_negative_index_reads_nothing(group_major):
    """A negative index (a padding column) gives a row of zeros in the kernel and the torch path; the
    other rows are unchanged. Its request may be any value: the kernel reads neither the table nor
    the store for it (here an out-of-range request, which a read would turn into a fault or garbage)."""
    quantizer = HiggsQuantizer(64, 2, 4)
    stores = [_store(quantizer, n, 128, seed=70 + n) for n in (9, 6)]
    index = torch.tensor([3, -1, 8, 0, -1, 5], device=DEVICE)
    request = torch.tensor([1, 7, 0, 1, 0, 0], dtype=torch.int32, device=DEVICE)
    config = hk.dequantize_gather_configs(64, 2 if group_major else 1)[0]
    got = hk.dequantize_gather_batch(quantizer, [c for c, _ in stores], [sc for _, sc in stores], request, index,
                                     dtype=torch.float32, config=config, group_major=group_major)
    ref_request = torch.where(index < 0, 0, request).to(torch.int32)  # the torch path indexes its store list
    ref = hk.dequantize_gather_batch_ref(quantizer, [c for c, _ in stores], [sc for _, sc in stores], ref_request,
                                         index, torch.float32, group_major=group_major)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    rows = got if not group_major else got.transpose(0, 1).reshape(6, -1)  # (6, 128) either way
    assert (rows[index < 0] == 0).all() and (rows[index >= 0] != 0).any(dim=1).all()
    valid = index >= 0
    kept = hk.dequantize_gather_batch_ref(quantizer, [c for c, _ in stores], [sc for _, sc in stores],
                                          request[valid], index[valid], torch.float32)
    torch.testing.assert_close(rows[valid], kept, rtol=1e-5, atol=1e-5)


def test_dequantize_gather_rejects_bad_input():
    quantizer = HiggsQuantizer(64, 4, 2)
    codes, scales = _store(quantizer, 8, 128, seed=3)
    index = torch.tensor([1, 2], device=DEVICE)
    with pytest.raises(ValueError, match="index must be int32 or int64"):
        hk.dequantize_gather(quantizer, codes, scales, index.float())
    with pytest.raises(ValueError, match="dtype must be one of"):
        hk.dequantize_gather(quantizer, codes, scales, index, dtype=torch.int8)
    with pytest.raises(ValueError, match="out: expected dtype"):
        hk.dequantize_gather(quantizer, codes, scales, index, out=torch.empty(2, 128, device=DEVICE))
    with pytest.raises(ValueError, match="codes must be 2-D"):
        hk.dequantize_gather(quantizer, codes[None], scales[None], index)
    with pytest.raises(ValueError, match="scales must have dtype"):
        hk.dequantize_gather(quantizer, codes, scales.float(), index)


# --- score -----------------------------------------------------------------------------------------
SCORE_CASES = [  # (head_dim, Hq, Hkv, rows, p, bits)
    (128, 4, 1, 45, 4, 2),
    (64, 6, 2, 70, 4, 2),
    (128, 3, 3, 33, 2, 4),
    (32, 8, 2, 50, 1, 3),
    (64, 2, 1, 21, 2, 3),
    (32, 4, 2, 25, 4, 2),  # 8 codewords per head: padded to 16
    (16, 2, 1, 30, 4, 1),  # 4 codewords per head
    (128, 16, 2, 27, 4, 2),  # GQA 8 (Qwen3-30B-A3B): 32 dot columns
]


SCORE_TEST_CONFIGS = [hk.KernelConfig(16, 4, 8), hk.KernelConfig(32, 4, 1), hk.KernelConfig(64, 2, 1, 1)]


@pytest.mark.parametrize("head_dim,num_q_heads,num_kv_heads,rows,p,bits", SCORE_CASES)
@pytest.mark.parametrize("config", SCORE_TEST_CONFIGS, ids=str)
def test_score_matches_torch(head_dim, num_q_heads, num_kv_heads, rows, p, bits, config):
    quantizer = HiggsQuantizer(head_dim, p, bits)
    codes, scales = _store(quantizer, rows, num_kv_heads * head_dim, seed=rows + head_dim)
    q = randn(num_q_heads, head_dim, seed=rows, scale=5.0)
    got = hk.score(quantizer, q, codes, scales, config=config)
    assert got.shape == (num_q_heads, rows) and got.dtype == torch.float32
    assert_scores_close(quantizer, q, codes, scales, got)


@pytest.mark.parametrize("config", SCORE_TEST_CONFIGS, ids=str)
def test_score_batch_separate_stores(config):
    """Requests with their own stores (one a slice of a wider buffer), one of them empty; columns
    past each request's rows stay untouched."""
    quantizer = HiggsQuantizer(64, 4, 2)
    lengths = [17, 0, 40, 5]
    stores = [_store(quantizer, n, 2 * 64, seed=11 + n) for n in lengths]
    codes, scales = [c for c, _ in stores], [sc for _, sc in stores]
    q = randn(len(lengths), 6, 64, seed=12, dtype=torch.bfloat16)
    out = torch.full((4, 6, 40), -7.0, device=DEVICE)
    got = hk.score_batch(quantizer, q, codes, scales, out=out, config=config)
    assert got.data_ptr() == out.data_ptr() and got.shape == (4, 6, 40)
    assert_batch_scores_close(quantizer, q, codes, scales, got)
    for b, n in enumerate(lengths):
        assert (got[b, :, n:] == -7).all()
    torch.testing.assert_close(got.masked_fill(got == -7, 0), hk.score_batch_ref(quantizer, q, codes, scales),
                               rtol=1e-5, atol=1e-5)


def _head_major(codes: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A token-major store ``[rows, Hkv * bytes]`` / ``[rows, Hkv]`` laid out by head: ``[Hkv, rows, bytes]``
    / ``[Hkv, rows]`` (the same values)."""
    num_kv_heads = scales.shape[1]
    return (codes.view(codes.shape[0], num_kv_heads, codes.shape[1] // num_kv_heads).transpose(0, 1).contiguous(),
            scales.transpose(0, 1).contiguous())


@pytest.mark.parametrize("config", [SCORE_TEST_CONFIGS[0]] + (["cuda"] if DEVICE.type == "cuda" else []), ids=str)
@pytest.mark.parametrize("head_dim,num_q_heads,num_kv_heads", [(64, 6, 2), (128, 32, 8)])
def test_score_of_head_major_stores(config, head_dim, num_q_heads, num_kv_heads):
    """Head-major stores (yakv's landmarks) score as the same keys in token-major stores; one request
    empty, columns past each request's rows untouched, ``out`` a view of a wider buffer."""
    quantizer = HiggsQuantizer(head_dim, 4, 2)
    lengths = [17, 0, 40, 5]
    stores = [_store(quantizer, n, num_kv_heads * head_dim, seed=21 + n) for n in lengths]
    codes, scales = [c for c, _ in stores], [sc for _, sc in stores]
    head_major = [_head_major(c, sc) for c, sc in stores]  # held: the refs hold only their addresses
    refs = [hk.head_store_ref(quantizer, c, sc, DEVICE) for c, sc in head_major]
    q = randn(len(lengths), num_q_heads, head_dim, seed=22, dtype=torch.bfloat16)
    buffer = torch.full((4, num_q_heads, 48), -7.0, device=DEVICE)
    got = hk.score_refs(quantizer, q, refs, lengths, out=buffer[..., :40], config=config)
    assert got.shape == (4, num_q_heads, 40)
    assert_batch_scores_close(quantizer, q, codes, scales, got)
    assert (buffer[..., 40:] == -7).all()
    for b, n in enumerate(lengths):
        assert (got[b, :, n:] == -7).all()
    one = hk.score_refs(quantizer, q[2:3], refs[2:3], lengths[2:3], config=config)  # one store, no padding
    torch.testing.assert_close(one[0], got[2], rtol=0, atol=0)


def test_head_major_stores_reject_bad_input():
    quantizer = HiggsQuantizer(64, 4, 2)
    token_codes, token_scales = _store(quantizer, 10, 128, seed=5)
    codes, scales = _head_major(token_codes, token_scales)  # (2, 10, 16), (2, 10)
    with pytest.raises(ValueError, match="head-major store needs"):
        hk.head_store_ref(quantizer, codes[0], scales[0], DEVICE)
    with pytest.raises(ValueError, match="head-major store needs"):
        hk.head_store_ref(quantizer, codes, scales[:, :9], DEVICE)
    with pytest.raises(ValueError, match="head-major store needs"):
        hk.head_store_ref(quantizer, codes[..., :8], scales, DEVICE)
    with pytest.raises(ValueError, match="contiguous"):
        hk.head_store_ref(quantizer, codes.transpose(0, 1).contiguous().transpose(0, 1), scales, DEVICE)
    head = hk.head_store_ref(quantizer, codes, scales, DEVICE)
    token = hk.store_ref(quantizer, token_codes, token_scales, DEVICE)
    with pytest.raises(ValueError, match="token- or head-major"):
        hk.score_refs(quantizer, randn(2, 4, 64, seed=0), [head, token], [10, 10])
    index = torch.zeros(3, dtype=torch.int64, device=DEVICE)
    with pytest.raises(ValueError, match="head-major ones"):
        hk.dequantize_gather_refs(quantizer, [head], torch.zeros(3, dtype=torch.int32, device=DEVICE), index)


def _misaligned(codes: torch.Tensor, offset: int) -> torch.Tensor:
    """``codes`` copied to an address ``offset`` bytes past a 16-byte boundary (same values)."""
    buffer = torch.zeros(codes.numel() + 16, dtype=torch.uint8, device=codes.device)
    moved = buffer[offset:offset + codes.numel()].view(codes.shape)
    moved.copy_(codes)
    return moved


def test_same_device_reads_a_bare_cuda_as_the_current_one(monkeypatch):
    from sglang_kv.kernels._triton_utils import same_device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    cuda = torch.device("cuda")
    assert same_device(cuda, torch.device("cuda", 1)) and same_device(torch.device("cuda", 1), cuda)
    assert not same_device(cuda, torch.device("cuda", 0))
    assert not same_device(cuda, torch.device("cpu")) and same_device(torch.device("cpu"), torch.device("cpu"))


def test_common_alignment():
    from sglang_kv.kernels._triton_utils import common_alignment

    assert common_alignment([4096, 512]) == 16
    assert common_alignment([4096, 520]) == 8
    assert common_alignment([4096, 1027]) == 1
    assert common_alignment([]) == 16


@pytest.mark.parametrize("offset", [1, 8])
def test_batches_read_misaligned_stores(offset):
    """Stores whose codes do not start on a 16-byte boundary: the kernels get a weaker alignment hint
    and read the same values."""
    quantizer = HiggsQuantizer(64, 4, 2)
    stores = [_store(quantizer, n, 2 * 64, seed=40 + n) for n in (19, 33)]
    codes = [_misaligned(c, offset) for c, _ in stores]
    scales = [sc for _, sc in stores]
    assert all(c.data_ptr() % 16 == offset % 16 for c in codes)
    q = randn(2, 4, 64, seed=41)
    got = hk.score_batch(quantizer, q, codes, scales, config=hk.KernelConfig(16, 4))
    assert_batch_scores_close(quantizer, q, codes, scales, got)
    store = HiggsQuantizer(128, 2, 4)
    payload = [_store(store, n, 256, seed=42 + n) for n in (7, 12)]
    request = torch.tensor([0, 1, 1, 0, 1], dtype=torch.int32, device=DEVICE)
    index = torch.tensor([3, 11, 0, 6, 5], device=DEVICE)
    got = hk.dequantize_gather_batch(store, [_misaligned(c, offset) for c, _ in payload], [sc for _, sc in payload],
                                     request, index, dtype=torch.float32)
    ref = hk.dequantize_gather_batch_ref(store, [c for c, _ in payload], [sc for _, sc in payload], request, index,
                                         torch.float32)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_score_out_view_and_tiny_queries():
    quantizer = HiggsQuantizer(128, 4, 2)
    codes, scales = _store(quantizer, 20, 256, seed=13)
    q = randn(4, 128, seed=14, scale=1e-30)  # below float16 range: the kernel rescales q
    buffer = torch.full((4, 32), -1.0, device=DEVICE)
    got = hk.score(quantizer, q, codes, scales, out=buffer[:, :20], config=hk.KernelConfig(16, 4))
    assert (buffer[:, 20:] == -1).all()
    assert_scores_close(quantizer, q, codes, scales, got)
    assert got.abs().max() > 0


def test_score_rejects_bad_input():
    quantizer = HiggsQuantizer(64, 4, 2)
    codes, scales = _store(quantizer, 10, 128, seed=4)
    with pytest.raises(ValueError, match="not a multiple of kv heads"):
        hk.score(quantizer, randn(3, 64, seed=0), codes, scales)
    with pytest.raises(ValueError, match="use score_batch"):
        hk.score(quantizer, randn(2, 4, 64, seed=0), codes, scales)
    with pytest.raises(ValueError, match="one store and row count per request"):
        hk.score_batch(quantizer, randn(2, 4, 64, seed=0), [codes], [scales])
    with pytest.raises(ValueError, match="same row strides"):
        wide = torch.zeros(10, 64, dtype=torch.uint8, device=DEVICE)[:, :32]
        hk.score_batch(quantizer, randn(2, 4, 64, seed=0), [codes, wide], [scales, scales])
    with pytest.raises(ValueError, match="q last dimension"):
        hk.score(quantizer, randn(4, 128, seed=0), codes, scales)
    with pytest.raises(ValueError, match="<= 128"):
        big = HiggsQuantizer(256, 4, 2)
        hk.score(big, randn(2, 256, seed=0), *_store(big, 4, 256, seed=0))
    with pytest.raises(ValueError, match="out: expected shape"):
        hk.score(quantizer, randn(4, 64, seed=0), codes, scales, out=torch.empty(4, 9, device=DEVICE))


# --- full size on the GPU host ---------------------------------------------------------------------
LLAMA_TOKENS = 128 * 1024
STORE = dict(group_size=1024, p=2, bits=4)  # 4-bit K/V store, one group per token
LANDMARK = dict(group_size=128, p=4, bits=2)  # 2-bit per-head landmarks


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("spec", [STORE, LANDMARK], ids=["store", "landmark"])
def test_gpu_quantize_full_size(spec):
    quantizer = HiggsQuantizer(**spec)
    x = randn(32 * 1024, 1024, seed=21, scale=4.0, dtype=torch.bfloat16)
    for config in hk.quantize_configs(quantizer.group_size):
        assert_quantize_matches(quantizer, x, hk.quantize(quantizer, x, config=config), min_equal=0.999)
    assert_quantize_matches(quantizer, x, hk.quantize(quantizer, x), min_equal=0.999)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("spec", [STORE, LANDMARK], ids=["store", "landmark"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_dequantize_gather_full_size(spec, dtype):
    quantizer = HiggsQuantizer(**spec)
    codes, scales = _store(quantizer, LLAMA_TOKENS, 1024, seed=22, outliers=True)
    index = torch.randperm(LLAMA_TOKENS, device=DEVICE)[: LLAMA_TOKENS // 2]
    ref = hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32)
    row_rms = ref.square().mean(-1, keepdim=True).sqrt()
    for config in [*hk.dequantize_gather_configs(quantizer.group_size), None]:
        got = hk.dequantize_gather(quantizer, codes, scales, index, dtype=dtype, config=config)
        if dtype == torch.float32:
            assert ((got - ref).abs() <= 1e-5 * ref.abs() + F32_RMS * row_rms).all(), config
        else:
            assert ((got.float() - ref).abs() <= BF16_REL * ref.abs() + F32_RMS * row_rms).all(), config


@pytest.mark.gpu
@gpu
def test_gpu_dequantize_gather_from_pinned_host():
    quantizer = HiggsQuantizer(**STORE)
    codes, scales = _store(quantizer, LLAMA_TOKENS, 1024, seed=23)
    codes_host, scales_host = codes.cpu().pin_memory(), scales.cpu().pin_memory()
    index = torch.randperm(LLAMA_TOKENS, device=DEVICE)[:4096].sort().values
    got = hk.dequantize_gather(quantizer, codes_host, scales_host, index, dtype=torch.float32)
    ref = hk.dequantize_gather_ref(quantizer, codes, scales, index, torch.float32)
    row_rms = ref.square().mean(-1, keepdim=True).sqrt()
    assert ((got - ref).abs() <= 1e-5 * ref.abs() + F32_RMS * row_rms).all()
    device_got = hk.dequantize_gather(quantizer, codes, scales, index, dtype=torch.float32,
                                      config=hk.dequantize_gather_configs(1024)[0])
    host_got = hk.dequantize_gather(quantizer, codes_host, scales_host, index, dtype=torch.float32,
                                    config=hk.dequantize_gather_configs(1024)[0])
    torch.testing.assert_close(host_got, device_got, rtol=0, atol=0)  # same kernel, same bytes
    with pytest.raises(ValueError, match="pinned"):
        hk.dequantize_gather(quantizer, codes.cpu(), scales_host, index)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("config", [*hk.SCORE_CONFIGS, None], ids=lambda c: "auto" if c is None else str(tuple(c)))
def test_gpu_score_full_size(config):
    quantizer = HiggsQuantizer(**LANDMARK)
    codes, scales = _store(quantizer, LLAMA_TOKENS, 1024, seed=24)
    q = randn(32, 128, seed=25, scale=3.0, dtype=torch.bfloat16)
    got = hk.score(quantizer, q, codes, scales, config=config)
    assert_scores_close(quantizer, q, codes, scales, got)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("config", [hk.SCORE_CONFIGS[0], hk.SCORE_CONFIGS[-1], None], ids=str)
def test_gpu_score_batch_device_and_pinned(config):
    quantizer = HiggsQuantizer(**LANDMARK)
    lengths = [30_000, 1, 65_536, 12_345]
    stores = [_store(quantizer, n, 1024, seed=26 + n) for n in lengths]
    codes, scales = [c for c, _ in stores], [sc for _, sc in stores]
    q = randn(len(lengths), 32, 128, seed=27)
    got = hk.score_batch(quantizer, q, codes, scales, config=config)
    assert_batch_scores_close(quantizer, q, codes, scales, got)
    if config is not None:
        got_host = hk.score_batch(quantizer, q, [c.cpu().pin_memory() for c in codes],
                                  [sc.cpu().pin_memory() for sc in scales], config=config)
        for b, n in enumerate(lengths):  # same kernel, same bytes
            torch.testing.assert_close(got_host[b, :, :n], got[b, :, :n], rtol=0, atol=0)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("group_size", [128, 1024])
def test_gpu_dequantize_gather_records_every_config(group_size):
    """The group-major gather of K|V records from pinned host memory at every config (and the
    tuned pick) equals the torch path, over 20K random rows of two requests."""
    quantizer = HiggsQuantizer(group_size, 2, 4)
    lengths = [40_000, 9]
    stores = [_store(quantizer, n, 2 * group_size, seed=70 + n) for n in lengths]
    host = [(c.cpu().pin_memory(), sc) for c, sc in stores]  # the scales stay on the GPU
    gen = torch.Generator(device=DEVICE).manual_seed(71)
    request = torch.randint(0, 2, (20_000,), device=DEVICE, generator=gen, dtype=torch.int32)
    index = (torch.rand(20_000, device=DEVICE, generator=gen) * torch.tensor(lengths, device=DEVICE)[request]).long()
    ref = hk.dequantize_gather_batch_ref(quantizer, [c for c, _ in stores], [sc for _, sc in stores], request, index,
                                         torch.float32, group_major=True)
    row_rms = ref.square().mean(-1, keepdim=True).sqrt()
    for config in [*hk.dequantize_gather_configs(group_size, 2), None]:
        got = hk.dequantize_gather_batch(quantizer, [c for c, _ in host], [sc for _, sc in host], request, index,
                                         dtype=torch.float32, config=config, group_major=True)
        assert ((got - ref).abs() <= 1e-5 * ref.abs() + F32_RMS * row_rms).all(), config


@pytest.mark.gpu
@gpu
def test_gpu_dequantize_gather_batch_from_pinned_host():
    quantizer = HiggsQuantizer(**STORE)
    lengths = [20_000, 65_536, 3]
    stores = [_store(quantizer, n, 1024, seed=30 + n) for n in lengths]
    host = [(c.cpu().pin_memory(), sc.cpu().pin_memory()) for c, sc in stores]
    gen = torch.Generator(device=DEVICE).manual_seed(31)
    request = torch.randint(0, 3, (5000,), device=DEVICE, generator=gen, dtype=torch.int32)
    index = (torch.rand(5000, device=DEVICE, generator=gen) * torch.tensor(lengths, device=DEVICE)[request]).long()
    got = hk.dequantize_gather_batch(quantizer, [c for c, _ in host], [sc for _, sc in host], request, index,
                                     dtype=torch.float32)
    for b, (codes, scales) in enumerate(stores):
        rows = request == b
        ref = hk.dequantize_gather_ref(quantizer, codes, scales, index[rows], torch.float32)
        row_rms = ref.square().mean(-1, keepdim=True).sqrt()
        assert ((got[rows] - ref).abs() <= 1e-5 * ref.abs() + F32_RMS * row_rms).all()


# --- the CUDA score kernel (sglang_kv/kernels/higgs_score_cuda.py) -----------------------------------
CUDA_SCORE_CASES = [  # (head_dim, num_q_heads, num_kv_heads, rows): every GQA class, rows past a 128 block
    (128, 32, 8, 1000),  # Llama-3.1-8B: GQA 4, one n8 tile
    (128, 32, 4, 777),  # Qwen3-30B-A3B: GQA 8, two tiles
    (128, 6, 2, 300),  # GQA 3: padded heads
    (64, 4, 4, 129),  # GQA 1, head dim 64 (4-byte code loads)
    (64, 12, 2, 50),  # GQA 6, fewer rows than one block
]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("head_dim,num_q_heads,num_kv_heads,rows", CUDA_SCORE_CASES)
@pytest.mark.parametrize("q_dtype", [torch.float32, torch.bfloat16])
def test_gpu_cuda_score_matches_torch(head_dim, num_q_heads, num_kv_heads, rows, q_dtype):
    quantizer = HiggsQuantizer(head_dim, 4, 2)
    codes, scales = _store(quantizer, rows, num_kv_heads * head_dim, seed=rows + head_dim)
    q = randn(num_q_heads, head_dim, seed=rows, scale=5.0, dtype=q_dtype)
    got = hk.score(quantizer, q, codes, scales, config="cuda")
    assert_scores_close(quantizer, q, codes, scales, got)
    triton = hk.score(quantizer, q, codes, scales, config="triton")
    assert_scores_close(quantizer, q, codes, scales, triton)
    assert torch.equal(hk.score(quantizer, q, codes, scales), got)  # the default runs the CUDA kernel


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("head_dim,num_q_heads,num_kv_heads", [(128, 32, 8), (128, 32, 4), (64, 6, 2)])
def test_gpu_cuda_score_batch_device_and_pinned(head_dim, num_q_heads, num_kv_heads):
    """Separate stores of unequal lengths (one empty, one of a single row), on the GPU and in pinned
    host memory (read zero-copy), one a slice of a wider buffer; columns past each request untouched."""
    quantizer = HiggsQuantizer(head_dim, 4, 2)
    lengths = [3000, 0, 1, 4097]
    stores = [_store(quantizer, n, num_kv_heads * head_dim, seed=80 + n) for n in lengths]
    codes, scales = [c for c, _ in stores], [sc for _, sc in stores]
    wide = torch.zeros(lengths[0], 2 * codes[0].shape[1], dtype=torch.uint8, device=DEVICE)
    wide[:, :codes[0].shape[1]] = codes[0]
    q = randn(len(lengths), num_q_heads, head_dim, seed=81, dtype=torch.bfloat16)
    out = torch.full((4, num_q_heads, max(lengths)), -7.0, device=DEVICE)
    got = hk.score_batch(quantizer, q, codes, scales, out=out, config="cuda")
    assert_batch_scores_close(quantizer, q, codes, scales, got)
    for b, n in enumerate(lengths):
        assert (got[b, :, n:] == -7).all()
    def pinned(t):  # an empty tensor cannot be pinned: it stays on the GPU (one launch may mix both)
        return t.cpu().pin_memory() if t.numel() else t

    host = hk.score_batch(quantizer, q, [pinned(c) for c in codes], [pinned(sc) for sc in scales], config="cuda")
    for b, n in enumerate(lengths):  # same kernel, same bytes
        assert torch.equal(host[b, :, :n], got[b, :, :n])
    sliced = hk.score_batch(quantizer, q[:1], [wide[:, :codes[0].shape[1]]], scales[:1], config="cuda")
    assert torch.equal(sliced[0], got[0, :, :lengths[0]])


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("groups,programs_per_sm", [(4, 1), (2, 1), (4, 6), (2, 6), (1, 24)])
@pytest.mark.parametrize("num_kv_heads", [8, 4])
def test_gpu_cuda_score_tunings_give_the_default_bits(groups, programs_per_sm, num_kv_heads):
    """Every launch choice of the CUDA score gives the default's bits on head-major stores (yakv's
    landmarks), with enough rows that each program runs several loop steps."""
    from sglang_kv.devices import device_ints
    from sglang_kv.kernels import higgs_score_cuda as hc
    from sglang_kv.kernels._triton_utils import num_sms

    quantizer = HiggsQuantizer(128, 4, 2)
    lengths = [20000, 7, 9001]
    token_major = [_store(quantizer, n, num_kv_heads * 128, seed=60 + n) for n in lengths]
    stores = [_head_major(c, sc) for c, sc in token_major]  # held: the refs hold only their addresses
    refs = [hk.head_store_ref(quantizer, c, sc, DEVICE) for c, sc in stores]
    table = device_ints([(st.codes, st.scales, n) for st, n in zip(refs, lengths)], DEVICE)
    q = randn(len(lengths), 32, 128, seed=61, dtype=torch.bfloat16)
    shape = hc.ScoreShape(128, 32 // num_kv_heads, True, q.dtype, quantizer.scale_dtype, head_major=True)
    words = hk.grid_words(quantizer, DEVICE)
    sms = num_sms(DEVICE)
    outs = []
    for tuning in (None, hc.Tuning(groups, programs_per_sm)):  # None: the default
        out = torch.full((len(lengths), 32, max(lengths)), -7.0, device=DEVICE)
        hc.launch(shape, q, out, out, table, words, out, max(lengths), num_kv_heads, 32, 1, sms, tuning)
        outs.append(out)
    assert torch.equal(outs[1], outs[0])
    assert_batch_scores_close(quantizer, q, [c for c, _ in token_major], [sc for _, sc in token_major], outs[1])


@pytest.mark.gpu
@gpu
def test_gpu_cuda_score_rejects_what_it_does_not_serve():
    quantizer = HiggsQuantizer(128, 2, 4)  # the 2-D grid: Triton only
    codes, scales = _store(quantizer, 10, 256, seed=90)
    q = randn(4, 128, seed=91)
    with pytest.raises(ValueError, match="does not serve"):
        hk.score(quantizer, q, codes, scales, config="cuda")
    assert_scores_close(quantizer, q, codes, scales, hk.score(quantizer, q, codes, scales))  # the default: Triton
    landmark = HiggsQuantizer(128, 4, 2)
    codes, scales = _store(landmark, 10, 256, seed=92)
    with pytest.raises(ValueError, match="does not serve"):  # codes 4 bytes past an 8-byte boundary
        hk.score(landmark, q, _misaligned(codes, 4), scales, config="cuda")
    assert_scores_close(landmark, q, codes, scales, hk.score(landmark, q, _misaligned(codes, 4), scales))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("p,bits", [(4, 2), (4, 1), (2, 4), (2, 3), (1, 3)])
@pytest.mark.parametrize("head_dim,num_q_heads,num_kv_heads", [(128, 4, 2), (128, 3, 3), (128, 16, 2), (64, 8, 2)])
def test_gpu_score_every_config_and_grid(p, bits, head_dim, num_q_heads, num_kv_heads):
    """Every Triton candidate on every landmark grid yakv can run (and the default kernel) equals the torch
    path on the GPU: 64-row blocks in 4 warps once returned NaN for the 2-D grids, and the 3-bit grids
    failed with some of SCORE_CONFIGS (they now run hk.score_configs' smaller blocks)."""
    quantizer = HiggsQuantizer(head_dim, p, bits)
    codes, scales = _store(quantizer, 300, num_kv_heads * head_dim, seed=p * 10 + bits)
    q = randn(num_q_heads, head_dim, seed=p + bits, scale=3.0, dtype=torch.bfloat16)
    for config in [*hk.score_configs(quantizer), None]:
        got = hk.score(quantizer, q, codes, scales, config=config)
        assert not got.isnan().any(), config
        assert_scores_close(quantizer, q, codes, scales, got)
