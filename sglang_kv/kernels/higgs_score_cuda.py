"""CUDA score kernel for the 4-D 256-point landmark grid (yakv's default 2-bit keys), compiled at run time.

Same contract and torch reference as the Triton score (:func:`sglang_kv.kernels.higgs.score`, reference
:func:`sglang_kv.kernels.higgs.score_ref`); :func:`sglang_kv.kernels.higgs._launch_score` runs this kernel
where :func:`supports` says so and the Triton kernel elsewhere. Both equal the reference to float32
rounding (they sum in different orders, so their bits may differ).

Why CUDA here: the score looks up one 8-byte codeword per 4 key channels. Triton's ``tl.gather`` serves
those lookups from a 2 KB table at random addresses, so the 16 lanes of each half-warp collide on shared
memory banks (about 3 ways on average), and it re-stores the table before every gather. This kernel
keeps **16 copies** of the table in shared memory (32 KB, stored once per program), copy ``r`` of
codeword ``c`` at word ``16 c + r``: lane ``l`` reads copy ``l % 16``, so a half-warp's 16 lookups hit 16
different bank pairs whatever the codes (no conflicts). The codewords then enter ``mma.sync`` m16n8k16
(float16 in, float32 accumulation) straight from the registers the lookups filled:

- A (16 rows x 16 channels): in k-block ``kb`` lane ``(g, t)`` (``g = lane / 4``, ``t = lane % 4``) holds
  one whole codeword of rows ``g`` and ``g + 8``: slot ``S = t * KB + kb`` (``KB = D / 16`` blocks), its
  components 0, 1 at k = ``2t, 2t+1`` and 2, 3 at k = ``2t+8, 2t+9``. So lane ``t`` of a row reads its
  ``KB`` code bytes ``t * KB ..`` in one load.
- B (16 channels x 8 columns): the rotated queries of the kv head's ``GQA`` query heads, split into
  float16 hi + lo halves (about 2**-22 relative error): columns ``[hi of G4 heads | lo of G4 heads]``,
  ``G4`` = GQA padded to 4 or 8 (one or two n8 tiles), held in registers for the whole program.
- hi + lo columns are added after the k loop (a lane shuffle for ``G4 = 4``), times the scale and
  ``max |q| / D``.

Each program rotates its queries once (fast Walsh-Hadamard transform in shared memory, Sylvester
order, unnormalized, after dividing by ``max |q|`` so they fit float16), then loops over blocks of
``64 x groups`` rows (4 warps x groups of 16 rows: 4 up to GQA 4, 2 above, :func:`default_tuning`),
loading the next block's code bytes and scales while it computes this one. Per row and kv head it reads
``D / 4`` code bytes and one scale and writes ``4 * GQA`` bytes, as the Triton kernel. Stores are
token-major (``[rows, Hkv * D / 4]`` / ``[rows, Hkv]``) or head-major (``ScoreShape.head_major``:
``[Hkv, rows, D / 4]`` / ``[Hkv, rows]``, yakv's landmarks since 2026-12-04), where a program reads its
head's rows back to back.

Compiled per shape class with NVRTC through ``torch.cuda._compile_kernel`` (a private torch API, in
torch >= 2.8; the PTX is JIT-compiled by the driver), once per process. Launched with ``cuLaunchKernel``
through one cached handle on libcuda (:func:`_launch`): torch's launcher opens libcuda with ctypes on
every call, which cost 5.3% of the host time of a decode step in the served Qwen3-30B-A3B shape (py-spy,
0e49edc), where the offloaded attention runs eagerly between graph segments.
"""

from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple

import torch

from sglang_kv.devices import current_stream_handle, device_index
from sglang_kv.quant.higgs import HiggsQuantizer

THREADS = 128  # 4 warps
_INT32_MAX = 2**31 - 1
_KINDS = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

