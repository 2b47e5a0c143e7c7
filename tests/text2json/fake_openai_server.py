"""A minimal OpenAI-compatible chat server for the text2json eval/gate tests (standard library only).

It answers POST /v1/chat/completions with the gold answer of the dataset sample whose problem is the
user message, degraded as --behavior asks, and appends each request (headers and body) to --log.
--die-after N makes the process exit abruptly, without answering, on request N + 1 (a server that
dies mid-run). The bound port is written to --port-file once the server listens.

    python fake_openai_server.py --dataset DIR --port-file F [--behavior gold|drop-last|truncate|
        http400|http503] [--die-after N] [--delay S] [--log F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from text2json.data import load_records  # noqa: E402


def degrade(answer: str, behavior: str) -> tuple[str, str]:
    """(content, finish_reason) for a gold answer."""
    gold = json.loads(answer)
    if behavior == "drop-last":
        wrong = dict(gold[0])
        key = [k for k in wrong if k != "name"][0]
        wrong[key] = wrong[key] + " (approx.)"
        return json.dumps([wrong, *gold[1:-1]], ensure_ascii=False), "stop"
    if behavior == "truncate":
        return json.dumps(gold, ensure_ascii=False)[: len(answer) // 2], "length"
    return "Here is the list:\n" + json.dumps(gold, ensure_ascii=False), "stop"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--behavior", default="gold", choices=("gold", "drop-last", "truncate", "http400", "http503"))
    ap.add_argument("--die-after", type=int, default=None)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    answers = {r["problem"]: r["answer"] for r in load_records(args.dataset)}
    lock = threading.Lock()
    state = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["requests"] += 1
                n = state["requests"]
                if args.log:
                    with open(args.log, "a") as f:
                        f.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                                            "body": body}) + "\n")
            if args.die_after is not None and n > args.die_after:
                os._exit(3)
            time.sleep(args.delay)
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": "not found"})
            if args.behavior in ("http400", "http503"):
                return self._send(int(args.behavior[4:]), {"error": {"message": "prompt is too long"}})
            content, finish = degrade(answers[body["messages"][0]["content"]], args.behavior)
            self._send(200, {"id": f"c{n}", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": finish}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

        def _send(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(args.port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
