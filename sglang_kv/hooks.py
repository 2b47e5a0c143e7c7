"""Bodies of the SGLang hooks that ``plugin.register`` installs (targets named there).

Each function here is the whole change sglang-kv makes to one SGLang function; all of them are
inert when ``--kv-offload`` is absent or ``none``.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from sglang_kv.config import ENV_VAR, ConfigError, OffloadConfig, format_flags_help, split_argv

logger = logging.getLogger("sglang_kv")


@functools.cache
def process_config() -> OffloadConfig:
    """The config this process serves with (handed down by the launcher through the environment)."""
    return OffloadConfig.from_env()


def _fail(message: str) -> "NoReturn":  # noqa: F821
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
    from sglang_kv.compat import check_hooks_applied, check_server_args, disable_cuda_graphs

    try:
        check_hooks_applied()
        rest = disable_cuda_graphs(config, rest)
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
