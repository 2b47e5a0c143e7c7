"""What sglang-kv needs from SGLang's configuration, checked once at startup.

A configuration that cannot work fails here, in the launcher or while the scheduler builds its
model runner, with one message naming the flag; never mid-request.
"""

from __future__ import annotations

import logging

from sglang_kv.config import ConfigError, OffloadConfig

logger = logging.getLogger("sglang_kv")

# --kv-cache-dtype values the offload backend serves ("auto": the model's dtype)
KV_CACHE_DTYPES = ("auto", "bf16", "bfloat16")

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
    ("kv_cache_dtype", lambda v: v not in KV_CACHE_DTYPES, "--kv-cache-dtype",
     f"the offloaded decode reads the pool's K/V as 16- or 32-bit floats; use one of {', '.join(KV_CACHE_DTYPES)}"),
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
            given = flag if isinstance(value, bool) else f"{flag} {value}"
            raise ConfigError(f"--kv-offload {config.method} cannot be combined with {given} ({why})")
    check_graph_args(config, server_args)


_GRAPH_FLAGS = ("--cuda-graph-backend-decode", "--cuda-graph-backend-prefill")


def decode_graph_backend(config: OffloadConfig) -> str:
    """SGLang's decode CUDA-graph backend under ``config``: ``breakable`` with
    ``--kv-offload-decode-graph 1`` (graph segments between layers, the offloaded attention eager
    between them), ``disabled`` otherwise. Prefill graphs are always disabled: the prefill's
    offload of each finished layer is host work per request."""
    return "breakable" if config.decode_graph else "disabled"


def cuda_graph_argv(config: OffloadConfig, argv: list[str]) -> list[str]:
    """SGLang argv with the CUDA graphs the offload backend can serve (:func:`decode_graph_backend`);
    the user's own graph flags are refused, since they would be overridden. ServerArgs is read-only
    once parsed, so this edits argv."""
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name == "--cuda-graph-config":
            raise ConfigError(f"--kv-offload {config.method} cannot be combined with --cuda-graph-config "
                              "(the plugin sets the CUDA graph backends; see --kv-offload-decode-graph)")
        if name in _GRAPH_FLAGS:
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            if value != "disabled":
                raise ConfigError(f"--kv-offload {config.method} cannot be combined with {name} {value} "
                                  "(the plugin sets the CUDA graph backends; see --kv-offload-decode-graph)")
    decode = decode_graph_backend(config)
    logger.info("sglang-kv: decode CUDA graphs %s, prefill CUDA graphs disabled", decode)
    return [*argv, "--cuda-graph-backend-decode", decode, "--cuda-graph-backend-prefill", "disabled"]


def check_graph_args(config: OffloadConfig, server_args) -> None:
    """The parsed server arguments carry the graph backends :func:`cuda_graph_argv` asked for, on a
    device that has them (raises ConfigError)."""
    if config.decode_graph and str(getattr(server_args, "device", None) or "cuda").startswith("cpu"):
        raise ConfigError(f"--kv-offload-decode-graph {config.decode_graph}: CUDA graphs need a CUDA device, got --device "
                          f"{server_args.device}")
    graph = getattr(server_args, "cuda_graph_config", None)
    want = decode_graph_backend(config)
    got = (("disabled" if server_args.disable_cuda_graph else "full"), "disabled") if graph is None else (
        str(graph.decode.backend), str(graph.prefill.backend))
    if got != (want, "disabled"):
        raise ConfigError(
            f"--kv-offload {config.method}: SGLang resolved CUDA graphs to decode {got[0]}, prefill {got[1]}; the "
            f"offload backend needs decode {want}, prefill disabled. Start the server with python -m "
            "sglang.launch_server (the plugin sets them) rather than the Engine API, and drop flags that "
            "change them")


def check_model_runner(config: OffloadConfig, model_runner) -> None:
    """Refuse model shapes the offload backend cannot serve (raises ConfigError in the scheduler)."""
    check_server_args(config, model_runner.server_args)
    if getattr(model_runner, "use_mla_backend", False):
        raise ConfigError(f"--kv-offload {config.method}: MLA models are not supported (dense MHA/GQA only)")
    if getattr(model_runner, "is_hybrid_swa", False) or getattr(model_runner, "sliding_window_size", None):
        raise ConfigError(f"--kv-offload {config.method}: sliding-window attention models are not supported")


def check_hooks_applied() -> None:
    """Every hook of ``plugin.HOOKS`` must be in place: SGLang only logs a hook that fails to
    apply, which would silently serve stock attention with ``--kv-offload`` on."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    from sglang_kv.plugin import HOOKS

    missing = [t for t in HOOKS if t not in HookRegistry._patched]
    if missing:
        raise ConfigError(f"--kv-offload: SGLang hooks were not applied: {', '.join(missing)} "
                          "(is the installed SGLang 0.5.17?)")
