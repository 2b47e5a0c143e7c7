"""The CUDA score kernel's source and dispatch, without a GPU (its results are tested against the torch
path on the GPU host: ``test_gpu_cuda_score_*`` in test_higgs_kernels.py).

NVRTC (shipped with torch's CUDA wheels) compiles the source for sm_90 on any machine, so a syntax or
type error fails here; the cubin's resource usage shows whether registers spill.
"""

from __future__ import annotations

import ctypes
import pathlib
import subprocess
import tempfile

import pytest
import torch

from sglang_kv.kernels import higgs as hk
from sglang_kv.kernels import higgs_score_cuda as hc
from sglang_kv.quant.higgs import HiggsQuantizer

SHAPES = [hc.ScoreShape(d, gqa, table, q_dtype, torch.float16)
          for d in (64, 128) for gqa in (1, 3, 4, 8) for table in (False, True)
          for q_dtype in (torch.float32, torch.bfloat16)] + [
          hc.ScoreShape(d, gqa, True, torch.bfloat16, torch.float16, head_major=True)  # yakv's landmarks
          for d in (64, 128) for gqa in (1, 3, 4, 8)]


def _cuobjdump() -> str:
    import triton

    path = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    assert path.exists(), f"triton ships cuobjdump at {path}"
    return str(path)


