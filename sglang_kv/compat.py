"""What sglang-kv needs from SGLang's configuration, checked once at startup.

A configuration that cannot work fails here, in the launcher or while the scheduler builds its
model runner, with one message naming the flag; never mid-request.
"""

from __future__ import annotations

import logging

from sglang_kv.config import ConfigError, OffloadConfig

logger = logging.getLogger("sglang_kv")

# server_args field -> (value that is incompatible predicate, the flag to drop, why)
_UNSUPPORTED = (
    ("speculative_algorithm", lambda v: v is not None, "--speculative-algorithm",
     "speculative decoding verifies several tokens per step"),
    ("disaggregation_mode", lambda v: v not in (None, "null"), "--disaggregation-mode",
     "prefill/decode disaggregation moves KV between servers"),
    ("enable_dp_attention", bool, "--enable-dp-attention", "data-parallel attention is not supported"),
    ("pp_size", lambda v: v > 1, "--pp-size", "pipeline parallelism is not supported"),
    ("enable_two_batch_overlap", bool, "--enable-two-batch-overlap", "two-batch overlap is not supported"),
    ("enable_pdmux", bool, "--enable-pdmux", "PD multiplexing is not supported"),
    ("enable_hierarchical_cache", bool, "--enable-hierarchical-cache",
     "HiCache moves the same KV to host memory on its own"),
    ("enable_hisparse", bool, "--enable-hisparse", "HiSparse is a different sparse-attention path"),
    ("is_embedding", bool, "--is-embedding", "embedding models do not decode"),
)


def check_server_args(config: OffloadConfig, server_args) -> None:
    """Refuse SGLang features the offload backend cannot serve (raises ConfigError)."""
    from sglang_kv.select import SELECTORS

    if config.method not in SELECTORS:
        raise ConfigError(f"--kv-offload {config.method}: not available in this build "
                          f"(available: {', '.join(sorted(SELECTORS))})")
    for field, incompatible, flag, why in _UNSUPPORTED:
        value = getattr(server_args, field, None)
        if value is not None and incompatible(value):
            raise ConfigError(f"--kv-offload {config.method} cannot be combined with {flag} ({why})")


_GRAPH_FLAGS = ("--cuda-graph-backend-decode", "--cuda-graph-backend-prefill")


def disable_cuda_graphs(config: OffloadConfig, argv: list[str]) -> list[str]:
    """SGLang argv with CUDA graphs switched off (the offload decode step is data-dependent Python
    per request and cannot be captured). ServerArgs is read-only once parsed, so this edits argv."""
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name == "--cuda-graph-config":
            raise ConfigError(f"--kv-offload {config.method} cannot be combined with --cuda-graph-config "
                              "(CUDA graphs are not supported by the offload backend)")
        if name in _GRAPH_FLAGS:
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            if value != "disabled":
                raise ConfigError(f"--kv-offload {config.method} cannot be combined with {name} {value} "
                                  "(CUDA graphs are not supported by the offload backend)")
    logger.info("sglang-kv: disabling CUDA graphs (the offload decode path is not graph-captured)")
    return [*argv, *(x for flag in _GRAPH_FLAGS for x in (flag, "disabled"))]


def cuda_graphs_disabled(server_args) -> bool:
    from sglang.srt.model_executor.cuda_graph_config import Backend

    graph = getattr(server_args, "cuda_graph_config", None)
    if graph is None:
        return bool(server_args.disable_cuda_graph)
    return graph.decode.backend == Backend.DISABLED and graph.prefill.backend == Backend.DISABLED


def check_model_runner(config: OffloadConfig, model_runner) -> None:
    """Refuse model shapes the offload backend cannot serve (raises ConfigError in the scheduler)."""
    check_server_args(config, model_runner.server_args)
    if getattr(model_runner, "use_mla_backend", False):
        raise ConfigError(f"--kv-offload {config.method}: MLA models are not supported (dense MHA/GQA only)")
    if getattr(model_runner, "is_hybrid_swa", False) or getattr(model_runner, "sliding_window_size", None):
        raise ConfigError(f"--kv-offload {config.method}: sliding-window attention models are not supported")
    if not cuda_graphs_disabled(model_runner.server_args):
        raise ConfigError(
            f"--kv-offload {config.method}: CUDA graphs must be disabled; start the server with "
            "python -m sglang.launch_server (the plugin disables them) rather than the Engine API"
        )


def check_hooks_applied() -> None:
    """Every hook of ``plugin.HOOKS`` must be in place: SGLang only logs a hook that fails to
    apply, which would silently serve stock attention with ``--kv-offload`` on."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    from sglang_kv.plugin import HOOKS

    missing = [t for t in HOOKS if t not in HookRegistry._patched]
    if missing:
        raise ConfigError(f"--kv-offload: SGLang hooks were not applied: {', '.join(missing)} "
                          "(is the installed SGLang 0.5.17?)")
