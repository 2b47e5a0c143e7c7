"""SGLang plugin entry point (group ``sglang.srt.plugins``): registers sglang-kv's hooks; nothing else.

SGLang calls ``register()`` in the launcher and in every scheduler process. A plugin that raises
is only logged by SGLang, so this function does no work that can fail: it names hook targets and
their bodies (``sglang_kv.hooks``); the launcher-side hook then verifies that every hook was
applied before it accepts ``--kv-offload`` (``compat.check_hooks_applied``).
"""

from __future__ import annotations

# target (dotted path in SGLang 0.5.17) -> (hook body in sglang_kv.hooks, hook type name)
HOOKS: dict[str, tuple[str, str]] = {
    "sglang.srt.server_args.prepare_server_args": ("prepare_server_args", "AROUND"),
    "sglang.srt.model_executor.model_runner_components.attention_backend_setup."
    "_build_full_attention_backend_from_str": ("build_attention_backend", "AROUND"),
    "sglang.srt.mem_cache.memory_pool.ReqToTokenPool.free": ("on_req_free", "AFTER"),
    "sglang.srt.mem_cache.memory_pool.ReqToTokenPool.clear": ("on_req_pool_clear", "AFTER"),
    "sglang.srt.managers.scheduler.Scheduler.get_internal_state": ("add_internal_state", "AFTER"),
    "sglang.srt.model_executor.forward_batch_info.ForwardBatch.init_new": ("mark_prompt_rows", "AFTER"),
    "sglang.srt.managers.scheduler.Scheduler.process_batch_result": ("abort_failed_requests", "BEFORE"),
    "sglang.srt.mem_cache.kv_cache_configurator.KVCacheConfigurator.config_from_budget": (
        "config_from_budget", "AROUND"),
    "sglang.srt.mem_cache.kv_cache_configurator.KVCacheConfigurator._build_mha_kv_pool": (
        "build_mha_kv_pool", "AROUND"),
    "sglang.srt.mem_cache.kv_cache_configurator.KVCacheConfigurator._build_token_to_kv_pool_allocator": (
        "build_token_allocator", "AROUND"),
    "sglang.srt.mem_cache.radix_cache.RadixCache.cache_unfinished_req": ("cache_unfinished_req", "AROUND"),
    "sglang.srt.mem_cache.radix_cache.RadixCache.cache_finished_req": ("cache_finished_req", "AROUND"),
    "sglang.srt.managers.tp_worker.TpModelWorker.get_worker_info": ("worker_info", "AFTER"),
    "sglang.srt.models.utils.enable_fused_set_kv_buffer": ("fused_kv_write", "AROUND"),
    "sglang.srt.model_executor.runner.decode_cuda_graph_runner.build_replay_fb_view": (
        "replay_batch_rids", "AFTER"),
    **{f"sglang.srt.model_executor.runner_backend.breakable_cuda_graph_backend.BreakableCudaGraphBackend.{name}": (
        body, "AROUND") for name, body in (("_alloc_full_buffer", "graph_output_alloc"),
                                           ("_copy_output_to_buffer", "graph_output_copy"),
                                           ("_slice_output", "graph_output_slice"))},
    "sglang.srt.managers.scheduler_components.invariant_checker.SchedulerInvariantChecker._check_full_pool": (
        "check_full_pool", "AROUND"),
}


def register() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    from sglang_kv import hooks

    for target, (body, hook_type) in HOOKS.items():
        HookRegistry.register(target, getattr(hooks, body), HookType[hook_type])
