"""A fake streaming SGLang server for the load-test tests: no model, fixed per-token delays.

    python tests/loadtest/loadtest_fake_server.py [--port 0] [--ttft-delay 0.02] [--token-delay 0.005]

Prints ``PORT <n>`` once listening. Serves ``/v1/chat/completions`` (SSE chunks: a role-only
first chunk, one content chunk per token, a finish chunk, a usage-only chunk, ``[DONE]``) and
``/generate`` (SGLang's native stream: cumulative ``meta_info.completion_tokens``, token ids and no
text, as with ``--skip-tokenizer-init``), HTTP/1.1 chunked like uvicorn, plus ``/server_info``.
Every request generates exactly its token budget; the prompt length is its word or id count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_events(body: dict, num_prompt: int) -> Iterator[dict | str]:
    num_out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
    base = {"id": "fake", "object": "chat.completion.chunk", "model": body.get("model", "fake")}
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    for i in range(num_out):
        yield {**base, "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    yield {**base, "choices": [], "usage": {"prompt_tokens": num_prompt, "completion_tokens": num_out,
                                            "total_tokens": num_prompt + num_out,
                                            "prompt_tokens_details": {"cached_tokens": 0}}}
    yield "[DONE]"


def generate_events(body: dict, num_prompt: int) -> Iterator[dict | str]:
    num_out = int(body["sampling_params"]["max_new_tokens"])
    for i in range(1, num_out + 1):
        finish = {"type": "length", "length": num_out} if i == num_out else None
        yield {"output_ids": [i], "meta_info": {"prompt_tokens": num_prompt, "completion_tokens": i,
                                                "cached_tokens": 0, "finish_reason": finish}}
    yield "[DONE]"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ttft_delay = 0.0
    token_delay = 0.0

    def log_message(self, *args) -> None:  # keep test output readable
        pass

    def _send_json(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/server_info":
            self._send_json(200, {"fake": True, "token_delay": self.token_delay})
        else:
            self._send_json(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/chat/completions":
            num_prompt = len(body["messages"][-1]["content"].split())
            events = chat_events(body, num_prompt)
        elif self.path == "/generate":
            num_prompt = len(body["input_ids"]) if "input_ids" in body else len(body["text"].split())
            events = generate_events(body, num_prompt)
        else:
            self._send_json(404, {"error": f"no route {self.path}"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(self.ttft_delay)
        for i, event in enumerate(events):
            if i:
                time.sleep(self.token_delay)
            data = b"data: " + (event.encode() if isinstance(event, str) else json.dumps(event).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-delay", type=float, default=0.02, help="seconds before the first chunk")
    parser.add_argument("--token-delay", type=float, default=0.005, help="seconds between chunks")
    args = parser.parse_args()
    Handler.ttft_delay, Handler.token_delay = args.ttft_delay, args.token_delay
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