SOURCE = r"""
#define D __D__
#define KB (D / 16)
#define GQA __GQA__
#define G4 __G4__
#define NT (G4 / 4)
#define HAS_TABLE __HAS_TABLE__
#define HEAD_MAJOR __HEAD_MAJOR__
#define Q_KIND __Q_KIND__
#define SCALE_KIND __SCALE_KIND__
#define M __GROUPS__
#define WARPS 4
#define COPIES 16

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;
#if KB == 8
typedef u64 code_t;
#else
typedef u32 code_t;
#endif

__device__ __forceinline__ float f16_to_f32(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f32_to_f16(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }

template <int KIND> __device__ __forceinline__ float load_f32(const void* base, long long i) {
  if (KIND == 0) return ((const float*)base)[i];
  if (KIND == 1) return f16_to_f32(((const u16*)base)[i]);
  return bf16_to_f32(((const u16*)base)[i]);
}

__device__ __forceinline__ u32 pack_f16(float lo, float hi) {
  return (u32)f32_to_f16(lo) | ((u32)f32_to_f16(hi) << 16);
}

__device__ __forceinline__ float lo_part(float v) { return v - f16_to_f32(f32_to_f16(v)); }

__device__ __forceinline__ void mma16816(float* c, const u32* a, const u32* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// code bytes (this lane's KB of its kv head) and scales of rows first_row + 16 m + 8 half; zeros past rows
__device__ __forceinline__ void load_block(code_t (&c)[M][2], float (&s)[M][2], const unsigned char* codes,
                                           const void* scales, long long first_row, int rows, int codes_stride,
                                           int scales_stride, long long head_bytes, long long scale_head) {
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const long long row = first_row + m * 16 + 8 * half;
      const bool in = row < rows;
      c[m][half] = in ? *(const code_t*)(codes + row * codes_stride + head_bytes) : (code_t)0;
      s[m][half] = in ? load_f32<SCALE_KIND>(scales, row * scales_stride + scale_head) : 0.f;
    }
}

extern "C" __global__ void __launch_bounds__(128) higgs_score_p4(
    const void* q, const unsigned char* codes, const void* scales, const long long* table, const u64* grid,
    float* out, int num_rows, int q_stride_b, int q_stride_h, int codes_stride, int scales_stride,
    int out_stride_b, int out_stride_h) {
  __shared__ uint2 words[256 * COPIES];  // copy r of codeword c at 16 c + r
  __shared__ float qs[G4 * D];           // the queries, rotated in place
  __shared__ float warp_max[WARPS];
  const int head = blockIdx.y, request = blockIdx.z, program = blockIdx.x, programs = gridDim.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const unsigned char* codes_b = codes;
  const void* scales_b = scales;
  int rows = num_rows;
  if (HAS_TABLE) {
    codes_b = (const unsigned char*)table[request * 3];
    scales_b = (const void*)table[request * 3 + 1];
    rows = (int)table[request * 3 + 2];
  }
  if ((long long)program * (WARPS * 16 * M) >= rows) return;  // the whole program: no row of its own

  for (int i = tid; i < 256 * COPIES; i += WARPS * 32) {
    u64 w = grid[i / COPIES];
    words[i] = make_uint2((u32)w, (u32)(w >> 32));
  }
  float local_max = 0.f;
  for (int i = tid; i < G4 * D; i += WARPS * 32) {
    const int g = i / D, c = i % D;
    float v = 0.f;
    const long long at = (long long)request * q_stride_b + (long long)(head * GQA + g) * q_stride_h + c;
    if (g < GQA) v = load_f32<Q_KIND>(q, at);
    qs[i] = v;
    local_max = fmaxf(local_max, fabsf(v));
  }
  for (int o = 16; o > 0; o >>= 1) local_max = fmaxf(local_max, __shfl_xor_sync(0xffffffffu, local_max, o));
  if (lane == 0) warp_max[warp] = local_max;
  __syncthreads();
  float q_max = fmaxf(fmaxf(warp_max[0], warp_max[1]), fmaxf(warp_max[2], warp_max[3]));
  q_max = q_max > 0.f ? q_max : 1.f;
  for (int i = tid; i < G4 * D; i += WARPS * 32) qs[i] = qs[i] / q_max;
  __syncthreads();
  for (int h = 1; h < D; h <<= 1) {  // fast Walsh-Hadamard transform of each head's D values
    for (int i = tid; i < G4 * D / 2; i += WARPS * 32) {
      const int g = i / (D / 2), p = i % (D / 2);
      const int a = g * D + (p / h) * 2 * h + p % h;
      const float x = qs[a], y = qs[a + h];
      qs[a] = x + y;
      qs[a + h] = x - y;
    }
    __syncthreads();
  }

  const int g = lane >> 2, t = lane & 3, r16 = lane & 15;
  u32 b[KB][NT][2];  // B fragments: k rows 2t, 2t+1 | 2t+8, 2t+9 of column g of each n8 tile
#pragma unroll
  for (int kb = 0; kb < KB; ++kb) {
    const int slot = t * KB + kb;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int col = nt * 8 + g, hd = col % G4;
      const float* v = qs + hd * D + 4 * slot;
      if (col < G4) {
        b[kb][nt][0] = pack_f16(v[0], v[1]);
        b[kb][nt][1] = pack_f16(v[2], v[3]);
      } else {
        b[kb][nt][0] = pack_f16(lo_part(v[0]), lo_part(v[1]));
        b[kb][nt][1] = pack_f16(lo_part(v[2]), lo_part(v[3]));
      }
    }
  }
  const float factor = q_max / D;
  // this lane's code bytes and this head's scales: within each row (token-major), or after `head` heads of
  // `rows` rows each (head-major)
  const long long head_bytes =
      (HEAD_MAJOR ? (long long)head * rows * codes_stride : (long long)head * (D / 4)) + t * KB;
  const long long scale_head = HEAD_MAJOR ? (long long)head * rows * scales_stride : (long long)head;
  float* out_b = out + (long long)request * out_stride_b + (long long)head * GQA * out_stride_h;

  // software pipelined: the next block's code bytes and scales load while this block computes
  const long long step = (long long)programs * (WARPS * 16 * M);
  code_t c[M][2];
  float s[M][2];
  load_block(c, s, codes_b, scales_b, (long long)program * (WARPS * 16 * M) + warp * 16 * M + g, rows, codes_stride,
             scales_stride, head_bytes, scale_head);
  for (long long base = (long long)program * (WARPS * 16 * M); base < rows; base += step) {
    const long long warp_base = base + warp * 16 * M;
    code_t next_c[M][2];
    float next_s[M][2];
    load_block(next_c, next_s, codes_b, scales_b, warp_base + step + g, rows, codes_stride, scales_stride, head_bytes,
               scale_head);
    float acc[M][NT][4];
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[m][nt][i] = 0.f;
#pragma unroll
    for (int kb = 0; kb < KB; ++kb)
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint2 w0 = words[(u32)((c[m][0] >> (8 * kb)) & 255) * COPIES + r16];
        const uint2 w1 = words[(u32)((c[m][1] >> (8 * kb)) & 255) * COPIES + r16];
        const u32 a[4] = {w0.x, w1.x, w0.y, w1.y};
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(acc[m][nt], a, b[kb][nt]);
      }
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float v[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if (NT == 1) v[i] = acc[m][0][i] + __shfl_xor_sync(0xffffffffu, acc[m][0][i], 2);  // + the lo columns
        else v[i] = acc[m][0][i] + acc[m][NT - 1][i];
      }
      if (NT == 1 && t >= 2) continue;  // lanes t and t ^ 2 hold the same sums
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const long long row = warp_base + m * 16 + g + 8 * half;
        if (row >= rows) continue;
        const float scale = s[m][half] * factor;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int hd = 2 * t + j;
          if (hd < GQA) out_b[(long long)hd * out_stride_h + row] = v[2 * half + j] * scale;
        }
      }
    }
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        c[m][half] = next_c[m][half];
        s[m][half] = next_s[m][half];
      }
  }
}
"""


