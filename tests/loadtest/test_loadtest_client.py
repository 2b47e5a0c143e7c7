"""Stream parsing with a fake clock, request bodies, and error descriptions."""

from __future__ import annotations

import json

import pytest
import requests

from loadtest.client import (
    StreamError,
    chat_payload,
    describe_error,
    generate_payload,
    read_chat_stream,
    read_generate_stream,
)
from loadtest.prompts import Prompt


def sse(*events) -> list[bytes]:
    """SSE lines as requests' iter_lines yields them: data lines with blank separators."""
    lines = []
    for event in events:
        lines += [b"data: " + (event.encode() if isinstance(event, str) else json.dumps(event).encode()), b""]
    return lines


def clock(*times):
    """A clock returning the given times, one per call (one call per non-blank line)."""
    it = iter(times)
    return lambda: next(it)


def chat_chunk(content=None, finish=None, role=None):
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                                  "prompt_tokens_details": {"cached_tokens": 8}}}


def test_chat_stream_timings_follow_bench_serving():
    lines = sse(chat_chunk("", role="assistant"), chat_chunk("a"), chat_chunk("b"), chat_chunk("c"),
                chat_chunk(finish="length"), USAGE, "[DONE]")
    t = read_chat_stream(lines, start=10.0, clock=clock(10.1, 10.5, 10.7, 11.0, 11.1, 11.2, 11.3))
    assert t.ttft_s == pytest.approx(0.5)  # the role-only chunk has no content
    assert t.itl_s == pytest.approx((0.2, 0.3))
    assert t.e2e_s == pytest.approx(1.3)  # the [DONE] line ends the request
    assert (t.prompt_tokens, t.completion_tokens, t.cached_tokens) == (12, 3, 8)
    assert t.finish_reason == "length"


def test_chat_stream_counts_reasoning_content_and_skips_comments():
    lines = [b": keep-alive", *sse({"choices": [{"delta": {"reasoning_content": "hm"}}]}, chat_chunk("x"),
                                    USAGE, "[DONE]")]
    t = read_chat_stream(lines, start=0.0, clock=clock(1.0, 1.5, 1.6, 1.7))
    assert (t.ttft_s, t.itl_s, t.e2e_s) == (1.0, (0.5,), 1.7)


@pytest.mark.parametrize("events, message", [
    ((chat_chunk("a"), USAGE), "without \\[DONE\\]"),
    ((chat_chunk("a"), "[DONE]"), "no usage"),
    ((chat_chunk(""), USAGE, "[DONE]"), "no content chunk"),
    ((chat_chunk("a"), {"error": {"message": "out of memory"}}, "[DONE]"), "out of memory"),
    (("{not json",), "not JSON"),
])
def test_incomplete_chat_streams_raise(events, message):
    with pytest.raises(StreamError, match=message):
        read_chat_stream(sse(*events), start=0.0, clock=clock(*range(1, 10)))


def meta(num_tokens, finish=None):
    return {"output_ids": [7], "meta_info": {"prompt_tokens": 5, "completion_tokens": num_tokens,
                                             "cached_tokens": 2, "finish_reason": finish}}


def test_generate_stream_spreads_multi_token_chunks():
    lines = sse(meta(1), meta(3), meta(3), meta(4, {"type": "length", "length": 4}), "[DONE]")
    t = read_generate_stream(lines, start=0.0, clock=clock(0.5, 1.1, 1.2, 1.5, 1.6))
    assert t.ttft_s == 0.5
    # 2 tokens after 0.6 s -> two ITLs of 0.3; a repeated count adds none; then 1 token after 0.4 s
    assert t.itl_s == pytest.approx((0.3, 0.3, 0.4))
    assert (t.prompt_tokens, t.completion_tokens, t.cached_tokens, t.finish_reason) == (5, 4, 2, "length")
    assert t.e2e_s == 1.6


def test_generate_stream_without_tokens_raises():
    with pytest.raises(StreamError, match="no chunk with completion tokens"):
        read_generate_stream(sse(meta(0), "[DONE]"), start=0.0, clock=clock(1, 2))


def test_payloads():
    text = Prompt("hello there", None, 64, ignore_eos=False)
    body = chat_payload(text, "m")
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert (body["max_completion_tokens"], body["temperature"], body["ignore_eos"]) == (64, 0.0, False)
    assert body["stream"] and body["stream_options"] == {"include_usage": True}
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    ids = Prompt(None, (11, 12), 8, ignore_eos=True)
    assert generate_payload(ids) == {"input_ids": [11, 12], "stream": True, "sampling_params": {
        "temperature": 0.0, "max_new_tokens": 8, "ignore_eos": True}}
    assert generate_payload(text)["text"] == "hello there"
    with pytest.raises(ValueError, match="--endpoint generate"):
        chat_payload(ids, "m")


def test_describe_error_names_the_root_cause():
    try:
        requests.get("http://127.0.0.1:1/", timeout=2)
    except requests.RequestException as exc:
        text = describe_error(exc)
    assert text.startswith("ConnectionError: NewConnectionError: ") and "refused" in text
    assert describe_error(StreamError("HTTP 500: x")) == "StreamError: HTTP 500: x"
