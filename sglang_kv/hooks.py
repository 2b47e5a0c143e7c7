"""Bodies of the SGLang hooks that ``plugin.register`` installs (targets named there).

Each function here is the whole change sglang-kv makes to one SGLang function; all of them are
inert when ``--kv-offload`` is absent or ``none``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from typing import NoReturn

import torch

from sglang_kv.config import ENV_VAR, ConfigError, OffloadConfig, format_flags_help, split_argv

logger = logging.getLogger("sglang_kv")


@functools.cache
def process_config() -> OffloadConfig:
    """The config this process serves with (handed down by the launcher through the environment)."""
    return OffloadConfig.from_env()


def _fail(message: str) -> NoReturn:
    print(f"sglang-kv: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def prepare_server_args(original, argv, *args, **kwargs):
    """AROUND ``sglang.srt.server_args.prepare_server_args``: take our flags out of argv, validate
    them, check the server arguments they need, and hand the config to the scheduler processes."""
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        print(format_flags_help())
    try:
        ours, rest = split_argv(argv)
        config = OffloadConfig.from_flags(ours)
    except ConfigError as e:
        _fail(str(e))
    if not config.enabled:
        os.environ.pop(ENV_VAR, None)
        return original(rest, *args, **kwargs)
    from sglang_kv.compat import check_hooks_applied, check_server_args, cuda_graph_argv

    try:
        check_hooks_applied()
        rest = cuda_graph_argv(config, rest)
    except ConfigError as e:
        _fail(str(e))
    server_args = original(rest, *args, **kwargs)
    try:
        check_server_args(config, server_args)
    except ConfigError as e:
        _fail(str(e))
    os.environ[ENV_VAR] = config.to_json()
    process_config.cache_clear()
    logger.info("sglang-kv: KV offload enabled: %s", config)
    return server_args


def build_attention_backend(original, *args, **kwargs):
    """AROUND the factory of one full-attention backend: wrap it with the offload backend."""
    inner = original(*args, **kwargs)
    config = process_config()
    model_runner = kwargs.get("model_runner", args[0] if args else None)
    if not config.enabled or model_runner is None or getattr(model_runner, "is_draft_worker", False):
        return inner
    from sglang_kv.backend import OffloadAttnBackend
    from sglang_kv.compat import check_model_runner

    check_model_runner(config, model_runner)
    logger.info("sglang-kv: wrapping attention backend %s with --kv-offload %s",
                type(inner).__name__, config.method)
    return OffloadAttnBackend(inner, model_runner, config)


def on_req_free(result, pool, req, *args, **kwargs):
    """AFTER ``ReqToTokenPool.free``: release the request's offload state (finish, abort, retract)."""
    if process_config().enabled:
        from sglang_kv.backend import RUNTIMES

        for runtime in list(RUNTIMES):
            if runtime.req_to_token_pool is pool:
                runtime.release(req.rid)
    return result


def on_req_pool_clear(result, pool, *args, **kwargs):
    """AFTER ``ReqToTokenPool.clear`` (cache flush): drop every request's state."""
    if process_config().enabled:
        from sglang_kv.backend import RUNTIMES

        for runtime in list(RUNTIMES):
            if runtime.req_to_token_pool is pool:
                runtime.release_all()
    return result


def add_internal_state(result, scheduler, *args, **kwargs):
    """AFTER ``Scheduler.get_internal_state``: report the plugin's accounting under ``kv_offload``
    (``GET /server_info`` -> ``internal_states[i]["kv_offload"]``)."""
    config = process_config()
    if config.enabled:
        runtime = getattr(scheduler.tp_worker.model_runner, "_sglang_kv_runtime", None)
        snapshot = runtime.snapshot() if runtime is not None else {}
        result.internal_state["kv_offload"] = {"method": config.method, **snapshot}
    return result


def mark_prompt_rows(result, *args, **kwargs):
    """AFTER ``ForwardBatch.init_new``: note the requests whose prompt this extend pass completes
    (``backend.PROMPTS_COMPLETING``). Only the scheduler's ``Req`` knows whether more prefill
    chunks follow; the backend needs that to offload a prompt in the pass that completes it."""
    if not process_config().enabled or not result.forward_mode.is_extend():
        return result
    batch = kwargs.get("batch", args[1] if len(args) > 1 else None)
    from sglang_kv.backend import PROMPTS_COMPLETING

    for req in batch.reqs:
        # A decode row of a mixed batch has output tokens; a prompt row has none until it completes.
        end = req.extend_range.end
        if not req.output_ids and end == len(req.full_untruncated_fill_ids):
            PROMPTS_COMPLETING[req.rid] = end
    return result


