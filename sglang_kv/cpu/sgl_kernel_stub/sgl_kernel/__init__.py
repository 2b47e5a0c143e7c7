"""A torch stand-in for the few CPU ops of sgl-kernel that SGLang's CPU path calls.

The CUDA build of ``sgl_kernel`` on PyPI cannot be imported without libcuda, and its CPU build is
not published, so CPU serving tests put this folder first on PYTHONPATH. Every op here is a
faithful torch implementation tested against its documented semantics in
``tests/cpu/test_sgl_kernel_stub.py``; any other name imports as a placeholder that raises when called, so a code path that needs a
missing op fails loudly instead of silently doing nothing.
"""

from __future__ import annotations

import torch

__version__ = "0.0.0+sglang-kv-cpu-stub"
IS_SGLANG_KV_STUB = True


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Write each request's new token slots into its row of the request-to-token table.

    For request i, ``req_to_token[req_pool_indices[i], start_offset[i]:end_offset[i]]`` receives
    the next ``end_offset[i] - start_offset[i]`` entries of ``out_cache_loc`` (requests are packed
    back to back in ``out_cache_loc``, in batch order).

    Shapes: req_pool_indices, start_offset, end_offset [batch]; req_to_token [rows, pool_len];
    out_cache_loc [sum(end_offset - start_offset)].
    """
    if req_to_token.shape[1] != pool_len:
        raise ValueError(f"pool_len {pool_len} != req_to_token.shape[1] {req_to_token.shape[1]}")
    starts = start_offset.tolist()
    ends = end_offset.tolist()
    rows = req_pool_indices.tolist()
    out = 0
    for row, start, end in zip(rows, starts, ends):
        n = end - start
        req_to_token[row, start:end] = out_cache_loc[out : out + n].to(req_to_token.dtype)
        out += n
    if out != out_cache_loc.numel():
        raise ValueError(f"out_cache_loc has {out_cache_loc.numel()} entries, requests need {out}")


class MissingOp:
    """Placeholder for an sgl-kernel op this stand-in does not implement: importable, raises if called.

    SGLang imports many ops at module load time that the CPU serving path never calls; importing
    must succeed, calling must fail loudly.
    """

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f"sgl_kernel.{self.name} is not implemented by the sglang-kv CPU stand-in "
            f"(sglang_kv/cpu/sgl_kernel_stub); implement it in torch and test it before use"
        )

    def __repr__(self) -> str:
        return f"<sgl_kernel stand-in: {self.name} (raises if called)>"


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return MissingOp(name)
