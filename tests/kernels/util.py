"""Helpers shared by the kernel tests."""

from __future__ import annotations


def specialization(kernel, args, *, honor_flags=True) -> tuple:
    """Triton's per-argument specialization of ``kernel`` at ``args`` (its positional, non-constexpr
    arguments): the part of its compile-cache key that depends on the values. Equal keys: no new compile."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend
    from triton.runtime.jit import JITFunction

    if not isinstance(kernel, JITFunction):  # the interpreter's wrapper keeps the decorator's flags
        kernel = JITFunction(kernel.fn, **kernel.kwargs)
    params = [p for p in kernel.params if not p.is_constexpr]
    assert len(params) == len(args)
    return tuple(native_specialize_impl(BaseBackend, arg, p.is_const, not (honor_flags and p.do_not_specialize),
                                        not (honor_flags and p.do_not_specialize_on_alignment))
                 for p, arg in zip(params, args))
