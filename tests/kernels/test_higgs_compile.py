"""Every HIGGS kernel config (and the device cache's row copy, the selection's softmax and top-k, the sparse
decode attention, the gather's distinct per-head rows) the wrappers may pick compiles for the H200 (sm_90)
without a GPU.

The interpreter tests check what the kernels compute; this one runs Triton's real compiler (TTIR ->
TTGIR -> PTX -> cubin with the bundled ptxas) for ``GPUTarget("cuda", 90, 32)`` on the model shapes
in use, so a kernel that only the interpreter accepts fails here, and reports register spills.
It runs in a subprocess because the kernels must be imported without ``TRITON_INTERPRET=1``.
About 1-2 minutes on 2 cores (less with a warm Triton cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# (group_size, p, bits, gqa): Llama-3.1-8B store and landmarks, SmolLM2 (3 kv heads of 64, GQA 3),
# Qwen3-30B-A3B (GQA 8), a 3-bit grid, padded dots
SHAPES = [(1024, 2, 4, None), (128, 4, 2, 4), (64, 4, 2, 3), (128, 4, 2, 8), (512, 2, 3, None), (64, 1, 3, 3),
          (256, 4, 1, None), (32, 4, 2, 2)]  # the last two: fewer than 16 codewords per dot row (padded)


def compile_all() -> list[dict]:
    """Compile each (kernel, shape, config) for sm_90; one record per compilation."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from sglang_kv.kernels import higgs as hk
    from sglang_kv.kernels import higgs_triton as ht
    from sglang_kv.quant.higgs import HiggsQuantizer

    target = GPUTarget("cuda", 90, 32)
    records = []

    def build(kernel, name, signature, constexprs, num_warps, num_stages=3):
        full = {arg: ("constexpr" if arg in constexprs else signature[arg]) for arg in kernel.arg_names}
        # what the JIT specializes at launch on these shapes: 16-byte aligned pointers and strides
        # divisible by 16 (scales of 8 heads and row counts are not)
        attrs = {(i,): [["tt.divisibility", 16]] for i, arg in enumerate(kernel.arg_names)
                 if arg not in constexprs and arg not in ("scales_stride", "num_rows", "num_out", "src_stride",
                                                          "dst_stride", "num_sel", "num_win", "split_tokens",
                                                          "scale", "sel_rows_stride_n", "win_rows_stride_m",
                                                          "num_splits", "sel_rows_stride_b", "sel_rows_stride_h",
                                                          "win_rows_stride_b", "width", "search_steps",
                                                          "index_stride_b", "index_stride_h")}
        record = {"kernel": name, "constexprs": constexprs, "num_warps": num_warps, "num_stages": num_stages}
        try:
            compiled = triton.compile(ASTSource(kernel, full, constexprs, attrs), target=target,
                                      options={"num_warps": num_warps, "num_stages": num_stages})
            record.update(ok=True, shared=compiled.metadata.shared, spills=_local_bytes(compiled.asm["cubin"]))
        except Exception as error:  # noqa: BLE001 - reported to the test
            record.update(ok=False, error=f"{type(error).__name__}: {error}"[:2000])
        records.append(record)

    for group_size, p, bits, gqa in SHAPES:
        quantizer = HiggsQuantizer(group_size, p, bits)
        a, b = hk.hadamard_factors(group_size)
        meta = hk._packing_meta(quantizer)
        words = {1: "*fp16", 2: "*i32", 4: "*i64"}[p]  # hk.grid_words
        for config in hk.quantize_configs(group_size):
            build(ht.higgs_quantize_kernel, "quantize",
                  dict(x_ptr="*bf16", grid_ptr="*fp32", codes_ptr="*u8", scales_ptr="*fp16", num_rows="i32",
                       x_stride="i32", codes_stride="i32", scales_stride="i32"),
                  dict(N=group_size, A=a, B=b, NUM_POINTS=quantizer.num_points, BLOCK_T=config.block, **meta),
                  config.num_warps)
        # row groups 2: the K|V records of yakv's 4-bit payload (group-major gathers)
        for row_groups in ((1, 2) if bits == 4 else (1,)):
            for index, config in enumerate(hk.dequantize_gather_configs(group_size, row_groups)):
                for out_type in ("*bf16", "*fp32"):
                    for has_table, align in (((False, 1), (True, 16), (True, 1)) if index == 0 else ((False, 1),)):
                        build(ht.higgs_dequantize_gather_kernel, "dequantize_gather",
                              dict(codes_ptr="*u8", scales_ptr="*fp16", index_ptr="*i64", table_ptr="*i64",
                                   request_ptr="*i32", grid_ptr=words, out_ptr=out_type, num_out="i32",
                                   codes_stride="i32", scales_stride="i32", out_stride="i32", group_stride="i32"),
                              dict(N=group_size, A=a, B=b, NUM_POINTS=quantizer.num_points,
                                   J_PAD=hk.dot_codewords(b, p), HAS_TABLE=has_table, CODES_ALIGN=align,
                                   BLOCK_T=config.block, ROW_GROUPS=row_groups, **meta),
                              config.num_warps, config.num_stages)
        if gqa is None:
            continue
        for index, config in enumerate(hk.SCORE_CONFIGS):
            # (table, codes alignment, head-major stores: yakv's landmarks)
            layouts = ((False, 1, False), (True, 16, False), (True, 1, False), (True, 16, True))
            for has_table, align, head_major in (layouts if index == 0 else ((True, 16, False),)):
                common = dict(N=group_size, GQA=gqa, HAS_TABLE=has_table, CODES_ALIGN=align, HEAD_MAJOR=head_major,
                              BLOCK_N=config.block, **meta)
                strides = dict(num_rows="i32", codes_stride="i32", scales_stride="i32", out_stride_b="i32",
                               out_stride_h="i32")
                build(ht.higgs_score_kernel, "score",
                      dict(q_ptr="*bf16", codes_ptr="*u8", scales_ptr="*fp16", table_ptr="*i64",
                           grid_ptr=words, out_ptr="*fp32", q_stride_b="i32", q_stride_h="i32", **strides),
                      dict(GQA_PAD=hk.score_columns(gqa), NUM_POINTS=quantizer.num_points,
                           J_PAD=hk.dot_codewords(group_size, p), **common),
                      config.num_warps, config.num_stages)
    from sglang_kv.kernels import rows as rk
    from sglang_kv.kernels import rows_triton as rt
    from sglang_kv.kernels import softmax as sk
    from sglang_kv.kernels import softmax_triton as st

    # the selection's softmax + GQA max: Llama-3.1-8B (GQA 4), SmolLM2 (GQA 3), Qwen3-30B-A3B (GQA 8)
    for gqa in (4, 3, 8):
        for config in sk.SOFTMAX_CONFIGS:
            build(st.group_max_softmax_kernel, "group_max_softmax",
                  dict(logits_ptr="*fp32", lengths_ptr="*i32", out_ptr="*fp32", num_cols="i32",
                       logits_stride_b="i32", logits_stride_h="i32", out_stride_b="i32", out_stride_h="i32",
                       scale="fp32"),
                  dict(GQA=gqa, GQA_PAD=1 << (gqa - 1).bit_length(), BLOCK=config.block), config.num_warps)

    # the selection's top-k in index order
    from sglang_kv.kernels import topk as tk
    from sglang_kv.kernels import topk_triton as tt

    for config in tk.TOPK_CONFIGS:  # one program per row, or the two stages of a row in chunks
        stages = [{}] if config.chunks == 1 else [dict(CHUNKS=config.chunks, WRITE_VALUES=True), dict(MAP_COLUMNS=True)]
        for stage in stages:
            build(tt.topk_sorted_kernel, "topk_sorted",
                  dict(scores_ptr="*fp32", counts_ptr="*i32", out_ptr="*i64", values_ptr="*fp32", columns_ptr="*i64",
                       num_cols="i32", width="i32", scores_stride="i32", out_stride="i32", columns_stride="i32"),
                  dict(BLOCK=config.block, DIGIT_BITS=config.digit_bits, CHUNKS=1, WRITE_VALUES=False,
                       MAP_COLUMNS=False) | stage, config.num_warps)

    # device-cache fills: Llama-3.1-8B token rows (512 code bytes as int64) and fp16 scales; per-head rows
    for elem, row in (("*i64", 64), ("*i16", 1), ("*i64", 8), ("*u8", 3)):
        for config in rk.COPY_CONFIGS:
            build(rt.copy_rows_kernel, "copy_rows",
                  dict(elem_ptr=elem, table_ptr="*i64", request_ptr="*i32", src_index_ptr="*i64",
                       dst_index_ptr="*i64", num_rows="i32", src_stride="i32", dst_stride="i32"),
                  dict(ROW=row, ROW_PAD=1 << (row - 1).bit_length(), BLOCK_T=config.block), config.num_warps)

    # the sparse decode attention over the gathered rows (and its split merge): Llama-3.1-8B (GQA 4, dim
    # 128), SmolLM2 (GQA 3, dim 64), Qwen3-30B-A3B (GQA 8, dim 128); bfloat16 rows, int64 row ids
    from sglang_kv.kernels import attention as ak
    from sglang_kv.kernels import attention_triton as at

    for gqa, dim in ((4, 128), (3, 64), (8, 128)):
        for config in ak.ATTENTION_CONFIGS:
            for split in (False, True):
                build(at.sparse_decode_attention_kernel, "sparse_decode_attention",
                      dict(q_ptr="*bf16", sel_k_ptr="*bf16", sel_v_ptr="*bf16", sel_rows_ptr="*i64",
                           win_k_ptr="*bf16", win_v_ptr="*bf16", win_rows_ptr="*i64", out_ptr="*bf16",
                           part_acc_ptr="*fp32", part_stats_ptr="*fp32", num_sel="i32", num_win="i32",
                           split_tokens="i32", scale="fp32", q_stride_b="i32", q_stride_h="i32",
                           sel_k_stride="i32", sel_v_stride="i32", sel_rows_stride_b="i32",
                           sel_rows_stride_h="i32", sel_rows_stride_n="i32", win_k_stride_p="i32",
                           win_k_stride_h="i32", win_v_stride_p="i32", win_v_stride_h="i32",
                           win_rows_stride_b="i32", win_rows_stride_m="i32", out_stride_b="i32",
                           out_stride_h="i32"),
                      dict(GQA=gqa, GQA_PAD=max(16, 1 << (gqa - 1).bit_length()), D=dim, D_PAD=dim, DV=dim,
                           DV_PAD=dim, BLOCK=config.block, SPLIT=split, DOT_BF16=True),
                      config.num_warps, config.num_stages)
        build(at.merge_splits_kernel, "merge_splits",
              dict(part_acc_ptr="*fp32", part_stats_ptr="*fp32", out_ptr="*bf16", num_splits="i32",
                   out_stride_b="i32", out_stride_h="i32"),
              dict(DV=dim, DV_PAD=dim, SPLITS_PAD=ak.MAX_SPLITS), 4)
    # the gather's distinct per-head rows: Llama-3.1-8B (8 kv heads) and Qwen3-30B-A3B (4), int64 columns
    from sglang_kv.kernels import head_rows as hr
    from sglang_kv.kernels import head_rows_triton as hrt

    for heads in (8, 4):
        build(hrt.head_rows_kernel, "head_rows",
              dict(index_ptr="*i64", counts_ptr="*i32", request_ptr="*i64", row_ptr="*i64", inverse_ptr="*i64",
                   width="i32", num_rows="i32", search_steps="i32", index_stride_b="i32", index_stride_h="i32"),
              dict(HEADS=heads, BLOCK=hr.BLOCK), hr.NUM_WARPS)
    return records


def _local_bytes(cubin: bytes) -> int:
    """Local memory (register spills) per thread, from cuobjdump's resource usage."""
    import tempfile

    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True,
                               text=True, check=True).stdout
    return max((int(part.split(":")[1]) for part in usage.split() if part.startswith("LOCAL:")), default=0)


def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=1800)
    if proc.returncode != 0 and "ptxas" in proc.stderr and "not found" in proc.stderr.lower():
        pytest.skip(f"Triton's CUDA toolchain is not available here: {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = [r for r in records if not r["ok"]]
    assert not failed, json.dumps(failed[:3], indent=1)
    spilled = [r for r in records if r["spills"]]
    assert not spilled, json.dumps(spilled[:3], indent=1)
    assert {r["kernel"] for r in records} == {"quantize", "dequantize_gather", "score", "copy_rows",
                                                 "group_max_softmax", "topk_sorted", "sparse_decode_attention",
                                                 "merge_splits", "head_rows"}


if __name__ == "__main__":
    print(json.dumps(compile_all()))
