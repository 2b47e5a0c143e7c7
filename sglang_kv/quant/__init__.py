"""HIGGS quantization (data-free, no SGLang dependency).

- :mod:`sglang_kv.quant.hadamard`: Walsh-Hadamard transform (``hadamard_transform``).
- :mod:`sglang_kv.quant.grids`: Gaussian grids, fitted by ``python -m sglang_kv.quant.grids`` and
  versioned as JSON under ``grids/`` (``load_grid``).
- :mod:`sglang_kv.quant.higgs`: ``HiggsQuantizer`` (quantize / dequantize / score without dequantizing).
- :mod:`sglang_kv.quant.bench`: ``python -m sglang_kv.quant.bench``, accuracy and kernel bandwidth.

Triton kernels for the same operations live in :mod:`sglang_kv.kernels.higgs`. Submodules are not
imported here, so ``python -m sglang_kv.quant.grids`` runs its module once.
"""
