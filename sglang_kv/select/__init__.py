"""Selectors behind one interface (``base.Selector``), chosen by name from ``SELECTORS``.

``make_selector(name, shape, config, rope=None)``; ``rope`` (``rope.RopeParams``) is required by the
selectors that un-rotate keys (``shadowkv``; ``yakv`` with ``key_rope="pre"``).
"""

from __future__ import annotations

from typing import Any, Callable

from sglang_kv.select.base import Footprint, LayerSummary, ModelShape, Selector, StepBytes
from sglang_kv.select.rope import RopeParams


def _oracle(shape: ModelShape, config: Any, rope: RopeParams | None, **kwargs) -> Selector:
    from sglang_kv.select.oracle import OracleSelector

    return OracleSelector(shape, config, rope, **kwargs)


def _yakv(shape: ModelShape, config: Any, rope: RopeParams | None, **kwargs) -> Selector:
    from sglang_kv.select.yakv import YakvSelector

    return YakvSelector(shape, config, rope, **kwargs)


def _shadowkv(shape: ModelShape, config: Any, rope: RopeParams | None, **kwargs) -> Selector:
    from sglang_kv.select.shadowkv import ShadowkvSelector

    return ShadowkvSelector(shape, config, rope, **kwargs)


def _quest(shape: ModelShape, config: Any, rope: RopeParams | None, **kwargs) -> Selector:
    from sglang_kv.select.quest import QuestSelector

    return QuestSelector(shape, config, rope, **kwargs)


# name -> factory(shape, config, rope, **method_options); factories import their implementation lazily.
SELECTORS: dict[str, Callable[..., Selector]] = {
    "oracle": _oracle,
    "yakv": _yakv,
    "shadowkv": _shadowkv,
    "quest": _quest,
}


def make_selector(name: str, shape: ModelShape, config: Any = None, rope: RopeParams | None = None,
                  **options: Any) -> Selector:
    """The selector ``name`` for one layer shape. ``options`` are the method's own keyword arguments
    (e.g. ``payload_group``/``key_rope`` of yakv). Raises ``ValueError`` for an unknown name or a
    shape/config the method cannot serve."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; available: {', '.join(sorted(SELECTORS))}")
    return SELECTORS[name](shape, config, rope, **options)


__all__ = ["Footprint", "LayerSummary", "ModelShape", "RopeParams", "Selector", "SELECTORS", "StepBytes",
           "make_selector"]