class ScoreShape(NamedTuple):
    """What one compiled kernel is specialized for."""

    head_dim: int  # D: 64 or 128
    gqa: int  # query heads per kv head, 1..8
    has_table: bool  # batched launch: per-request (codes, scales, rows) from an int64 table [B, 3]
    q_dtype: torch.dtype
    scale_dtype: torch.dtype
    head_major: bool = False  # stores [Hkv, rows, D / 4] / [Hkv, rows] instead of [rows, Hkv * D / 4] / [rows, Hkv]


class Tuning(NamedTuple):
    """Launch choices that do not change any result bit (each row's sums run in the same order).

    Tried and dropped (e3a928b, 32 x 128K head-major stores on the H200,
    ``results/score_cuda_sweep_tunings{,_gqa8}_h200_e3a928b.json``): loading two blocks ahead instead of
    one (0.99 against 0.77 ms at GQA 4, 0.69 against 0.59 at GQA 8 with 4 groups) and reading the stores
    with ``ld.global.nc`` (within 3% either way)."""

    # groups of 16 rows per warp and loop step (rows per program step: 4 warps x 16 x groups); the default
    # depends on GQA (:func:`default_tuning`)
    groups: int = 4
    # programs launched per SM and (request, kv head) pair's share of them (36-38 KB of shared memory each; 3-6
    # fit at once by registers, so 6 runs in one or two waves)
    programs_per_sm: int = 6

    @property
    def rows_per_step(self) -> int:
        """Rows a program scores per loop step."""
        return THREADS // 32 * 16 * self.groups


def default_tuning(gqa: int) -> Tuning:
    """The launch choices served for ``gqa`` query heads per kv head, from the sweeps on the H200
    (scripts/gpu/score_cuda_sweep.py, 32 x 128K head-major stores, e3a928b): 4 row groups up to GQA 4
    (0.766 ms against 0.938 for 2), 2 above, where two n8 tiles double the accumulators (GQA 8: 0.515
    against 0.595 ms for 4; 4 groups were within 3% on token-major stores, 1689b08)."""
    return Tuning(groups=4 if gqa <= 4 else 2)


def supports(quantizer: HiggsQuantizer, gqa: int, q_dtype: torch.dtype) -> bool:
    """Whether the CUDA kernel serves this score: the 4-D 256-point grid (8-bit indices), per-head groups
    of 64 or 128 channels, at most 8 query heads per kv head, float32 / float16 / bfloat16 queries and
    scales."""
    return (quantizer.p == 4 and quantizer.index_bits == 8 and quantizer.group_size in (64, 128)
            and 1 <= gqa <= 8 and quantizer.scale_dtype in _KINDS and q_dtype in _KINDS)


