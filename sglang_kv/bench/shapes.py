"""Attention shapes of the models the benchmarks are quoted for (configs in ``shared/gpu/models``)."""

from __future__ import annotations

from typing import NamedTuple

from sglang_kv.select.base import ModelShape
from sglang_kv.select.rope import RopeParams


class ModelSpec(NamedTuple):
    shape: ModelShape
    num_layers: int
    rope: RopeParams


_LLAMA3_SCALING = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                       original_max_position_embeddings=8192)

MODELS: dict[str, ModelSpec] = {
    "llama-3.1-8b": ModelSpec(ModelShape(32, 8, 128), 32, RopeParams(theta=500000.0, **_LLAMA3_SCALING)),
    "llama-3.2-3b": ModelSpec(ModelShape(24, 8, 128), 28, RopeParams(theta=500000.0, **{**_LLAMA3_SCALING, "factor": 32.0})),
    "qwen3-4b": ModelSpec(ModelShape(32, 8, 128), 36, RopeParams(theta=5000000.0)),
    "qwen3-30b-a3b": ModelSpec(ModelShape(32, 4, 128), 48, RopeParams(theta=10000000.0)),
    "smollm2-135m": ModelSpec(ModelShape(9, 3, 64), 30, RopeParams(theta=100000.0)),
}


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"--model-shape: unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]
