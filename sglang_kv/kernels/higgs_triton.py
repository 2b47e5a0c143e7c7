"""Triton jit kernels for HIGGS: quantize, dequantize-gather, per-head score.

Host wrappers, shapes and torch references live in :mod:`sglang_kv.kernels.higgs`; the packing
format and math are documented in :mod:`sglang_kv.quant.higgs`.

The Walsh-Hadamard transform of a group of ``N`` values runs on tensor cores as float16 dots with
the exact +-1 matrix (built in registers) and float32 accumulation: directly (``[T, N] @ H_N``) for
``N <= 128``, otherwise as ``H_A (X) H_B`` (``N = A * B``, both >= 16) on the ``[A, B]`` view of each
group. Float32 operands (quantize inputs, the Kronecker intermediate, rotated queries) are split into
float16 ``hi + lo`` (two dots, about 2**-22 relative error); grid codewords are float16-exact, so a
dot over them needs one pass. The gather and score kernels hold the grid as one packed word per point
and look codewords up with ``tl.gather`` (shared memory, :func:`_codewords`); each codeword
component then enters its own dot against the matching rows of the Hadamard matrix
(:func:`_transform_codewords`) or of the rotated query (:func:`_rotated_query_component`), so
components are never interleaved. (A score with the components in channel order and the query's hi
and lo side by side in one dot compiled to fewer instructions but ran no faster on the H200, 2.28 vs
2.25 ms, and hit an illegal address at GQA 3; results/score_ablation_h200.json.)
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _sign(v):
    """``(-1)**popcount(v)`` for ``0 <= v < 2**16``, as int32."""
    v = v ^ (v >> 8)
    v = v ^ (v >> 4)
    v = v ^ (v >> 2)
    v = v ^ (v >> 1)
    return 1 - 2 * (v & 1)


@triton.jit
def _hadamard_matrix(N: tl.constexpr):
    """``H_N [N, N]`` in float16: ``(-1)**popcount(i & j)`` (N <= 4096)."""
    i = tl.arange(0, N)
    return _sign(i[:, None] & i[None, :]).to(tl.float16)


@triton.jit
def _hadamard_rows_of(M: tl.constexpr, J: tl.constexpr, J_PAD: tl.constexpr, P: tl.constexpr, c: tl.constexpr):
    """float16 ``[J_PAD, M]``: row ``j`` is row ``j * P + c`` of ``H_M`` for ``j < J``, zero after.

    ``comp_c @ _hadamard_rows_of(.., c)`` summed over ``c`` is ``X @ H_M`` for rows ``X`` whose
    value ``j * P + c`` is component ``c`` of codeword ``j`` (``comp_c [R, J_PAD]``).
    """
    j = tl.arange(0, J_PAD)
    signs = _sign((j * P + c)[:, None] & tl.arange(0, M)[None, :])
    return tl.where((j < J)[:, None], signs, 0).to(tl.float16)


@triton.jit
def _dot_split(x, h):
    """``x @ h`` for float32 ``x`` and float16-exact ``h``, float32 accumulation: ``x`` split into
    float16 hi + lo, two dots (one dot of both, ``[hi | lo] @ [h; h]``, compiled to more shared-memory
    stores and registers for the gather on sm_90)."""
    hi = x.to(tl.float16)
    lo = (x - hi.to(tl.float32)).to(tl.float16)
    return tl.dot(hi, h) + tl.dot(lo, h)


@triton.jit
def _hadamard_rows(x, h_a, h_b, T: tl.constexpr, N: tl.constexpr, A: tl.constexpr, B: tl.constexpr):
    """Unnormalized Hadamard transform of each row of float32 ``x [T, N]`` -> float32 ``[T, N]``.

    ``A == 1``: one dot with ``h_b = H_N``. Otherwise ``h_a = H_A``, ``h_b = H_B`` and ``N = A * B``:
    row ``x`` seen as ``X [A, B]`` becomes ``H_A X H_B``.
    """
    if A == 1:
        return _dot_split(x, h_b)
    else:
        y = _dot_split(tl.reshape(x, (T * A, B)), h_b)  # (T*A, B): mixed along b
        return _hadamard_finish(y, h_a, T, N, A, B)


@triton.jit
def _hadamard_finish(y, h_a, T: tl.constexpr, N: tl.constexpr, A: tl.constexpr, B: tl.constexpr):
    """``H_A X H_B`` per row from ``y = X H_B`` (float32 ``[T * A, B]``) -> float32 ``[T, N]``.

    ``y`` is split into float16 hi + lo: rounding it to float16 alone costs up to ~1% of the row
    RMS on inputs with outlier channels (their energy gathers in few entries).
    """
    y = tl.reshape(tl.permute(tl.reshape(y, (T, A, B)), (0, 2, 1)), (T * B, A))
    z = _dot_split(y, h_a)  # (T*B, A): mixed along a
    return tl.reshape(tl.permute(tl.reshape(z, (T, B, A)), (0, 2, 1)), (T, N))


@triton.jit
def _load_index_rows(row_ptrs, mask, A: tl.constexpr, J: tl.constexpr, J_PAD: tl.constexpr,
                     IDX_BITS: tl.constexpr, K: tl.constexpr, U: tl.constexpr, T: tl.constexpr):
    """The indices of one group of ``T`` rows as int32 ``[T * A, J_PAD]``: row ``t * A + a`` holds
    indices ``a * J .. a * J + J - 1`` of row ``t``'s group, then zeros up to ``J_PAD``.

    ``row_ptrs [T]``: uint8 pointers to each row's group; the group holds ``A * J / K`` words of
    ``U`` bytes, each word ``K`` little-endian indices of ``IDX_BITS`` bits (``K`` divides ``J``).
    """
    WJ: tl.constexpr = J // K
    WP: tl.constexpr = J_PAD // K
    offs_w = tl.arange(0, WP)
    word_offs = (tl.arange(0, A)[:, None] * WJ + offs_w[None, :]) * U  # (A, WP) byte offsets
    load_mask = mask[:, None, None] & (offs_w < WJ)[None, None, :]
    word = tl.zeros([T, A, WP], dtype=tl.int32)
    for u in tl.static_range(U):
        byte = tl.load(row_ptrs[:, None, None] + (word_offs + u)[None, :, :], mask=load_mask, other=0)
        word = word | (byte.to(tl.int32) << (8 * u))
    if K == 1:
        idx = word
    else:
        shifts = tl.arange(0, K) * IDX_BITS
        idx = (word[:, :, :, None] >> shifts[None, None, None, :]) & ((1 << IDX_BITS) - 1)
    return tl.reshape(idx, (T * A, J_PAD))


@triton.jit
def _codewords(grid_words, idx, R: tl.constexpr, J: tl.constexpr):
    """The packed codewords of ``idx [R, J]`` -> ``[R, J]`` (``grid_words``' type).

    ``grid_words [num_points]``: the grid held by the program, one word per point with its ``P``
    float16 components packed little-endian (float16 itself for ``P == 1``, int32 for 2, int64 for
    4; :func:`sglang_kv.kernels.higgs.grid_words`). ``tl.gather`` reads it from shared memory, one
    load per index: random reads of a small table from global memory go through L1 several times
    slower (one pass per cache line touched).
    """
    return tl.reshape(tl.gather(grid_words, tl.reshape(idx, (R * J,)), 0), (R, J))


@triton.jit
def _component(words, c: tl.constexpr, P: tl.constexpr):
    """Component ``c`` of packed codewords ``words`` as float16 (bits ``16c .. 16c + 15``)."""
    if P == 1:
        return words
    else:
        return ((words >> (16 * c)) & 0xFFFF).to(tl.int16).to(tl.float16, bitcast=True)


@triton.jit
def _transform_codewords(words, M: tl.constexpr, J: tl.constexpr, J_PAD: tl.constexpr, P: tl.constexpr):
    """``X @ H_M`` for the rows ``X [R, M]`` spelled by codewords ``words [R, J_PAD]`` (``M = J * P``
    values, padding columns ignored) -> float32 ``[R, M]``: one tensor-core dot per component, so the
    codewords never need interleaving into ``X``."""
    acc = tl.dot(_component(words, 0, P), _hadamard_rows_of(M, J, J_PAD, P, 0))
    for c in tl.static_range(1, P):
        acc = tl.dot(_component(words, c, P), _hadamard_rows_of(M, J, J_PAD, P, c), acc)
    return acc


@triton.jit
def _store_indices(row_ptrs, mask, idx, W: tl.constexpr, IDX_BITS: tl.constexpr, K: tl.constexpr,
                   U: tl.constexpr, T: tl.constexpr):
    """Pack ``idx [T, W * K]`` (int32) into ``W`` words of ``U`` bytes per row (inverse of _load_index_rows)."""
    if K == 1:
        word = idx
    else:
        shifts = tl.arange(0, K) * IDX_BITS
        word = tl.sum(tl.reshape(idx, (T, W, K)) << shifts[None, None, :], axis=2)  # disjoint bits
    offs_w = tl.arange(0, W)
    for u in tl.static_range(U):
        byte = ((word >> (8 * u)) & 0xFF).to(tl.uint8)
        tl.store(row_ptrs[:, None] + (offs_w * U + u)[None, :], byte, mask=mask[:, None])


@triton.jit
def higgs_quantize_kernel(
    x_ptr, grid_ptr, codes_ptr, scales_ptr,
    num_rows, x_stride, codes_stride, scales_stride,
    N: tl.constexpr, A: tl.constexpr, B: tl.constexpr, P: tl.constexpr, NUM_POINTS: tl.constexpr,
    IDX_BITS: tl.constexpr, K: tl.constexpr, U: tl.constexpr, BLOCK_T: tl.constexpr,
):
    """Quantize group ``program_id(1)`` of rows ``[program_id(0) * BLOCK_T, ...)``.

    x: ``[num_rows, C]`` (row stride ``x_stride``), grid: float32 ``[NUM_POINTS, P]``, codes: uint8
    ``[num_rows, C * bits / 8]``, scales: ``[num_rows, C / N]``. Reads ``C * x.itemsize`` and writes
    ``C * bits / 8 + num_groups * scale.itemsize`` bytes per row.
    """
    group = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    mask = rows < num_rows
    rows = rows.to(tl.int64)
    offs_n = tl.arange(0, N)
    x = tl.load(x_ptr + rows[:, None] * x_stride + group * N + offs_n[None, :], mask=mask[:, None], other=0.0)
    x = x.to(tl.float32)
    scale = tl.sqrt_rn(tl.sum(x * x, axis=1)).to(scales_ptr.dtype.element_ty)
    tl.store(scales_ptr + rows * scales_stride + group, scale, mask=mask)
    scale = scale.to(tl.float32)
    positive = scale > 0
    inv_scale = tl.where(positive, tl.div_rn(tl.full([BLOCK_T], 1.0, tl.float32), tl.where(positive, scale, 1.0)), 0.0)
    if A == 1:
        h_a = _hadamard_matrix(16)  # unused placeholder of a valid shape
        h_b = _hadamard_matrix(N)
    else:
        h_a = _hadamard_matrix(A)
        h_b = _hadamard_matrix(B)
    y = _hadamard_rows(x * inv_scale[:, None], h_a, h_b, BLOCK_T, N, A, B)  # (T, N) ~N(0,1)

    J: tl.constexpr = N // P
    best_dist = tl.full([BLOCK_T, J], float("inf"), tl.float32)
    best_idx = tl.zeros([BLOCK_T, J], dtype=tl.int32)
    if P == 1:
        for c in range(NUM_POINTS):
            diff = y - tl.load(grid_ptr + c)
            dist = diff * diff
            better = dist < best_dist  # strict: first point wins ties, as torch.argmin
            best_dist = tl.where(better, dist, best_dist)
            best_idx = tl.where(better, c, best_idx)
    else:
        y3 = tl.reshape(y, (BLOCK_T, J, P))
        comp = tl.arange(0, P)
        for c in range(NUM_POINTS):
            diff = y3 - tl.load(grid_ptr + c * P + comp)[None, None, :]
            dist = tl.sum(diff * diff, axis=2)
            better = dist < best_dist
            best_dist = tl.where(better, dist, best_dist)
            best_idx = tl.where(better, c, best_idx)
    W: tl.constexpr = J // K
    row_ptrs = codes_ptr + rows * codes_stride + group * (W * U)
    _store_indices(row_ptrs, mask, best_idx, W, IDX_BITS, K, U, BLOCK_T)


@triton.jit
def higgs_dequantize_gather_kernel(
    codes_ptr, scales_ptr, index_ptr, table_ptr, request_ptr, grid_ptr, out_ptr,
    num_out, codes_stride, scales_stride, out_stride, group_stride,
    N: tl.constexpr, A: tl.constexpr, B: tl.constexpr, P: tl.constexpr,
    NUM_POINTS: tl.constexpr, J_PAD: tl.constexpr, IDX_BITS: tl.constexpr, K: tl.constexpr, U: tl.constexpr,
    HAS_TABLE: tl.constexpr, CODES_ALIGN: tl.constexpr, BLOCK_T: tl.constexpr, ROW_GROUPS: tl.constexpr,
):
    """``out[i, group] = dequantize(codes[index[i], group], scales[index[i], group])``.

    Programs ``(program_id(0), program_id(1))`` loop over blocks of ``BLOCK_T`` output rows with stride
    ``num_programs(0)``; each reads ``ROW_GROUPS`` adjacent groups of its rows (``1`` or ``2``, groups
    ``program_id(1) * ROW_GROUPS ..``) in one load per row, so a row of two groups (a K|V record) is
    read as one contiguous span. codes: uint8 ``[*, C * bits / 8]`` (device or pinned host memory,
    read directly), scales ``[*, C / N]``, index int ``[num_out]``, grid: packed words ``[NUM_POINTS]``
    (:func:`_codewords`). Group ``g`` of output row ``i`` starts at ``out + i * out_stride + g *
    group_stride``: ``out [num_out, C]`` with ``group_stride = N``, or group-major ``[num_groups,
    num_out, N]`` with ``group_stride = num_out * N``. ``HAS_TABLE``: output row ``i`` reads the store of
    request ``request[i]`` (int32 ``[num_out]``), whose codes and scales addresses are row
    ``request[i]`` of the int64 ``table [B, 2]`` (every store with the same row strides; every codes
    address a multiple of ``CODES_ALIGN``); ``codes_ptr`` / ``scales_ptr`` only give the element
    types. ``J_PAD``: codewords per row of ``X`` (``B / P``) padded to the dot's minimum of 16. Per
    output row: reads ``C * bits / 8 + num_groups * scale.itemsize`` plus the index, writes
    ``C * out.itemsize`` bytes; a row with a negative index reads nothing and is written as zeros.
    """
    G: tl.constexpr = ROW_GROUPS
    group = tl.program_id(1) * G  # the first of the program's groups
    offs_g = tl.arange(0, G)
    h_a = _hadamard_matrix(16 if A == 1 else A)  # unused when A == 1
    W: tl.constexpr = N // P // K
    offs_n = tl.arange(0, N)
    grid_words = tl.load(grid_ptr + tl.arange(0, NUM_POINTS))
    for block in range(tl.program_id(0), tl.cdiv(num_out, BLOCK_T), tl.num_programs(0)):
        offs = block * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = offs < num_out
        rows = tl.load(index_ptr + offs, mask=mask, other=0).to(tl.int64)
        read = mask & (rows >= 0)  # a negative index reads nothing: its output row is zeros
        if HAS_TABLE:
            request = tl.load(request_ptr + offs, mask=read, other=0).to(tl.int64)
            codes_base = tl.multiple_of(
                tl.load(table_ptr + request * 2, mask=read, other=0).to(tl.pointer_type(tl.uint8)), [CODES_ALIGN])
            scales_base = tl.load(table_ptr + request * 2 + 1, mask=read, other=0).to(
                tl.pointer_type(scales_ptr.dtype.element_ty))
        else:
            codes_base = codes_ptr
            scales_base = scales_ptr
        # each row's G groups as G * A rows of B values (B / P codewords), adjacent in memory: one
        # load; x = H_A X H_B per group
        idx = _load_index_rows(codes_base + rows * codes_stride + group * (W * U), read, G * A, B // P, J_PAD,
                               IDX_BITS, K, U, BLOCK_T)  # (T*G*A, J_PAD)
        y = _transform_codewords(_codewords(grid_words, idx, BLOCK_T * G * A, J_PAD), B, B // P, J_PAD, P)  # X H_B
        if A == 1:
            x = y
        else:
            x = _hadamard_finish(y, h_a, BLOCK_T * G, N, A, B)  # (T*G, N)
        scale_ptrs = (scales_base + rows * scales_stride + group)[:, None] + offs_g[None, :]
        scale = tl.load(scale_ptrs, mask=read[:, None], other=0.0).to(tl.float32)  # (T, G): 0 for skipped rows
        x = tl.reshape(x, (BLOCK_T, G, N)) * (scale / N)[:, :, None]
        out_ptrs = (out_ptr + offs.to(tl.int64)[:, None, None] * out_stride
                    + (group + offs_g).to(tl.int64)[None, :, None] * group_stride + offs_n[None, None, :])
        tl.store(out_ptrs, x.to(out_ptr.dtype.element_ty), mask=mask[:, None, None])


@triton.jit
def _request_rows(codes_ptr, scales_ptr, table_ptr, num_rows, request, HAS_TABLE: tl.constexpr,
                  CODES_ALIGN: tl.constexpr):
    """``(codes, scales, rows)`` of request ``request``: from row ``request`` of the int64 table
    ``[B, 3]`` (codes address, scales address, rows) when ``HAS_TABLE``, else the arguments.
    ``CODES_ALIGN``: every codes address in the table is a multiple of it (lets loads vectorize)."""
    if HAS_TABLE:
        codes_base = tl.multiple_of(tl.load(table_ptr + request * 3).to(tl.pointer_type(tl.uint8)), CODES_ALIGN)
        scales_base = tl.load(table_ptr + request * 3 + 1).to(tl.pointer_type(scales_ptr.dtype.element_ty))
        rows = tl.load(table_ptr + request * 3 + 2).to(tl.int32)
        return codes_base, scales_base, rows
    else:
        return codes_ptr, scales_ptr, num_rows


@triton.jit
def _group_queries(q_ptr, request, head, q_stride_b, q_stride_h, N: tl.constexpr, GQA: tl.constexpr,
                   GQA_PAD: tl.constexpr):
    """The ``GQA`` query heads of kv head ``head`` of request ``request`` as float32 columns
    ``q_t [N, GQA_PAD]`` (zero past ``GQA``) divided by ``max |q|``, so any magnitude fits float16, and
    ``max |q| / N``: the factor that undoes that and the unnormalized transform."""
    offs_n = tl.arange(0, N)
    offs_g = tl.arange(0, GQA_PAD)
    q = tl.load(q_ptr + request * q_stride_b + (head * GQA + offs_g)[:, None] * q_stride_h + offs_n[None, :],
                mask=(offs_g < GQA)[:, None], other=0.0).to(tl.float32)
    q_max = tl.max(tl.max(tl.abs(q), axis=1), axis=0)
    q_max = tl.where(q_max > 0, q_max, 1.0)
    return tl.trans(q / q_max), q_max / N


@triton.jit
def _rotated_query_component(q_t, N: tl.constexpr, J: tl.constexpr, J_PAD: tl.constexpr, P: tl.constexpr,
                             c: tl.constexpr):
    """Rotated channels ``j * P + c`` (``j < J``, zero rows up to ``J_PAD``) of the queries
    ``q_t [N, G]`` (float32 columns): ``(H_N q)[j * P + c]`` as float16 hi + lo ``[J_PAD, G]`` each."""
    h = _hadamard_rows_of(N, J, J_PAD, P, c)  # (J_PAD, N)
    q_hi = q_t.to(tl.float16)
    q_lo = (q_t - q_hi.to(tl.float32)).to(tl.float16)
    r = tl.dot(h, q_lo, tl.dot(h, q_hi))
    r_hi = r.to(tl.float16)
    return r_hi, (r - r_hi.to(tl.float32)).to(tl.float16)


@triton.jit
def higgs_score_kernel(
    q_ptr, codes_ptr, scales_ptr, table_ptr, grid_ptr, out_ptr,
    num_rows, q_stride_b, q_stride_h, codes_stride, scales_stride, out_stride_b, out_stride_h,
    N: tl.constexpr, GQA: tl.constexpr, GQA_PAD: tl.constexpr, P: tl.constexpr, NUM_POINTS: tl.constexpr,
    J_PAD: tl.constexpr, IDX_BITS: tl.constexpr, K: tl.constexpr, U: tl.constexpr,
    HAS_TABLE: tl.constexpr, CODES_ALIGN: tl.constexpr, HEAD_MAJOR: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Scores of the ``GQA`` query heads of kv head ``program_id(1)`` of request ``program_id(2)``.

    q: ``[B, Hq, N]`` (strides ``q_stride_b``, ``q_stride_h``; unrotated); codes: uint8
    ``[rows, Hkv * N * bits / 8]`` (per-head groups of ``N`` channels, row stride ``codes_stride``),
    scales ``[rows, Hkv]`` (row stride ``scales_stride``); with ``HEAD_MAJOR`` codes ``[Hkv, rows, N *
    bits / 8]`` and scales ``[Hkv, rows]``, each head's rows back to back (row strides
    ``codes_stride`` / ``scales_stride`` within a head, heads ``rows`` rows apart); with ``HAS_TABLE``
    each request has its own codes, scales and row count (``table [B, 3]``, see :func:`_request_rows`),
    else one request owns ``num_rows`` rows of ``codes_ptr``. grid: packed words ``[NUM_POINTS]``
    (:func:`_codewords`); out float32 ``[B, Hq, >= rows]``:
    ``out[b, h * GQA + i, r] = q[b, h * GQA + i] . dequantize(codes_b[r, h], scales_b[r, h])``.

    Each program rotates its queries once (``H_N q / N``, scaled by ``max |q|`` so any magnitude fits
    float16), kept per codeword component ``c`` (rotated channels ``j * P + c``, ``J_PAD`` rows, split
    into float16 hi + lo). It then loops over blocks of ``BLOCK_N`` rows: codeword lookup, and per
    component a tensor-core dot of the codewords' component (float16-exact) with the query's, times
    the scale. Per row and kv head: reads ``N * bits / 8 + scale.itemsize`` bytes, writes
    ``4 * GQA`` bytes.
    """
    head = tl.program_id(1)
    request = tl.program_id(2)
    codes_base, scales_base, row_end = _request_rows(codes_ptr, scales_ptr, table_ptr, num_rows, request,
                                                      HAS_TABLE, CODES_ALIGN)

    q_t, factor = _group_queries(q_ptr, request, head, q_stride_b, q_stride_h, N, GQA, GQA_PAD)
    J: tl.constexpr = N // P
    q0_hi, q0_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 0)  # (J_PAD, GQA_PAD) each
    q1_hi, q1_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 1 % P)  # components 1..3 unused for small P
    q2_hi, q2_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 2 % P)
    q3_hi, q3_lo = _rotated_query_component(q_t, N, J, J_PAD, P, 3 % P)
    offs_g = tl.arange(0, GQA_PAD)
    out_heads = (head * GQA + offs_g).to(tl.int64)

    out_base = out_ptr + request.to(tl.int64) * out_stride_b
    W: tl.constexpr = J // K
    grid_words = tl.load(grid_ptr + tl.arange(0, NUM_POINTS))
    if HEAD_MAJOR:
        code_head = head.to(tl.int64) * row_end * codes_stride
        scale_head = head.to(tl.int64) * row_end * scales_stride
    else:
        code_head = head * (W * U)
        scale_head = head
    for block in range(tl.program_id(0), tl.cdiv(row_end, BLOCK_N), tl.num_programs(0)):
        rows = block * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = rows < row_end
        rows64 = rows.to(tl.int64)
        idx = _load_index_rows(codes_base + rows64 * codes_stride + code_head, mask, 1, J, J_PAD,
                               IDX_BITS, K, U, BLOCK_N)
        words = _codewords(grid_words, idx, BLOCK_N, J_PAD)  # (BLOCK_N, J_PAD), rotated domain
        keys = _component(words, 0, P)
        scores = tl.dot(keys, q0_lo, tl.dot(keys, q0_hi))  # (BLOCK_N, GQA_PAD)
        if P > 1:
            keys = _component(words, 1, P)
            scores = tl.dot(keys, q1_lo, tl.dot(keys, q1_hi, scores))
        if P > 2:
            keys = _component(words, 2, P)
            scores = tl.dot(keys, q2_lo, tl.dot(keys, q2_hi, scores))
            keys = _component(words, 3, P)
            scores = tl.dot(keys, q3_lo, tl.dot(keys, q3_hi, scores))
        scale = tl.load(scales_base + rows64 * scales_stride + scale_head, mask=mask, other=0.0).to(tl.float32) * factor
        scores = scores * scale[:, None]
        out_ptrs = out_base + out_heads[None, :] * out_stride_h + rows64[:, None]
        tl.store(out_ptrs, scores, mask=mask[:, None] & (offs_g < GQA)[None, :])
