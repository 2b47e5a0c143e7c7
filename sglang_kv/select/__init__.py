"""Selectors behind one interface (``base.Selector``), chosen by name from ``SELECTORS``."""

from __future__ import annotations

from typing import Any, Callable

from sglang_kv.select.base import ModelShape, Selector


def _oracle(shape: ModelShape, config: Any) -> Selector:
    from sglang_kv.select.oracle import OracleSelector

    return OracleSelector(shape, config)


# name -> factory(shape, config); factories import their implementation lazily.
SELECTORS: dict[str, Callable[[ModelShape, Any], Selector]] = {"oracle": _oracle}


def make_selector(name: str, shape: ModelShape, config: Any) -> Selector:
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; available: {', '.join(sorted(SELECTORS))}")
    return SELECTORS[name](shape, config)


__all__ = ["ModelShape", "Selector", "SELECTORS", "make_selector"]
