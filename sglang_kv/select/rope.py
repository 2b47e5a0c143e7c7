"""Rotary position embedding at given positions, and its inverse (Hugging Face ``rotate_half`` convention).

SGLang and the Hugging Face Llama/Qwen models rotate the pairs ``(x[i], x[i + D/2])`` of each head
(``is_neox_style=True`` in SGLang) by ``position * inv_freq[i]``. The selectors that need pre-RoPE
keys (ShadowKV's SVD; YAKV when storing pre-RoPE keys) get post-RoPE keys from the engine, undo the
rotation here, and redo it for the tokens they rebuild. Angles are computed as Hugging Face does
(float32 ``inv_freq`` times float32 positions), so un-rotating a key the model rotated is exact up to
the rounding of the key's own dtype.

Supported ``rope_type``: ``default``, ``linear`` and ``llama3`` (Llama 3.1/3.2 scaling); other
scalings raise ``ValueError`` at construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

_ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class RopeParams:
    """RoPE parameters of one model (all layers share them).

    ``factor``/``low_freq_factor``/``high_freq_factor``/``original_max_position_embeddings`` are
    read only by the ``llama3`` (and ``factor`` by the ``linear``) rope types.
    """

    theta: float
    rope_type: str = "default"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192

    def __post_init__(self) -> None:
        if not (self.theta > 1):
            raise ValueError(f"RopeParams.theta must be > 1, got {self.theta!r}")
        if self.rope_type not in _ROPE_TYPES:
            raise ValueError(f"RopeParams.rope_type {self.rope_type!r} is not supported; supported: {', '.join(_ROPE_TYPES)}")
        if self.rope_type == "llama3" and not self.high_freq_factor > self.low_freq_factor:
            raise ValueError(f"llama3 rope scaling needs high_freq_factor > low_freq_factor, got "
                             f"{self.high_freq_factor} and {self.low_freq_factor}")

    @classmethod
    def from_hf_config(cls, config: Any) -> "RopeParams":
        """From a transformers config (4.x ``rope_theta``/``rope_scaling`` or 5.x ``rope_parameters``)
        or a plain dict with the same keys. Raises ``ValueError`` on partial rotary embeddings."""
        get = config.get if isinstance(config, Mapping) else (lambda k, d=None: getattr(config, k, d))
        params = dict(get("rope_parameters") or {})
        params.update({k: v for k, v in (get("rope_scaling") or {}).items() if k not in params})
        theta = params.get("rope_theta", get("rope_theta"))
        if theta is None:
            raise ValueError("model config has no rope_theta (in rope_parameters or at top level)")
        partial = params.get("partial_rotary_factor", get("partial_rotary_factor", 1.0))
        if partial not in (None, 1, 1.0):
            raise ValueError(f"partial rotary embeddings (partial_rotary_factor={partial}) are not supported")
        rope_type = params.get("rope_type", params.get("type", "default"))
        kwargs = {k: params[k] for k in ("factor", "low_freq_factor", "high_freq_factor",
                                          "original_max_position_embeddings") if params.get(k) is not None}
        return cls(theta=float(theta), rope_type=rope_type, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def inv_freq(params: RopeParams, head_dim: int) -> torch.Tensor:
    """float32 ``[head_dim // 2]`` rotation frequencies (radians per position), as Hugging Face computes them."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    freq = 1.0 / (params.theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if params.rope_type == "linear":
        return freq / params.factor
    if params.rope_type == "llama3":
        old_len = params.original_max_position_embeddings
        low_wavelen = old_len / params.low_freq_factor
        high_wavelen = old_len / params.high_freq_factor
        wavelen = 2 * math.pi / freq
        scaled = torch.where(wavelen > low_wavelen, freq / params.factor, freq)
        smooth = (old_len / wavelen - params.low_freq_factor) / (params.high_freq_factor - params.low_freq_factor)
        smoothed = (1 - smooth) * scaled / params.factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, scaled)
    return freq


def _cos_sin(positions: torch.Tensor, params: RopeParams, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    freq = inv_freq(params, head_dim).to(positions.device)
    angles = positions.float()[:, None] * freq[None, :]  # (L, D/2), float32 like HF
    emb = torch.cat([angles, angles], dim=-1)  # (L, D)
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, positions: torch.Tensor, params: RopeParams, sign: float) -> torch.Tensor:
    if x.dim() != 3 or positions.shape != (x.shape[0],):
        raise ValueError(f"expected x [num_tokens, num_heads, head_dim] and positions [num_tokens], got "
                         f"{tuple(x.shape)} and {tuple(positions.shape)}")
    cos, sin = _cos_sin(positions, params, x.shape[-1])
    cos, sin = cos[:, None, :], sign * sin[:, None, :]  # broadcast over heads
    xf = x.float()
    half = x.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)  # rotate_half
    return (xf * cos + rotated * sin).to(x.dtype)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, params: RopeParams) -> torch.Tensor:
    """Rotate ``x`` ``[num_tokens, num_heads, head_dim]`` to ``positions`` ``[num_tokens]``; same dtype out
    (computed in float32)."""
    return _rotate(x, positions, params, 1.0)


def inverse_rope(x: torch.Tensor, positions: torch.Tensor, params: RopeParams) -> torch.Tensor:
    """Undo :func:`apply_rope`: post-RoPE ``[num_tokens, num_heads, head_dim]`` -> pre-RoPE."""
    return _rotate(x, positions, params, -1.0)
