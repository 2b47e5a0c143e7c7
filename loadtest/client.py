"""Streaming requests to an SGLang server and their timing, with bench_serving's rules.

``read_chat_stream`` / ``read_generate_stream`` turn the lines of a server-sent-events stream into
timings and token counts; they take the clock as an argument so tests can drive them with a fake
one. ``send`` posts one request with ``requests`` (cooperative under Locust's gevent) and returns
a :class:`~loadtest.records.RequestRecord`, successful or failed; it never raises for a server or
network problem, so one bad response cannot stop a simulated user.

Timing rules (``async_request_openai_chat_completions`` and ``async_request_sglang_generate``):
TTFT = send -> first chunk carrying output; e2e = send -> last stream line (``[DONE]``); chat ITLs
are the gaps between content chunks after the first; ``/generate`` ITLs are the gaps divided
evenly over the tokens a chunk adds (``meta_info.completion_tokens``), which also works for
servers started with ``--skip-tokenizer-init`` that stream token ids and no text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import requests

from loadtest.prompts import Prompt
from loadtest.records import RequestRecord

PATHS = {"chat": "/v1/chat/completions", "generate": "/generate"}
MAX_ERROR_LEN = 300


class StreamError(Exception):
    """The server answered, but the stream is not a complete, well-formed response."""


class StreamTiming(NamedTuple):
    ttft_s: float
    e2e_s: float
    itl_s: tuple[float, ...]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    finish_reason: str


def _sse_payloads(lines: Iterable[bytes]) -> Iterable[bytes]:
    """The data of each ``data:`` line; blank lines and SSE comments (``:``) are skipped."""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b":"):
            continue
        if line.startswith(b"data:"):
            line = line[5:].lstrip()
        yield line


def _json_chunk(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError:
        raise StreamError(f"not JSON: {payload[:100]!r}") from None
    if not isinstance(data, dict):
        raise StreamError(f"not a JSON object: {payload[:100]!r}")
    if data.get("error"):
        raise StreamError(f"server error in stream: {json.dumps(data['error'])[:200]}")
    return data


def read_chat_stream(lines: Iterable[bytes], start: float,
                     clock: Callable[[], float] = time.perf_counter) -> StreamTiming:
    """Timings of a streamed ``/v1/chat/completions`` response (usage in the final chunk).

    Raises :class:`StreamError` when the stream has an error chunk, no content, no usage or no
    ``[DONE]``: such a response cannot give the numbers a summary needs.
    """
    ttft: float | None = None
    last = start
    e2e = 0.0
    itls: list[float] = []
    usage: dict[str, Any] | None = None
    finish_reason = ""
    done = False
    for payload in _sse_payloads(lines):
        now = clock()
        e2e = now - start
        if payload == b"[DONE]":
            done = True
            continue
        data = _json_chunk(payload)
        usage = data.get("usage") or usage
        choices = data.get("choices") or []
        if not choices:
            continue
        finish_reason = choices[0].get("finish_reason") or finish_reason
        delta = choices[0].get("delta") or {}
        if delta.get("content") or delta.get("reasoning_content"):
            if ttft is None:
                ttft = now - start
            else:
                itls.append(now - last)
            last = now
    if not done:
        raise StreamError("stream ended without [DONE]")
    if ttft is None:
        raise StreamError("stream had no content chunk, so no TTFT")
    if usage is None:
        raise StreamError("stream had no usage (the server must honour stream_options.include_usage)")
    details = usage.get("prompt_tokens_details") or {}
    return StreamTiming(ttft, e2e, tuple(itls), int(usage.get("prompt_tokens", 0)),
                        int(usage.get("completion_tokens", 0)), int(details.get("cached_tokens") or 0),
                        finish_reason)


def read_generate_stream(lines: Iterable[bytes], start: float,
                         clock: Callable[[], float] = time.perf_counter) -> StreamTiming:
    """Timings of a streamed SGLang ``/generate`` response (``meta_info`` in every chunk).

    A chunk carries output when ``meta_info.completion_tokens`` grows; a chunk adding k tokens
    after the first contributes k ITLs of gap / k. Raises :class:`StreamError` like
    :func:`read_chat_stream`.
    """
    ttft: float | None = None
    last = start
    e2e = 0.0
    itls: list[float] = []
    meta: dict[str, Any] = {}
    num_tokens = 0
    done = False
    for payload in _sse_payloads(lines):
        now = clock()
        e2e = now - start
        if payload == b"[DONE]":
            done = True
            continue
        meta = _json_chunk(payload).get("meta_info") or meta
        num_new = int(meta.get("completion_tokens", 0)) - num_tokens
        if num_new <= 0:
            continue
        if ttft is None:
            ttft = now - start
        else:
            itls.extend([(now - last) / num_new] * num_new)
        last = now
        num_tokens += num_new
    if not done:
        raise StreamError("stream ended without [DONE]")
    if ttft is None:
        raise StreamError("stream had no chunk with completion tokens, so no TTFT")
    finish = meta.get("finish_reason") or {}
    return StreamTiming(ttft, e2e, tuple(itls), int(meta.get("prompt_tokens", 0)), num_tokens,
                        int(meta.get("cached_tokens") or 0),
                        finish.get("type", "") if isinstance(finish, dict) else str(finish))


def describe_error(exc: BaseException) -> str:
    """``Type: message``, naming the root cause of a connection error rather than urllib3's retry wrapper."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3 MaxRetryError
    if isinstance(exc, requests.ConnectionError) and reason is not None:
        return f"{type(exc).__name__}: {type(reason).__name__}: {reason}"[:MAX_ERROR_LEN]
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LEN]


