"""Run a dataset against an OpenAI-compatible chat endpoint (SGLang, vLLM, OpenAI...).

One request per sample: a single user turn with the sample's ``problem``, temperature 0 sent
explicitly (SGLang otherwise takes sampling defaults from the model's generation config),
``max_tokens`` 1024, and ``chat_template_kwargs: {"enable_thinking": false}`` in the request body
(what the OpenAI client sends as ``extra_body``). Requests run concurrently; connection errors,
timeouts, 408/409/429 and 5xx are retried with exponential backoff; other HTTP errors are not.

Every finished sample is appended to the results file at once (:mod:`text2json.results`). When a
sample exhausts its retries the run stops with :class:`EvalAborted`, keeping everything finished; the
same command then resumes with the samples still missing. ``on_error="record"`` instead records the
failed sample with an ``error`` field (it scores 0) and goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from text2json.provenance import git_commit, machine
from text2json.results import ResultsWriter, dataset_fingerprint, read_results
from text2json.score import score_sample

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Settings that must match for a results file to be resumed.
_RESUME_KEYS = ("dataset_fingerprint", "model", "temperature", "max_tokens", "chat_template_kwargs")


@dataclass(frozen=True)
class EvalConfig:
    base_url: str  # ends in /v1
    model: str
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 5
    retry_backoff_s: float = 1.0  # first wait; doubles per retry, capped at 60 s
    timeout_s: float = 900.0  # per request
    temperature: float = 0.0
    max_tokens: int = 1024
    disable_thinking: bool = True
    on_error: str = "abort"  # or "record"

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"--max-retries must be >= 0, got {self.max_retries}")
        if self.on_error not in ("abort", "record"):
            raise ValueError(f"--on-error must be 'abort' or 'record', got {self.on_error!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {self.base_url!r}")

    @property
    def chat_template_kwargs(self) -> dict | None:
        return {"enable_thinking": False} if self.disable_thinking else None

    def request_body(self, problem: str) -> dict:
        body = {"model": self.model, "messages": [{"role": "user", "content": problem}],
                "temperature": self.temperature, "max_tokens": self.max_tokens, "stream": False}
        if self.chat_template_kwargs is not None:
            body["chat_template_kwargs"] = self.chat_template_kwargs
        return body


class EvalAborted(RuntimeError):
    """A sample failed for good; finished samples are kept in the results file."""


class _RequestFailed(Exception):
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class EvalOutcome:
    num_total: int
    num_done_before: int  # samples already in the results file when the run started
    num_done_now: int
    num_errors: int  # recorded with on_error="record"
    score: float | None  # 100 x mean paper score over every finished sample in the file


async def _post(session, cfg: EvalConfig, problem: str) -> dict:
    import aiohttp

    url = cfg.base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    try:
        async with session.post(url, json=cfg.request_body(problem), headers=headers) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise _RequestFailed(f"HTTP {resp.status} from {url}: {text[:300]}", resp.status in RETRY_STATUS)
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
        raise _RequestFailed(f"{type(e).__name__} talking to {url}: {e}", True) from None
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        return {"prediction": choice["message"].get("content") or "",
                "finish_reason": choice.get("finish_reason"),
                "prompt_tokens": (data.get("usage") or {}).get("prompt_tokens"),
                "completion_tokens": (data.get("usage") or {}).get("completion_tokens")}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise _RequestFailed(f"unexpected response from {url}: {text[:300]}", False) from None


async def _run_one(session, cfg: EvalConfig, record: dict) -> dict:
    attempt = 0
    while True:
        attempt += 1
        start = time.perf_counter()
        try:
            out = await _post(session, cfg, record["problem"])
        except _RequestFailed as e:
            if not e.retryable or attempt > cfg.max_retries:
                raise _RequestFailed(f"sample {record['id']}: gave up after {attempt} attempt(s): {e}",
                                     e.retryable) from None
            await asyncio.sleep(min(60.0, cfg.retry_backoff_s * 2 ** (attempt - 1)))
            continue
        return {"latency_s": round(time.perf_counter() - start, 3), "attempts": attempt, **out}


def _row(record: dict, result: dict) -> dict:
    return {"id": record["id"], "index": record.get("index"), "domain": record.get("domain"),
            "num_tokens": record.get("num_tokens"), "answer": record["answer"], **result}


async def _run(records: list[dict], cfg: EvalConfig, writer: ResultsWriter, progress, scores: list[float]) -> int:
    import aiohttp

    queue: asyncio.Queue = asyncio.Queue()
    for r in records:
        queue.put_nowait(r)
    num_errors = 0

    async def worker(session):
        nonlocal num_errors
        while True:
            try:
                record = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                result = await _run_one(session, cfg, record)
            except _RequestFailed as e:
                if cfg.on_error == "abort":
                    raise
                num_errors += 1
                result = {"prediction": "", "finish_reason": None, "error": str(e)}
            writer.write(_row(record, result))
            scores.append(score_sample(result["prediction"], record["answer"], "paper"))
            progress.update(1)
            progress.set_postfix(score=f"{100 * sum(scores) / len(scores):.2f}", errors=num_errors)

    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
    connector = aiohttp.TCPConnector(limit=cfg.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.create_task(worker(session)) for _ in range(min(cfg.concurrency, len(records)))]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in done if t.exception() is not None]
            if failed:
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise failed[0].exception()
        finally:
            for t in tasks:
                t.cancel()
    return num_errors


def run_eval(records: list[dict], cfg: EvalConfig, out_path: str | Path, command: str = "",
             show_progress: bool = True) -> EvalOutcome:
    """Evaluate ``records`` into ``out_path``, resuming a previous run of the same settings."""
    from tqdm import tqdm

    out_path = Path(out_path)
    meta = {"dataset_fingerprint": dataset_fingerprint(records), "num_samples": len(records),
            "model": cfg.model, "base_url": cfg.base_url, "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens, "chat_template_kwargs": cfg.chat_template_kwargs,
            "concurrency": cfg.concurrency, "command": command, "commit": git_commit(), "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    done_rows: list[dict] = []
    if out_path.exists() and out_path.stat().st_size:
        old_meta, done_rows = read_results(out_path, repair=True)
        mismatched = [k for k in _RESUME_KEYS if old_meta.get(k) != meta[k]]
        if mismatched:
            raise ValueError(f"{out_path} holds a run with different {', '.join(mismatched)} "
                             f"(file: {[old_meta.get(k) for k in mismatched]}, now: {[meta[k] for k in mismatched]}); "
                             "pass another --out or delete the file")
    done_ids = {r["id"] for r in done_rows}
    todo = [r for r in records if r["id"] not in done_ids]
    scores = [score_sample(r.get("prediction"), r["answer"], "paper") for r in done_rows]
    writer = ResultsWriter(out_path, meta)
    progress = tqdm(total=len(records), initial=len(records) - len(todo), desc="text2json eval", unit="sample",
                    disable=not show_progress)
    try:
        num_errors = asyncio.run(_run(todo, cfg, writer, progress, scores)) if todo else 0
    except _RequestFailed as e:
        finished = len(scores)
        raise EvalAborted(f"{e}\n{finished}/{len(records)} samples are finished and kept in {out_path}; "
                          "run the same command again to resume") from None
    finally:
        progress.close()
        writer.close()
    return EvalOutcome(len(records), len(done_ids), len(todo), num_errors,
                       100 * sum(scores) / len(scores) if scores else None)