def _resource_usage(cubin: bytes) -> dict[str, str]:
    """The cubin's resource usage line (``REG``, ``STACK``, ``SHARED``, ``LOCAL``, ...) from cuobjdump."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([_cuobjdump(), "--dump-resource-usage", f.name], capture_output=True, text=True,
                               check=True).stdout
    line = next(ln for ln in usage.splitlines() if "REG:" in ln)
    return dict(item.split(":") for item in line.split() if ":" in item)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"d{s.head_dim}-gqa{s.gqa}-table{int(s.has_table)}-{s.q_dtype}"
                         f"{'-head_major' if s.head_major else ''}")
def test_source_compiles_for_sm90_without_spills(shape):
    from torch.cuda._utils import _nvrtc_compile

    cubin, _ = _nvrtc_compile(hc.source(shape), "higgs_score_p4", "90")
    fields = _resource_usage(cubin)
    line = " ".join(f"{k}:{v}" for k, v in fields.items())
    assert int(fields["LOCAL"]) == 0 and int(fields["STACK"]) == 0, line  # no spills
    # the default row groups (4 up to GQA 4, 2 above) hold 80-156 registers: 3-6 programs per SM at once
    # (6 per SM launched)
    resident = min(65536 // (int(fields["REG"]) * hc.THREADS), 227 * 1024 // int(fields["SHARED"]))
    assert resident >= 3, line


@pytest.mark.parametrize("groups", [2, 4])
def test_both_row_groupings_compile_without_spills(groups):
    """The groupings the sweep times (scripts/gpu/score_cuda_sweep.py) at the served shapes: GQA 4 and 8,
    head-major stores, whichever is the default."""
    from torch.cuda._utils import _nvrtc_compile

    for gqa in (4, 8):
        shape = hc.ScoreShape(128, gqa, True, torch.bfloat16, torch.bfloat16, head_major=True)
        cubin, _ = _nvrtc_compile(hc.source(shape, hc.Tuning(groups=groups)), "higgs_score_p4", "90")
        fields = _resource_usage(cubin)
        assert int(fields["LOCAL"]) == 0 and int(fields["STACK"]) == 0, fields


def test_default_tuning_groups_rows_by_gqa():
    """4 row groups per warp up to GQA 4 and 2 above (the H200 sweeps), and the source and launch use it
    unless told otherwise."""
    assert [hc.default_tuning(gqa).groups for gqa in range(1, 9)] == [4, 4, 4, 4, 2, 2, 2, 2]
    for gqa in (4, 8):
        shape = hc.ScoreShape(128, gqa, True, torch.bfloat16, torch.bfloat16, head_major=True)
        assert hc.source(shape) == hc.source(shape, hc.default_tuning(gqa))
        assert hc.source(shape) != hc.source(shape, hc.Tuning(groups=6 - hc.default_tuning(gqa).groups))


def test_supports_only_the_landmark_grid():
    assert hc.supports(HiggsQuantizer(128, 4, 2), 4, torch.bfloat16)
    assert hc.supports(HiggsQuantizer(64, 4, 2), 8, torch.float32)
    assert not hc.supports(HiggsQuantizer(128, 4, 1), 4, torch.bfloat16)  # 4-bit indices
    assert not hc.supports(HiggsQuantizer(128, 2, 4), 4, torch.bfloat16)  # 2-D grid
    assert not hc.supports(HiggsQuantizer(32, 4, 2), 4, torch.bfloat16)  # head dim
    assert not hc.supports(HiggsQuantizer(128, 4, 2), 16, torch.bfloat16)  # GQA 16


def test_dispatch():
    landmark = HiggsQuantizer(128, 4, 2)
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 16, 256, None)
    assert hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 8, 256, "cuda")
    assert not hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 16, 256, "triton")
    assert not hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 16, 256, hk.SCORE_CONFIGS[0])
    assert not hk._score_on_cuda(landmark, 4, torch.bfloat16, cpu, 16, 256, None)  # the interpreter runs Triton
    assert not hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 4, 256, None)  # codes not 8-byte aligned
    assert not hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 16, 260, None)  # nor their rows
    with pytest.raises(ValueError, match="does not serve"):
        hk._score_on_cuda(landmark, 4, torch.bfloat16, cpu, 16, 256, "cuda")
    with pytest.raises(ValueError, match="one of"):
        hk._score_on_cuda(landmark, 4, torch.bfloat16, cuda, 16, 256, "fast")


def test_launch_rejects_sizes_past_int32():
    shape = hc.ScoreShape(128, 4, False, torch.float32, torch.float16)
    q = torch.zeros(1, 4, 128)
    out = torch.zeros(1, 4, 8)
    with pytest.raises(ValueError, match="fit int32"):
        hc.launch(shape, q, out, out, None, out, out, 2**31, 1, 32, 1, 132)


def test_three_byte_grids_get_the_small_triton_blocks():
    assert hk.score_configs(HiggsQuantizer(128, 2, 3)) == hk.SCORE_CONFIGS_3BYTE_WORDS  # 6-bit indices
    assert hk.score_configs(HiggsQuantizer(128, 1, 3)) == hk.SCORE_CONFIGS_3BYTE_WORDS  # 3-bit indices
    assert hk.score_configs(HiggsQuantizer(128, 2, 4)) == hk.SCORE_CONFIGS
    assert hk.score_configs(HiggsQuantizer(128, 4, 1)) == hk.SCORE_CONFIGS


class _FakeDriver:
    """Records what ``cuLaunchKernel`` receives, reading the argument array as the driver does."""

    def __init__(self, result: int = 0):
        self.result = result
        self.calls = []
        self.tunings = []  # what each launch compiled for (the fake ``_compiled`` of _fake_launch records it)

    def cuLaunchKernel(self, func, gx, gy, gz, bx, by, bz, shared, stream, argv, extra):
        slots = ctypes.cast(argv, ctypes.POINTER(ctypes.c_void_p))
        pointers = [ctypes.c_void_p.from_address(slots[i]).value for i in range(6)]
        ints = [ctypes.c_int.from_address(slots[6 + i]).value for i in range(7)]
        self.calls.append(dict(func=func, grid=(gx, gy, gz), block=(bx, by, bz), shared=shared, stream=stream,
                               pointers=pointers, ints=ints, extra=extra))
        return self.result


class _FakeKernel:
    func = 0xF00D


def _fake_launch(monkeypatch, driver, table, num_kv_heads=2):
    monkeypatch.setattr(hc, "_libcuda", lambda: driver)
    monkeypatch.setattr(hc, "_compiled",
                        lambda shape, tuning, device_index: driver.tunings.append(tuning) or _FakeKernel)
    monkeypatch.setattr(hc, "current_stream_handle", lambda device: 0x5EED)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    q, codes, scales = torch.zeros(3, 8, 128), torch.zeros(700, 64, dtype=torch.uint8), torch.zeros(700, 2)
    words, out = torch.zeros(256, dtype=torch.int64), torch.zeros(3, 8, 704)
    shape = hc.ScoreShape(128, 8 // num_kv_heads, table is not None, torch.float32, torch.float32)
    hc.launch(shape, q, codes, scales, table, words, out, 700, num_kv_heads, 64, 2, 132)
    return q, codes, scales, words, out


@pytest.mark.parametrize("with_table", [False, True])
def test_launch_passes_pointers_then_int32s_on_the_current_stream(monkeypatch, with_table):
    driver = _FakeDriver()
    table = torch.zeros(3, 3, dtype=torch.int64) if with_table else None
    q, codes, scales, words, out = _fake_launch(monkeypatch, driver, table)
    (call,) = driver.calls
    assert driver.tunings == [hc.Tuning(groups=4)]
    assert call["func"] == _FakeKernel.func and call["stream"] == 0x5EED and call["extra"] is None
    programs = min(-(-700 // 256), -(-6 * 132 // (2 * 3)))  # 4 groups of 16 rows in 4 warps; 6 programs per SM
    assert call["grid"] == (programs, 2, 3) and call["block"] == (hc.THREADS, 1, 1) and call["shared"] == 0
    stores = (codes, scales, out) if table is None else (out, out, table)  # a table: placeholders for one store
    expected = [q, *stores, words, out]
    assert call["pointers"] == [t.data_ptr() for t in expected]
    assert call["ints"] == [700, q.stride(0), q.stride(1), 64, 2, out.stride(0), out.stride(1)]


def test_launch_at_gqa_8_runs_two_row_groups(monkeypatch):
    driver = _FakeDriver()
    _fake_launch(monkeypatch, driver, None, num_kv_heads=1)
    assert driver.tunings == [hc.Tuning(groups=2)]
    programs = min(-(-700 // 128), -(-6 * 132 // 3))  # 2 groups of 16 rows in 4 warps; 6 programs per SM
    assert driver.calls[0]["grid"] == (programs, 1, 3)


def test_launch_raises_the_driver_error(monkeypatch):
    with pytest.raises(RuntimeError, match="CUDA error 700"):
        _fake_launch(monkeypatch, _FakeDriver(result=700), None)