def chat_payload(prompt: Prompt, model: str) -> dict[str, Any]:
    """bench_serving's chat body: greedy, streamed with usage, thinking off (text2json convention)."""
    if prompt.text is None:
        raise ValueError("the chat endpoint needs text prompts; token-id prompts go to --endpoint generate")
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt.text}],
        "max_completion_tokens": prompt.max_tokens,
        "temperature": 0.0,
        "ignore_eos": prompt.ignore_eos,
        "stream": True,
        "stream_options": {"include_usage": True},
        "chat_template_kwargs": {"enable_thinking": False},
    }


def generate_payload(prompt: Prompt) -> dict[str, Any]:
    """SGLang's native body: token ids (``--skip-tokenizer-init`` servers) or text, streamed."""
    body: dict[str, Any] = {"input_ids": list(prompt.input_ids)} if prompt.input_ids is not None \
        else {"text": prompt.text}
    body["sampling_params"] = {"temperature": 0.0, "max_new_tokens": prompt.max_tokens,
                               "ignore_eos": prompt.ignore_eos}
    body["stream"] = True
    return body


def send(session: requests.Session, base_url: str, endpoint: str, prompt: Prompt, *, model: str,
         timeout: tuple[float, float], stage: str = "", worker: str = "") -> tuple[RequestRecord, int]:
    """POST one streamed request; returns its record and the number of bytes received.

    ``timeout`` is (connect, read) in seconds; the read timeout bounds every wait for the next
    bytes, so a hung server turns into a failed record instead of a hung user.
    """
    payload = chat_payload(prompt, model) if endpoint == "chat" else generate_payload(prompt)
    read_stream = read_chat_stream if endpoint == "chat" else read_generate_stream
    num_bytes = 0

    def counted(lines: Iterable[bytes]) -> Iterable[bytes]:
        nonlocal num_bytes
        for line in lines:
            num_bytes += len(line) + 1
            yield line

    start_time = time.time()
    start = time.perf_counter()
    try:
        with session.post(base_url.rstrip("/") + PATHS[endpoint], json=payload, stream=True,
                          timeout=timeout) as resp:
            if resp.status_code != 200:
                raise StreamError(f"HTTP {resp.status_code}: {resp.text[:200]}")
            # chunk_size=None hands over each HTTP chunk as it arrives (SGLang streams chunked)
            timing = read_stream(counted(resp.iter_lines(chunk_size=None)), start)
    except (requests.RequestException, OSError, StreamError) as exc:
        error = describe_error(exc)
        record = RequestRecord(endpoint=endpoint, start_time=start_time, success=False,
                               e2e_s=time.perf_counter() - start, stage=stage, worker=worker, error=error)
        return record, num_bytes
    record = RequestRecord(endpoint=endpoint, start_time=start_time, success=True, e2e_s=timing.e2e_s,
                           ttft_s=timing.ttft_s, itl_s=timing.itl_s, prompt_tokens=timing.prompt_tokens,
                           completion_tokens=timing.completion_tokens, cached_tokens=timing.cached_tokens,
                           stage=stage, worker=worker, finish_reason=timing.finish_reason)
    return record, num_bytes
