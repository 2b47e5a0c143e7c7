"""HIGGS quantizer (torch reference path): quantize, dequantize, score without dequantizing.

A vector ``x [C]`` is cut into ``C / group_size`` groups of ``n = group_size`` channels. Per group:

1. ``s = ||x_g||_2`` is the group's scale, stored in ``scale_dtype`` (``s_r`` is that rounded value);
2. ``y = H_n (x_g / s_r)`` with the unnormalized Walsh-Hadamard transform (``||y||**2 = n``, each
   coordinate close to N(0, 1)); a zero group (``s_r = 0``) gives ``y = 0``;
3. ``y`` is split into ``n / p`` sub-vectors of ``p`` values, each replaced by the index of its nearest
   point of the Gaussian grid ``G [2**(p*bits), p]`` (:mod:`sglang_kv.quant.grids`).

Dequantize: ``x_g' = (s_r / n) H_n y'`` with ``y'`` the concatenated codewords (``H_n H_n = n I``), so a
zero scale gives exactly zero. Score: ``q . x' = sum_g (s_r,g / n) (H_n q_g) . y'_g``: rotate the query
once per group, then only codewords are looked up (no inverse transform of the keys).

Packing (storage is exactly ``bits / 8`` bytes per value): each sub-vector index has
``index_bits = p * bits`` bits. The indices of a vector, in channel order, form one little-endian bit
stream: index ``j`` occupies bits ``[j * index_bits, (j + 1) * index_bits)``, and stream bit ``k`` is bit
``k % 8`` of byte ``k // 8``. With ``group_size >= 16`` every group starts on a byte boundary, so group
``g`` owns bytes ``[g * group_size * bits / 8, (g + 1) * group_size * bits / 8)`` of the row. Indices of
2, 4 or 8 bits never straddle bytes; 3- and 6-bit indices come in words of 3 bytes (8 or 4 indices).

Scales in float16 hold group norms up to 65504; use ``scale_dtype=torch.bfloat16`` or ``float32`` for
inputs whose group norms can be larger (an overflowing scale dequantizes to NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from sglang_kv.quant.grids import SUPPORTED_GRIDS, load_grid, nearest_point
from sglang_kv.quant.hadamard import hadamard_transform

MIN_GROUP_SIZE = 16  # byte-aligned groups for every grid, and the smallest tensor-core tile
MAX_GROUP_SIZE = 4096
INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SCALE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_SCORE_CHUNK_VALUES = 1 << 22  # codeword values materialized at once by score()


class HiggsCodes(NamedTuple):
    codes: torch.Tensor  # uint8 [..., C * bits // 8]
    scales: torch.Tensor  # scale_dtype [..., C // group_size]


class PackingLayout(NamedTuple):
    """How indices are packed: ``indices_per_word`` indices of ``index_bits`` bits fill
    ``bytes_per_word`` bytes exactly."""
    index_bits: int
    indices_per_word: int
    bytes_per_word: int


def packing_layout(index_bits: int) -> PackingLayout:
    if not 1 <= index_bits <= 8:
        raise ValueError(f"index_bits must be in [1, 8], got {index_bits}")
    word_bits = index_bits * 8 // math.gcd(index_bits, 8)
    return PackingLayout(index_bits, word_bits // index_bits, word_bits // 8)


def pack_indices(indices: torch.Tensor, index_bits: int) -> torch.Tensor:
    """Pack ``indices [..., J]`` (integers below ``2**index_bits``) into uint8
    ``[..., J * index_bits // 8]`` as one little-endian bit stream per row (module docstring)."""
    layout = packing_layout(index_bits)
    num_indices = indices.shape[-1]
    if num_indices % layout.indices_per_word:
        raise ValueError(f"pack_indices: {num_indices} indices per row is not a multiple of "
                         f"{layout.indices_per_word} ({index_bits}-bit indices)")
    lead, num_words = indices.shape[:-1], num_indices // layout.indices_per_word
    words = indices.to(torch.int64).reshape(*lead, num_words, layout.indices_per_word)
    shifts = torch.arange(layout.indices_per_word, device=indices.device, dtype=torch.int64) * index_bits
    word = (words << shifts).sum(dim=-1)  # disjoint bits: sum == or; up to 56 bits
    byte_shifts = torch.arange(layout.bytes_per_word, device=indices.device, dtype=torch.int64) * 8
    packed = (word[..., None] >> byte_shifts) & 0xFF
    return packed.to(torch.uint8).reshape(*lead, num_words * layout.bytes_per_word)


def unpack_indices(codes: torch.Tensor, index_bits: int) -> torch.Tensor:
    """Inverse of :func:`pack_indices`: uint8 ``[..., B]`` -> int64 ``[..., B * 8 // index_bits]``."""
    layout = packing_layout(index_bits)
    num_bytes = codes.shape[-1]
    if num_bytes % layout.bytes_per_word:
        raise ValueError(f"unpack_indices: {num_bytes} bytes per row is not a multiple of "
                         f"{layout.bytes_per_word} ({index_bits}-bit indices)")
    lead, num_words = codes.shape[:-1], num_bytes // layout.bytes_per_word
    byte_words = codes.to(torch.int64).reshape(*lead, num_words, layout.bytes_per_word)
    byte_shifts = torch.arange(layout.bytes_per_word, device=codes.device, dtype=torch.int64) * 8
    word = (byte_words << byte_shifts).sum(dim=-1)
    shifts = torch.arange(layout.indices_per_word, device=codes.device, dtype=torch.int64) * index_bits
    indices = (word[..., None] >> shifts) & ((1 << index_bits) - 1)
    return indices.reshape(*lead, num_words * layout.indices_per_word)


@dataclass(frozen=True)
class HiggsQuantizer:
    """HIGGS with Hadamard groups of ``group_size`` channels and the (p, bits) Gaussian grid.

    ``group_size``: power of two in [16, 4096] (128 = one head of Llama, 1024 = a whole token of
    8 kv heads). ``p``, ``bits``: one of :data:`sglang_kv.quant.grids.SUPPORTED_GRIDS`. Inputs have
    ``C`` channels in their last dimension, any multiple of ``group_size`` (e.g. 3 heads x 64).
    """

    group_size: int
    p: int
    bits: int
    scale_dtype: torch.dtype = torch.float16
    _grids: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # (device, dtype) -> grid

    def __post_init__(self) -> None:
        n = self.group_size
        if not isinstance(n, int) or n < MIN_GROUP_SIZE or n > MAX_GROUP_SIZE or n & (n - 1):
            raise ValueError(f"group_size must be a power of two in [{MIN_GROUP_SIZE}, "
                             f"{MAX_GROUP_SIZE}], got {n!r}")
        if (self.p, self.bits) not in SUPPORTED_GRIDS:
            raise ValueError(f"(p, bits) must be one of {SUPPORTED_GRIDS}, got ({self.p}, {self.bits})")
        if self.scale_dtype not in SCALE_DTYPES:
            raise ValueError(f"scale_dtype must be one of {SCALE_DTYPES}, got {self.scale_dtype}")

    # --- layout -----------------------------------------------------------------------------------
    @property
    def index_bits(self) -> int:
        return self.p * self.bits

    @property
    def num_points(self) -> int:
        return 2 ** self.index_bits

    @property
    def group_code_bytes(self) -> int:
        """Code bytes of one group."""
        return self.group_size * self.bits // 8

    def num_groups(self, num_channels: int) -> int:
        if num_channels <= 0 or num_channels % self.group_size:
            raise ValueError(f"number of channels (last dimension) must be a positive multiple of "
                             f"group_size={self.group_size}, got {num_channels}")
        return num_channels // self.group_size

    def code_bytes(self, num_channels: int) -> int:
        """Bytes of packed codes per vector of ``num_channels`` values: exactly ``C * bits / 8``."""
        return self.num_groups(num_channels) * self.group_code_bytes

    def bytes_per_vector(self, num_channels: int) -> int:
        """Storage of one vector: code bytes plus one scale per group."""
        scale_bytes = torch.empty(0, dtype=self.scale_dtype).element_size()
        return self.code_bytes(num_channels) + self.num_groups(num_channels) * scale_bytes

    def grid(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The codebook ``[2**(p*bits), p]`` on ``device`` in ``dtype`` (cached; do not modify).

        Its points are float16-representable, so ``dtype=torch.float16`` is exact."""
        key = (device, dtype)  # as given ("cuda" and cuda:0 keep a copy each): no device parsing per call
        found = self._grids.get(key)
        if found is None:
            found = self._grids[key] = load_grid(self.p, self.bits).to(device=device, dtype=dtype)
        return found

    # --- checks -----------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor, name: str) -> int:
        """Validate an input ``[..., C]`` (dtype, channels); return the number of groups."""
        if x.dtype not in INPUT_DTYPES:
            raise ValueError(f"{name} must have dtype in {INPUT_DTYPES}, got {x.dtype}")
        if x.dim() == 0:
            raise ValueError(f"{name} must have a channel dimension, got a scalar")
        return self.num_groups(x.shape[-1])

    def check_codes(self, codes: torch.Tensor, scales: torch.Tensor) -> int:
        """Validate a (codes, scales) pair; return the number of channels ``C`` it encodes."""
        if codes.dtype != torch.uint8:
            raise ValueError(f"codes must be uint8, got {codes.dtype}")
        if scales.dtype != self.scale_dtype:
            raise ValueError(f"scales must have dtype {self.scale_dtype} (the quantizer's scale_dtype), "
                             f"got {scales.dtype}")
        if codes.dim() == 0 or codes.shape[:-1] != scales.shape[:-1]:
            raise ValueError(f"codes {tuple(codes.shape)} and scales {tuple(scales.shape)} must agree "
                             f"on all but the last dimension")
        num_groups = scales.shape[-1]
        if num_groups < 1 or codes.shape[-1] != num_groups * self.group_code_bytes:
            raise ValueError(f"codes last dimension must be num_groups * {self.group_code_bytes} = "
                             f"{num_groups * self.group_code_bytes} for {num_groups} groups of "
                             f"{self.group_size} values at {self.bits} bits, got {codes.shape[-1]}")
        return num_groups * self.group_size

    # --- quantize / dequantize / score ------------------------------------------------------------
    def quantize(self, x: torch.Tensor) -> HiggsCodes:
        """Quantize ``x [..., C]`` (float32 / float16 / bfloat16).

        Returns :class:`HiggsCodes` with ``codes`` uint8 ``[..., C * bits // 8]`` and ``scales``
        ``scale_dtype`` ``[..., C // group_size]`` (the L2 norm of each group).
        """
        num_groups = self.check_input(x, "x")
        lead, n = x.shape[:-1], self.group_size
        groups = x.float().reshape(*lead, num_groups, n)
        scales = torch.linalg.vector_norm(groups, dim=-1).to(self.scale_dtype)
        scale = scales.float()
        inv_scale = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
        rotated = hadamard_transform(groups * inv_scale[..., None])  # (..., G, n), ~N(0, 1)
        indices = nearest_point(rotated.reshape(-1, self.p), self.grid(x.device))
        codes = pack_indices(indices.reshape(*lead, num_groups * n // self.p), self.index_bits)
        return HiggsCodes(codes, scales)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codewords in the rotated domain: uint8 ``[..., B]`` -> float32 ``[..., B * 8 // bits]``."""
        indices = unpack_indices(codes, self.index_bits)
        return self.grid(codes.device)[indices].reshape(*indices.shape[:-1], indices.shape[-1] * self.p)

    def dequantize(self, codes: torch.Tensor, scales: torch.Tensor,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Reconstruct ``[..., C]`` in ``dtype`` from codes ``[..., C * bits // 8]`` and scales
        ``[..., C // group_size]`` (computed in float32, then cast)."""
        num_channels = self.check_codes(codes, scales)
        lead, n = codes.shape[:-1], self.group_size
        rotated = self.lookup(codes).reshape(*lead, num_channels // n, n)  # (..., G, n)
        groups = hadamard_transform(rotated) * (scales.float() / n)[..., None]
        return groups.reshape(*lead, num_channels).to(dtype)

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """``H_n`` applied to each group of ``x [..., C]``, in float32 (queries for :meth:`score`)."""
        num_groups = self.check_input(x, "x")
        lead = x.shape[:-1]
        return hadamard_transform(x.float().reshape(*lead, num_groups, self.group_size)).reshape(x.shape)

    def score(self, q: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """``q @ dequantize(codes, scales).mT`` without reconstructing keys.

        q: ``[*batch, M, C]``; codes: ``[*batch, N, C * bits // 8]``; scales: ``[*batch, N, C // group_size]``
        (batch dimensions broadcast as in ``torch.matmul``). Returns float32 ``[*batch, M, N]``.
        ``q`` is rotated once per group; keys are only looked up in the grid (rotated domain), in
        chunks of tokens so the looked-up codewords stay small.
        """
        num_channels = self.check_codes(codes, scales)
        self.check_input(q, "q")
        if q.dim() < 2 or codes.dim() < 2 or q.shape[-1] != num_channels:
            raise ValueError(f"q [*batch, M, C] and codes [*batch, N, C*bits/8] must have matching C: "
                             f"q {tuple(q.shape)}, codes encode C={num_channels}")
        q_rot = self.rotate(q)
        num_tokens, n = codes.shape[-2], self.group_size
        batch_numel = math.prod(codes.shape[:-2])
        chunk = max(1, _SCORE_CHUNK_VALUES // max(1, batch_numel * num_channels))
        parts = []
        for start in range(0, num_tokens, chunk):
            part_codes = codes[..., start:start + chunk, :]
            part_scales = scales[..., start:start + chunk, :].float() / n
            keys_rot = self.lookup(part_codes).reshape(*part_codes.shape[:-1], num_channels // n, n)  # (..., N', G, n)
            keys_rot = (keys_rot * part_scales[..., None]).flatten(-2)
            parts.append(q_rot @ keys_rot.mT)
        if not parts:
            return q_rot @ torch.empty(*codes.shape[:-1], num_channels, device=q.device).mT
        return torch.cat(parts, dim=-1)