def abort_failed_requests(scheduler, batch, *args, **kwargs):
    """BEFORE ``Scheduler.process_batch_result``: finish the requests the offload path could not
    serve (``backend.FAILED_REQUESTS``) with their error instead of a result."""
    if process_config().enabled:
        from sglang_kv.backend import FAILED_REQUESTS

        if FAILED_REQUESTS:
            from http import HTTPStatus

            from sglang.srt.managers.schedule_batch import FINISH_ABORT

            for req in batch.reqs:
                message = FAILED_REQUESTS.get(req.rid)
                if message is not None and not req.finished():
                    req.to_finish = FINISH_ABORT(f"kv-offload: {message}", HTTPStatus.SERVICE_UNAVAILABLE,
                                                 "ServiceUnavailableError")
    return None


def fused_kv_write(original, forward_batch, *args, **kwargs):
    """AROUND ``models.utils.enable_fused_set_kv_buffer``: off under the tiered KV pool.

    The fused RoPE + KV store some models use on CUDA (Qwen3-MoE, GPT-OSS, ...) writes K/V at the
    batch's token slots directly, past ``TieredKVPool.set_kv_buffer``, which translates slots to
    exact rows. Slots outnumber rows, so those writes land out of bounds (an illegal address in the
    first Qwen3-30B-A3B server run). Turned off, the model hands K/V to the attention backend, which
    stores them through the pool; the values are the same."""
    from sglang.srt.model_executor import forward_context

    from sglang_kv.store.device import TieredKVPool

    if isinstance(forward_context.get_token_to_kv_pool(), TieredKVPool):
        return False
    return original(forward_batch, *args, **kwargs)


def _offloads(kvc) -> bool:
    return process_config().enabled and not getattr(kvc, "is_draft_worker", False)


def config_from_budget(original, kvc, budget_bytes, *args, **kwargs):
    """AROUND ``KVCacheConfigurator.config_from_budget``: size the token slots from the compressed
    per-token bytes instead of the stock K+V bytes (``capacity.make_plan``), and log both."""
    config = original(kvc, budget_bytes, *args, **kwargs)
    if not _offloads(kvc):
        return config
    from sglang.srt.model_executor.pool_configurator import create_memory_pool_configurator
    from sglang.srt.runtime_context import get_schedule

    from sglang_kv import capacity
    from sglang_kv.backend import attn_tp_size, make_offload_selector, model_shape

    cfg = process_config()
    num_layers = kvc.layer_info.num_effective_layers
    selector = make_offload_selector(cfg, model_shape(kvc.model_config), kvc.model_config.hf_config)
    plan = capacity.make_plan(
        cfg, selector, num_layers=num_layers,
        exact_bytes_per_token=capacity.exact_bytes_per_token(kvc.model_config, kvc.kv_cache_dtype, num_layers,
                                                             attn_tp_size()),
        budget_bytes=budget_bytes, stock_tokens=config.max_total_num_tokens,
        user_cap=get_schedule().max_total_tokens,
    )
    logger.info("sglang-kv: %s", plan.describe(cfg.method))
    return create_memory_pool_configurator(kvc).calculate_pool_sizes_from_max_tokens(plan.slots, 1)


def build_mha_kv_pool(original, kvc, *args, **kwargs):
    """AROUND ``KVCacheConfigurator._build_mha_kv_pool``: the tiered pool (slots over exact rows)."""
    from sglang_kv import capacity

    plan = capacity.current_plan()
    if not _offloads(kvc) or plan is None:
        return original(kvc, *args, **kwargs)
    from sglang_kv.kernels.attention import FLOAT_DTYPES  # the pool dtypes the decode attention reads

    if kwargs.get("quant_method") is not None or kvc.kv_cache_dtype not in FLOAT_DTYPES:
        raise ConfigError(f"--kv-offload {process_config().method}: --kv-cache-dtype {kvc.kv_cache_dtype_str} "
                          "is not supported")
    from sglang_kv.store.device import TieredKVPool

    def tiered_pool(size, **pool_kwargs):
        return TieredKVPool(size, plan.rows, **pool_kwargs)

    kwargs["mha_pool_class"] = tiered_pool
    return original(kvc, *args, **kwargs)


def build_token_allocator(original, kvc, *args, **kwargs):
    """AROUND ``KVCacheConfigurator._build_token_to_kv_pool_allocator``: the tiered allocator."""
    from sglang_kv.store.device import TieredKVPool, TieredTokenAllocator

    pool = kwargs.get("token_to_kv_pool")
    if not isinstance(pool, TieredKVPool) or kwargs.get("token_to_kv_pool_allocator") is not None:
        return original(kvc, *args, **kwargs)
    return TieredTokenAllocator(kwargs["sizes"].max_total_num_tokens, dtype=kvc.kv_cache_dtype,
                                device=kvc.device, kvcache=pool, need_sort=False)


