"""Static profile of the HIGGS score and dequantize-gather loops on sm_90, without a GPU.

Compiles ``higgs_score_kernel`` (Llama-3.1-8B landmarks: head_dim 128, 4-D 2-bit grid, GQA 4) and
``higgs_dequantize_gather_kernel`` (the 1024-channel 4-bit store) for the H200 with Triton's bundled
ptxas, disassembles them with ``cuobjdump`` and prints, per launch config: registers, local-memory
stack (spills), shared memory, and the instructions of the row loop (from the target of the last
backward branch to that branch) by kind: barriers, shared-memory loads and stores, tensor-core
instructions, global loads and stores. ``--kernels FILE`` profiles another copy of
``higgs_triton.py`` (e.g. ``git show REV:sglang_kv/kernels/higgs_triton.py > old.py``) side by side.

    python scripts/kernel_sass.py [--kernels old_higgs_triton.py]
"""

import argparse
import collections
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sglang_kv.kernels import higgs as hk  # noqa: E402
from sglang_kv.quant.higgs import HiggsQuantizer  # noqa: E402

CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
KINDS = r"\b(BAR\.SYNC|LDSM|LDS|STS|HGMMA|HMMA|LDG|STG|LDL|STL)[.A-Z0-9]*"


def load_kernels(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loop_profile(sass: str) -> tuple[int, dict]:
    """Instruction count and kinds of the row loop: the last backward branch and its target."""
    lines = sass.splitlines()
    address = [int(m.group(1), 16) if (m := re.search(r"/\*([0-9a-f]{4,})\*/", line)) else None for line in lines]
    back = [(i, int(m.group(1), 16)) for i, line in enumerate(lines)
            if (m := re.search(r"BRA (0x[0-9a-f]+)", line)) and int(m.group(1), 16) < address[i]]
    end, target = back[-1]
    start = address.index(target)
    body = "\n".join(lines[start:end + 1])
    return end - start + 1, dict(sorted(collections.Counter(re.findall(KINDS, body)).items()))


def profile(kernel, signature: dict, constexprs: dict, config: hk.KernelConfig) -> dict:
    full = {arg: ("constexpr" if arg in constexprs else signature[arg]) for arg in kernel.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, arg in enumerate(kernel.arg_names)
             if arg not in constexprs and arg not in ("scales_stride", "num_rows", "num_out")}
    compiled = triton.compile(ASTSource(kernel, full, constexprs, attrs), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": config.num_warps, "num_stages": config.num_stages})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        usage = subprocess.run([CUOBJDUMP, "-res-usage", cubin.name], capture_output=True, text=True).stdout
        sass = subprocess.run([CUOBJDUMP, "-sass", cubin.name], capture_output=True, text=True).stdout
    count, kinds = loop_profile(sass)
    return {"registers": int(re.search(r"REG:(\d+)", usage).group(1)),
            "stack": int(re.search(r"STACK:(\d+)", usage).group(1)),
            "shared": compiled.metadata.shared, "loop_instructions": count, "loop": kinds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernels", type=Path, help="another higgs_triton.py to profile beside the package's")
    args = parser.parse_args()
    versions = {"package": load_kernels(REPO / "sglang_kv" / "kernels" / "higgs_triton.py", "kernels_package")}
    if args.kernels:
        versions[str(args.kernels)] = load_kernels(args.kernels, "kernels_other")

    landmark = HiggsQuantizer(128, 4, 2)
    score_signature = dict(q_ptr="*bf16", codes_ptr="*u8", scales_ptr="*fp16", table_ptr="*i64", grid_ptr="*i64",
                           out_ptr="*fp32", num_rows="i32", q_stride_b="i32", q_stride_h="i32", codes_stride="i32",
                           scales_stride="i32", out_stride_b="i32", out_stride_h="i32")
    for config in hk.SCORE_CONFIGS:
        for label, module in versions.items():
            constexprs = dict(N=128, GQA=4, GQA_PAD=hk.score_columns(4), NUM_POINTS=256,
                              J_PAD=hk.dot_codewords(128, 4), HAS_TABLE=True, CODES_ALIGN=16, BLOCK_N=config.block,
                              **hk._packing_meta(landmark))
            print("score", tuple(config), label, profile(module.higgs_score_kernel, score_signature, constexprs, config))

    store = HiggsQuantizer(1024, 2, 4)
    a, b = hk.hadamard_factors(1024)
    gather_signature = dict(codes_ptr="*u8", scales_ptr="*fp16", index_ptr="*i64", table_ptr="*i64",
                            request_ptr="*i32", grid_ptr="*i32", out_ptr="*bf16", num_out="i32", codes_stride="i32",
                            scales_stride="i32", out_stride="i32", group_stride="i32")
    for config in hk.dequantize_gather_configs(1024):
        for label, module in versions.items():
            constexprs = dict(N=1024, A=a, B=b, NUM_POINTS=256, J_PAD=hk.dot_codewords(b, 2), HAS_TABLE=True,
                              CODES_ALIGN=16, BLOCK_T=config.block, ROW_GROUPS=1, **hk._packing_meta(store))
            print("gather", tuple(config), label,
                  profile(module.higgs_dequantize_gather_kernel, gather_signature, constexprs, config))


if __name__ == "__main__":
    main()
