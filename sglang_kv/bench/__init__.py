"""Benchmarks of the selectors: ``python -m sglang_kv.bench fidelity|capture`` (see ``__main__``)."""