def _offload_bound(cache, req) -> bool:
    """Whether ``req``'s prompt is (or will be) offloaded under the tiered pool: its own tokens then
    stay out of the radix cache (they lose their exact rows)."""
    from sglang_kv.store.device import TieredTokenAllocator

    if not process_config().enabled or not isinstance(cache.token_to_kv_pool_allocator, TieredTokenAllocator):
        return False
    cfg = process_config()
    prompt_len = len(req.origin_input_ids) + len(req.output_ids)
    return prompt_len >= max(cfg.min_prompt, 1) and prompt_len - cfg.local > min(cfg.sink, prompt_len)


def cache_unfinished_req(original, cache, req, *args, **kwargs):
    """AROUND ``RadixCache.cache_unfinished_req`` (after each prefill chunk): an offload-bound
    request keeps its chunks to itself, as SGLang's ChunkCache does, instead of inserting them."""
    if not _offload_bound(cache, req):
        return original(cache, req, *args, **kwargs)
    row = cache.req_to_token_pool.req_to_token[req.req_pool_idx, : req.extend_range.end]
    req.prefix_indices = row.to(dtype=torch.int64, copy=True)
    return None


def cache_finished_req(original, cache, req, *args, **kwargs):
    """AROUND ``RadixCache.cache_finished_req``: an offload-bound request's own tokens are freed,
    not inserted (``is_insert=False``); the cached prefix it reused stays in the tree."""
    if _offload_bound(cache, req):
        kwargs["is_insert"] = False
        args = ()
    return original(cache, req, *args, **kwargs)


def worker_info(result, worker, *args, **kwargs):
    """AFTER ``TpModelWorker.get_worker_info``: under the tiered pool a prompt must fit in the exact
    rows while it is prefilled, so the longest request is bounded by them (SGLang then rejects
    longer inputs with its usual error)."""
    from sglang_kv.store.device import TieredKVPool

    pool = worker.model_runner.token_to_kv_pool
    if not isinstance(pool, TieredKVPool):
        return result
    info = list(result)
    max_req_len = min(info[4], pool.num_rows - 1)
    info[4], info[5] = max_req_len, max_req_len - 5
    return tuple(info)


def replay_batch_rids(result, *args, **kwargs):
    """AFTER ``decode_cuda_graph_runner.build_replay_fb_view``: the view of a CUDA graph's padded
    batch, which the attention backend plans from before each replay, also carries the live
    batch's request ids (the offload state is keyed by them; the view has none)."""
    if process_config().enabled:
        forward_batch = kwargs["forward_batch"] if "forward_batch" in kwargs else args[0]
        result.rids = forward_batch.rids
    return result


def _logits_output_fields(output) -> dict[str, torch.Tensor] | None:
    """The tensor fields of a LogitsProcessorOutput (None for any other output, or without
    --kv-offload: SGLang's own handling then applies)."""
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput

    if not isinstance(output, LogitsProcessorOutput) or not process_config().enabled:
        return None
    return {f.name: getattr(output, f.name) for f in dataclasses.fields(output) if torch.is_tensor(getattr(output, f.name))}


# SGLang 0.5.17's breakable decode graphs keep the forward's output in a shared buffer, but the
# backend's three buffer functions know only tensors, tuples, lists and PPProxyTensors, so a
# language model's decode output (LogitsProcessorOutput) fails the capture with "Unsupported BCG
# output type". The three hooks below treat it as the structure of its tensor fields.
def graph_output_alloc(original, backend, output, size):
    """AROUND ``BreakableCudaGraphBackend._alloc_full_buffer``: see above."""
    fields = _logits_output_fields(output)
    if fields is None:
        return original(backend, output, size)
    return dataclasses.replace(output, **{k: original(backend, t, size) for k, t in fields.items()})


def graph_output_copy(original, backend, output, output_buffer, num_tokens):
    """AROUND ``BreakableCudaGraphBackend._copy_output_to_buffer``: see above."""
    fields = _logits_output_fields(output)
    if fields is None:
        return original(backend, output, output_buffer, num_tokens)
    for name, tensor in fields.items():
        original(backend, tensor, getattr(output_buffer, name), num_tokens)
    return None


def graph_output_slice(original, backend, output, num_tokens):
    """AROUND ``BreakableCudaGraphBackend._slice_output``: see above."""
    fields = _logits_output_fields(output)
    if fields is None:
        return original(backend, output, num_tokens)
    return dataclasses.replace(output, **{k: original(backend, t, num_tokens) for k, t in fields.items()})


def check_full_pool(original, checker, ps, *args, **kwargs):
    """AROUND ``SchedulerInvariantChecker._check_full_pool``: the idle leak check counts free *slots* (the
    allocator reports min(free slots, free exact rows) as available)."""
    from sglang_kv.store.device import TieredTokenAllocator

    allocator = checker.token_to_kv_pool_allocator
    if isinstance(allocator, TieredTokenAllocator):
        import dataclasses

        ps = dataclasses.replace(ps, full_available_size=allocator.free_slots())
    return original(checker, ps, *args, **kwargs)