def source(shape: ScoreShape, tuning: Tuning | None = None) -> str:
    """The kernel's CUDA source for ``shape`` (launch choices: ``default_tuning(shape.gqa)`` unless given)."""
    tuning = tuning or default_tuning(shape.gqa)
    subs = {"__GROUPS__": tuning.groups, "__D__": shape.head_dim, "__GQA__": shape.gqa,
            "__G4__": 4 if shape.gqa <= 4 else 8, "__HAS_TABLE__": int(shape.has_table),
            "__HEAD_MAJOR__": int(shape.head_major),
            "__Q_KIND__": _KINDS[shape.q_dtype], "__SCALE_KIND__": _KINDS[shape.scale_dtype]}
    text = SOURCE
    for key, value in subs.items():
        text = text.replace(key, str(value))
    return text


@functools.lru_cache(maxsize=None)
def _compiled(shape: ScoreShape, tuning: Tuning, cuda_index: int):
    with torch.cuda.device(cuda_index):
        return torch.cuda._compile_kernel(source(shape, tuning), "higgs_score_p4")


@functools.lru_cache(maxsize=1)
def _libcuda() -> ctypes.CDLL:
    """The CUDA driver library, opened once, with ``cuLaunchKernel``'s signature declared."""
    lib = ctypes.CDLL("libcuda.so.1")
    lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
    lib.cuLaunchKernel.restype = ctypes.c_int
    return lib


def _launch(func: ctypes.c_void_p, device: torch.device, grid: tuple[int, int, int], pointers: list[int],
            ints: tuple[int, ...]) -> None:
    """``cuLaunchKernel(func)`` on torch's current stream of ``device`` with ``THREADS`` threads: the
    kernel's pointer arguments, then its int32 arguments, in the order of its signature."""
    values = [ctypes.c_void_p(p) for p in pointers] + [ctypes.c_int(i) for i in ints]
    argv = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
    result = _libcuda().cuLaunchKernel(func, *grid, THREADS, 1, 1, 0, current_stream_handle(device), argv, None)
    if result != 0:
        raise RuntimeError(f"CUDA score kernel: cuLaunchKernel failed with CUDA error {result}")


def code_alignment(head_dim: int) -> int:
    """The alignment each row's code bytes need (every code address and row stride a multiple of it):
    each lane reads ``head_dim / 16`` bytes in one load."""
    return head_dim // 16


def program_count(num_rows: int, num_pairs: int, num_sms: int, tuning: Tuning) -> int:
    """Programs per (request, kv head) pair: ``tuning.programs_per_sm`` per SM shared among the pairs, at
    most one per ``rows_per_step`` rows."""
    return max(1, min(-(-num_rows // tuning.rows_per_step), -(-tuning.programs_per_sm * num_sms // num_pairs)))


def launch(shape: ScoreShape, q3: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor,
           table: torch.Tensor | None, words: torch.Tensor, out: torch.Tensor, num_rows: int, num_kv_heads: int,
           codes_stride: int, scales_stride: int, num_sms: int, tuning: Tuning | None = None) -> None:
    """Launch on ``q3 [B, Hq, D]`` (last dim contiguous) into float32 ``out [B, Hq, >= rows]`` (last dim
    contiguous): one store ``codes [rows, Hkv * D / 4]`` / ``scales [rows, Hkv]`` or, with ``table``
    (int64 ``[B, 3]``: codes address, scales address, rows), the stores it lists (then ``codes`` /
    ``scales`` are only placeholders); ``words``: the grid's packed int64 words ``[256]``. Arguments
    are checked by the caller; strides must fit int32. ``tuning``: ``default_tuning(shape.gqa)`` unless
    given."""
    tuning = tuning or default_tuning(shape.gqa)
    num_requests = q3.shape[0]
    ints = (num_rows, q3.stride(0), q3.stride(1), codes_stride, scales_stride, out.stride(0), out.stride(1))
    if max(ints) > _INT32_MAX:
        raise ValueError(f"CUDA score kernel: sizes and strides must fit int32, got {ints}")
    programs = program_count(num_rows, num_kv_heads * num_requests, num_sms, tuning)
    placeholder = out  # a device pointer the kernel never reads when it has a table
    kernel = _compiled(shape, tuning, device_index(q3.device))
    tensors = (q3, codes if table is None else placeholder, scales if table is None else placeholder,
               table if table is not None else placeholder, words, out)
    _launch(kernel.func, q3.device, (programs, num_kv_heads, num_requests), [t.data_ptr() for t in tensors], ints)
