"""Logit fidelity through the server: ``python -m sglang_kv.bench logits``.

For every ``--kv-offload`` method and budget, on the same long chat prompts, against stock SGLang
(same server flags without ``--kv-offload``):

* greedy: ``max_new_tokens`` tokens (temperature 0, ``ignore_eos``) per prompt; ``agree`` is the
  fraction of positions where the offloaded server's token equals stock's, ``first_divergence`` the
  first position where they differ (``max_new_tokens`` when they never do).
* teacher-forced: the server is made to emit stock's greedy continuation token by token, through
  ordinary decode steps (so every step after the first runs the offloaded server's sparse decode
  path), and the model's full next-token distribution is read at each step. Per decode step
  ``t >= 1`` (step 0 comes from the exact prefill and is reported apart as ``prefill_kl_max``):
  ``top1``: argmax of the offloaded distribution equals stock's (``torch.argmax``, the greedy
  sampler's rule, ties to the lower id); ``kl``: KL(P_stock || P_offload) in nats over the whole
  vocabulary, ``sum_v p(v) (log p(v) - log q(v))``, from float32 log-softmax of the logits;
  ``nll``: mean negative log-likelihood of the forced (stock greedy) tokens.

How the distribution is read. SGLang computes ``return_logprob`` / ``top_logprobs`` *after* a
custom logit processor has rewritten the logits (``Sampler._preprocess_logits``), so a processor
that forces a token also destroys the logprobs SGLang returns. ``ForcedContinuation`` therefore
writes the model's log-softmax (before forcing) for each output step to a file the request names
(the server runs on this machine), then sets every logit but the forced token's to -inf. Checked
in the run itself on stock: the dumped log-prob of each greedy token equals SGLang's own
``output_token_logprobs`` of the unforced greedy request, the dumped argmax is the greedy token,
and the forced output equals the continuation (``tests/accuracy`` checks the same on SmolLM2).

Servers run with ``--disable-overlap-schedule`` (the overlap scheduler samples step t before step
t-1's token is appended to ``req.output_ids``, which the processor uses as the step index),
``--disable-radix-cache`` (every request is prefilled whole: no prefix-cache hit mixes the runs),
one request at a time (identical batch composition), and ``OMP_NUM_THREADS`` fixed (``--threads``,
default 1: on a 2-core machine shared with other jobs two OpenMP threads made every decode GEMV
10-20x slower, and a fixed count keeps floating-point reductions identical across configs).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import requests
import torch
from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor

SERVER_FLAGS = ("--disable-overlap-schedule", "--disable-radix-cache", "--enable-custom-logit-processor")
_HEADER = np.dtype(np.int32).itemsize


class ForcedContinuation(CustomLogitProcessor):
    """Force ``continuation[t]`` at output step ``t`` after dumping the model's log-probs.

    ``custom_params``: ``continuation`` (token ids) and ``dump`` (a file path). Each call appends,
    per request row, the step index (int32, ``len(req.output_ids)``) and the float32 log-softmax of
    that row's logits over the vocabulary. An intermediate chunk of a chunked prefill also calls the
    sampler (its token is discarded), so step 0 can appear more than once: the last row is the one
    that produced the token (``read_dump``).
    """

    def __call__(self, logits: torch.Tensor, custom_param_list: list[dict[str, Any]] | None = None) -> torch.Tensor:
        for i, params in enumerate(custom_param_list or []):
            step = len(params["__req__"].output_ids)
            logprobs = torch.log_softmax(logits[i].float(), dim=-1)
            with open(params["dump"], "ab") as f:
                f.write(np.int32(step).tobytes())
                f.write(logprobs.cpu().numpy().astype(np.float32, copy=False).tobytes())
            continuation = params["continuation"]
            token = continuation[min(step, len(continuation) - 1)]
            logits[i] = float("-inf")
            logits[i, token] = 0.0
        return logits


def read_dump(path: str | os.PathLike, num_steps: int, vocab_size: int) -> torch.Tensor:
    """Log-probs ``[num_steps, vocab_size]`` float32 from a ``ForcedContinuation`` dump; the last row
    written for each step wins. Raises ValueError if a step is missing or the steps go backwards."""
    row_bytes = _HEADER + 4 * vocab_size
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % row_bytes:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of rows of {vocab_size} log-probs")
    raw = raw.reshape(-1, row_bytes)
    steps = raw[:, :_HEADER].copy().view(np.int32).ravel()
    if np.any(np.diff(steps) < 0):
        raise ValueError(f"{path}: output steps go backwards: {steps.tolist()}")
    out = torch.empty(num_steps, vocab_size)
    seen = set()
    for row, step in enumerate(steps.tolist()):
        if step < num_steps:
            out[step] = torch.from_numpy(raw[row, _HEADER:].copy().view(np.float32))
            seen.add(step)
    missing = sorted(set(range(num_steps)) - seen)
    if missing:
        raise ValueError(f"{path}: no log-probs for output steps {missing[:10]}")
    return out


# ---------------------------------------------------------------------------------------------
# Prompts


@dataclass(frozen=True)
class Prompt:
    """One chat prompt: ``ids`` are the chat-templated token ids sent to ``/generate``;
    ``continuation`` the tokens to force (None: the stock server's own greedy output)."""

    name: str
    ids: list[int]
    continuation: list[int] | None = None
    meta: dict = field(default_factory=dict)


def chat_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                        tokenize=True, return_dict=False)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def select_records(records: Sequence[dict], num: int, min_tokens: int, max_tokens: int) -> list[dict]:
    """``num`` text2json records with ``prompt_tokens`` in [min_tokens, max_tokens], spread over that
    range (targets evenly spaced) and over the domains (round robin), deterministic."""
    if num < 1:
        raise ValueError(f"--num-prompts: must be >= 1, got {num}")
    pool = [r for r in records if min_tokens <= r["prompt_tokens"] <= max_tokens]
    if len(pool) < num:
        raise ValueError(f"only {len(pool)} records have {min_tokens}-{max_tokens} prompt tokens; need {num}")
    domains = sorted({r["domain"] for r in pool})
    chosen: list[dict] = []
    for i in range(num):
        target = min_tokens + (max_tokens - min_tokens) * (i + 0.5) / num
        left = [r for r in pool if r not in chosen]
        candidates = [r for r in left if r["domain"] == domains[i % len(domains)]] or left
        chosen.append(min(candidates, key=lambda r: (abs(r["prompt_tokens"] - target), r["id"])))
    return chosen


def choose_records(records: Sequence[dict], ids: Sequence[str] | None, num: int, min_tokens: int,
                   max_tokens: int) -> list[dict]:
    """The records ``ids`` (every one must exist), or ``select_records`` when ``ids`` is empty."""
    if not ids:
        return select_records(records, num, min_tokens, max_tokens)
    by_id = {r["id"]: r for r in records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"--ids: not in the dataset: {missing}")
    return [by_id[i] for i in ids]


def text2json_prompts(tokenizer, records: Sequence[dict], continuation: str, max_new_tokens: int) -> list[Prompt]:
    """Prompts of text2json records; ``continuation`` "gold" forces the gold answer (its first
    ``max_new_tokens`` tokens, then ``<|im_end|>`` if it fits), "greedy" stock's own output."""
    if continuation not in ("gold", "greedy"):
        raise ValueError(f"--continuation: 'gold' or 'greedy', got {continuation!r}")
    prompts = []
    for r in records:
        cont = None
        if continuation == "gold":
            cont = (list(tokenizer(r["answer"], add_special_tokens=False)["input_ids"])
                    + [tokenizer.eos_token_id])[:max_new_tokens]
        prompts.append(Prompt(r["id"], chat_ids(tokenizer, r["problem"]), cont,
                              {"domain": r["domain"], "num_entities": r.get("num_entities")}))
    return prompts


# ---------------------------------------------------------------------------------------------
# Requests


def _post(url: str, payload: dict, timeout: float) -> dict:
    r = requests.post(f"{url}/generate", json=payload, timeout=timeout)
    if r.status_code != 200:
        raise RuntimeError(f"/generate returned {r.status_code}: {r.text[:500]}")
    return r.json()


def greedy(url: str, ids: list[int], max_new_tokens: int, timeout: float = 1800) -> dict:
    """Greedy ``max_new_tokens`` tokens (EOS ignored) with SGLang's logprob of each output token."""
    out = _post(url, {"input_ids": ids, "return_logprob": True,
                      "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0, "ignore_eos": True}},
                timeout)
    return {"output_ids": out["output_ids"],
            "logprobs": [lp for lp, _tok, _txt in out["meta_info"]["output_token_logprobs"]]}


def forced(url: str, ids: list[int], continuation: Sequence[int], vocab_size: int, dump_dir: str | os.PathLike,
           timeout: float = 1800) -> tuple[list[int], torch.Tensor]:
    """Force ``continuation`` through decode steps; (output ids, model log-probs ``[len, vocab]``)."""
    fd, dump = tempfile.mkstemp(suffix=".bin", dir=dump_dir)
    os.close(fd)
    try:
        out = _post(url, {"input_ids": ids, "custom_logit_processor": ForcedContinuation.to_str(),
                          "sampling_params": {"max_new_tokens": len(continuation), "temperature": 0,
                                              "ignore_eos": True,
                                              "custom_params": {"continuation": list(continuation), "dump": dump}}},
                    timeout)
        return out["output_ids"], read_dump(dump, len(continuation), vocab_size)
    finally:
        os.unlink(dump)


# ---------------------------------------------------------------------------------------------
# Comparisons


def first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    """Index of the first position where ``a`` and ``b`` differ (``min(len)`` if one is a prefix)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare_greedy(stock: Sequence[int], other: Sequence[int]) -> dict:
    if len(other) != len(stock):
        raise ValueError(f"greedy outputs differ in length: {len(stock)} vs {len(other)}")
    return {"agree": sum(a == b for a, b in zip(stock, other)) / len(stock),
            "first_divergence": first_difference(stock, other)}


def kl_per_step(stock_lp: torch.Tensor, other_lp: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) in nats per row of two log-prob tensors ``[steps, vocab]`` (terms with p = 0 dropped)."""
    p = stock_lp.exp()
    terms = torch.where(p > 0, p * (stock_lp - other_lp), torch.zeros(()))
    return terms.double().sum(-1).clamp_min(0.0)


def forced_figures(lp: torch.Tensor, continuation: Sequence[int]) -> dict:
    """One server's own teacher-forced figures over decode steps 1..: NLL of the forced tokens and
    how often the forced token is the argmax (``hit``; with gold continuations, extraction accuracy
    per token)."""
    tokens = torch.tensor(list(continuation))
    nll = -lp.gather(1, tokens[:, None]).squeeze(1).double()
    hit = lp.argmax(-1) == tokens
    return {"steps": len(tokens) - 1, "nll": float(nll[1:].mean()), "hit_count": int(hit[1:].sum())}


def compare_forced(stock_lp: torch.Tensor, other_lp: torch.Tensor, continuation: Sequence[int]) -> dict:
    """Teacher-forced figures against stock over decode steps 1.. (step 0 comes from the exact
    prefill: ``prefill_kl`` must be 0)."""
    kl = kl_per_step(stock_lp, other_lp)
    top1 = stock_lp.argmax(-1) == other_lp.argmax(-1)
    return {**forced_figures(other_lp, continuation), "top1_count": int(top1[1:].sum()),
            "kl_mean": float(kl[1:].mean()), "kl_median": float(kl[1:].median()), "kl_max": float(kl[1:].max()),
            "kl_sum": float(kl[1:].sum()), "prefill_kl": float(kl[0])}


def pool_rows(rows: list[dict]) -> dict:
    """Aggregate over prompts; teacher-forced figures pooled over all decode steps."""
    steps = sum(r["steps"] for r in rows)
    out = {"tf_steps": steps, "tf_nll": sum(r["nll"] * r["steps"] for r in rows) / steps,
           "tf_hit": sum(r["hit_count"] for r in rows) / steps}
    if "agree" in rows[0]:
        out.update(greedy_agree=sum(r["agree"] for r in rows) / len(rows),
                   greedy_first_divergence_mean=sum(r["first_divergence"] for r in rows) / len(rows),
                   greedy_first_divergence_min=min(r["first_divergence"] for r in rows),
                   greedy_identical=sum(r["agree"] == 1.0 for r in rows),
                   tf_top1=sum(r["top1_count"] for r in rows) / steps,
                   tf_kl_mean=sum(r["kl_sum"] for r in rows) / steps,
                   tf_kl_max=max(r["kl_max"] for r in rows),
                   prefill_kl_max=max(r["prefill_kl"] for r in rows))
    return out


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass(frozen=True)
class Config:
    """One server: ``method`` "stock" or a ``--kv-offload`` method, with its offload flags."""

    label: str
    method: str
    budget: float | None = None
    kv_bits: int | None = None

    def server_args(self, min_prompt: int, extra: Sequence[str] = ()) -> list[str]:
        args = list(SERVER_FLAGS)
        if self.method != "stock":
            args += ["--kv-offload", self.method, "--kv-offload-min-prompt", str(min_prompt)]
            if self.budget is not None:
                args += ["--kv-offload-budget", fmt_budget(self.budget)]
            if self.kv_bits is not None:
                args += ["--kv-offload-kv-bits", str(self.kv_bits)]
            args += list(extra)
        return args


def fmt_budget(b: float) -> str:
    return str(int(b)) if b > 1 else repr(float(b))


def make_configs(methods: Sequence[str], budgets: Sequence[float], exact_check: bool) -> list[Config]:
    configs = []
    for m in methods:
        configs += [Config(f"{m}@{fmt_budget(b)}", m, b) for b in budgets]
        if exact_check:
            configs.append(Config(f"{m}@1.0/kv16", m, 1.0, 16))
    return configs


def run_server(model: str | os.PathLike, config: Config, prompts: Sequence[Prompt], max_new_tokens: int,
               vocab_size: int, on_prompt: Callable[[int, dict, list[int], torch.Tensor], dict], *,
               continuations: Sequence[Sequence[int]], min_prompt: int, offload_args: Sequence[str] = (),
               threads: int = 1, log_dir: str | os.PathLike | None = None, log=print) -> dict:
    """Start one server for ``config``; per prompt run greedy, then force ``continuations[i]`` (None:
    the greedy output just generated) and hand (index, greedy result, continuation, log-probs) to
    ``on_prompt``, which returns that prompt's figures. Returns the rows, offload stats, wall times."""
    from sglang_kv.cpu.server import cpu_server

    start = time.perf_counter()
    rows = []
    dump_dir = tempfile.mkdtemp(prefix="sglang-kv-logits-")
    try:
        with cpu_server(model, config.server_args(min_prompt, offload_args), env={"OMP_NUM_THREADS": str(threads)},
                        log_dir=log_dir) as server:
            startup_s = time.perf_counter() - start
            for i, prompt in enumerate(prompts):
                t0 = time.perf_counter()
                g = greedy(server.url, prompt.ids, max_new_tokens)
                t1 = time.perf_counter()
                cont = list(continuations[i]) if continuations[i] is not None else g["output_ids"]
                out_ids, lp = forced(server.url, prompt.ids, cont, vocab_size, dump_dir)
                t2 = time.perf_counter()
                if out_ids != cont:
                    raise RuntimeError(f"{config.label} {prompt.name}: the forced output is not the continuation "
                                       f"(first difference at {first_difference(cont, out_ids)})")
                row = {"prompt": prompt.name, "prompt_tokens": len(prompt.ids), **on_prompt(i, g, cont, lp),
                       "greedy_s": round(t1 - t0, 1), "forced_s": round(t2 - t1, 1)}
                rows.append(row)
                log(f"  {config.label} {prompt.name} ({len(prompt.ids)} tokens): "
                    + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                                if k not in ("prompt", "prompt_tokens")))
            stats = server.offload_stats() if config.method != "stock" else None
    finally:
        shutil.rmtree(dump_dir, ignore_errors=True)
    return {"rows": rows, "offload_stats": stats, "startup_s": round(startup_s, 1),
            "wall_s": round(time.perf_counter() - start, 1)}


def stock_check(g: dict, cont: list[int], lp: torch.Tensor) -> dict:
    """While the forced tokens equal stock's greedy ones (steps ``0..d``, ``d`` the first difference,
    inclusive: step ``d`` still has the greedy context), the forced run sees the greedy run's context,
    so its dumped log-probs must be SGLang's own ``output_token_logprobs`` and their argmax the
    greedy token."""
    greedy_ids = g["output_ids"]
    n = min(first_difference(greedy_ids, cont) + 1, len(cont), len(greedy_ids))
    tokens = torch.tensor(greedy_ids[:n])
    dumped = lp[:n].gather(1, tokens[:, None]).squeeze(1).double()
    return {"checked_steps": n,
            "dump_vs_sglang_logprob_max_abs": float((dumped - torch.tensor(g["logprobs"][:n], dtype=torch.float64))
                                                    .abs().max()),
            "dump_argmax_is_greedy": float((lp[:n].argmax(-1) == tokens).float().mean())}


class StockCache:
    """Stock's greedy outputs and teacher-forced log-probs, reused across invocations that share the
    model, prompts, continuations, token count, server flags and threads (``--stock-cache``)."""

    def __init__(self, path: str | os.PathLike | None, key: dict):
        self.path, self.key = (Path(path) if path else None), key

    def load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        data = torch.load(self.path, weights_only=False)
        return data if data.get("key") == self.key else None

    def save(self, data: dict) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            torch.save({**data, "key": self.key}, tmp)
            tmp.replace(self.path)


def run_logits(model: str | os.PathLike, prompts: Sequence[Prompt], configs: Sequence[Config], *,
               max_new_tokens: int = 128, min_prompt: int = 256, offload_args: Sequence[str] = (), threads: int = 1,
               log_dir: str | os.PathLike | None = None, log=print, stock_cache: str | os.PathLike | None = None,
               on_config: Callable[[dict], None] | None = None, parallel: int = 1) -> dict:
    """Stock first (or from ``stock_cache``), then every config against it (``parallel`` servers at
    a time; each uses ``threads`` OpenMP threads)."""
    from transformers import AutoConfig

    if parallel < 1:
        raise ValueError(f"--parallel: must be >= 1, got {parallel}")
    vocab_size = AutoConfig.from_pretrained(model).vocab_size
    continuations = [p.continuation for p in prompts]
    cache = StockCache(stock_cache, {"model": str(model), "prompts": [p.ids for p in prompts],
                                     "continuations": continuations, "max_new_tokens": max_new_tokens,
                                     "server_flags": list(SERVER_FLAGS), "threads": threads})
    stock_data = cache.load()
    from_cache = stock_data is not None
    if stock_data is None:
        greedy_ids, lps, conts = [None] * len(prompts), [None] * len(prompts), [None] * len(prompts)

        def keep(i, g, cont, lp):
            greedy_ids[i], lps[i], conts[i] = g["output_ids"], lp, cont
            return {**stock_check(g, cont, lp), **forced_figures(lp, cont)}

        log(f"stock: {len(prompts)} prompts, {max_new_tokens} tokens")
        run = run_server(model, Config("stock", "stock"), prompts, max_new_tokens, vocab_size, keep,
                         continuations=continuations, min_prompt=min_prompt, threads=threads, log_dir=log_dir, log=log)
        stock_data = {"run": run, "greedy": greedy_ids, "logprobs": lps, "continuations": conts}
        cache.save(stock_data)
    else:
        log(f"stock: from {stock_cache}")
    rows = stock_data["run"]["rows"]
    stock = {**stock_data["run"], **pool_rows(rows), "from_cache": from_cache,
             "checks": {"checked_steps": sum(r["checked_steps"] for r in rows),
                        "dump_vs_sglang_logprob_max_abs": max(r["dump_vs_sglang_logprob_max_abs"] for r in rows),
                        "dump_argmax_is_greedy_min": min(r["dump_argmax_is_greedy"] for r in rows)}}
    figures: dict[str, Any] = {"stock": stock, "configs": []}

    def measure(i, g, cont, lp):
        return {**compare_greedy(stock_data["greedy"][i], g["output_ids"]),
                **compare_forced(stock_data["logprobs"][i], lp, cont)}

    def one(config: Config) -> dict:
        log(config.label)
        run = run_server(model, config, prompts, max_new_tokens, vocab_size, measure,
                         continuations=stock_data["continuations"], min_prompt=min_prompt, offload_args=offload_args,
                         threads=threads, log_dir=log_dir, log=log)
        offloaded = run["offload_stats"]["requests_offloaded"]
        if offloaded < 2 * len(prompts):
            raise RuntimeError(f"{config.label}: the server offloaded {offloaded} of {2 * len(prompts)} requests "
                               f"(--kv-offload-min-prompt {min_prompt}); its figures would be stock's")
        entry = {"label": config.label, "method": config.method, "budget": config.budget, "kv_bits": config.kv_bits,
                 **pool_rows(run["rows"]), **run}
        log(format_row(entry))
        return entry

    # Servers of different configs are independent: ``parallel`` of them may run at once.
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for entry in pool.map(one, configs):
            figures["configs"].append(entry)
            if on_config is not None:
                on_config(figures)
    return figures


# ---------------------------------------------------------------------------------------------
# Report


TABLE_HEAD = ("| method | budget | kv bits | greedy agree | first divergence (mean / min) | identical | "
              "TF top-1 vs stock | TF KL mean | TF KL max | TF NLL | TF hit | wall s |")


def format_row(c: dict) -> str:
    budget = f"{c['budget']:.4%}" if c["budget"] <= 1 else str(int(c["budget"]))
    return (f"| {c['method']} | {budget} | {c['kv_bits'] or 4} | {c['greedy_agree']:.3f} | "
            f"{c['greedy_first_divergence_mean']:.1f} / {c['greedy_first_divergence_min']} | "
            f"{c['greedy_identical']}/{len(c['rows'])} | {c['tf_top1']:.4f} | {c['tf_kl_mean']:.4g} | "
            f"{c['tf_kl_max']:.3g} | {c['tf_nll']:.4f} | {c['tf_hit']:.4f} | {c['wall_s']:.0f} |")


def format_table(figures: dict) -> str:
    s = figures["stock"]
    lines = [TABLE_HEAD, "|" + "---|" * (TABLE_HEAD.count("|") - 1),
             f"| stock | - | - | 1 | - | - | 1 | 0 | 0 | {s['tf_nll']:.4f} | {s['tf_hit']:.4f} | {s['wall_s']:.0f} |"]
    lines += [format_row(c) for c in figures["configs"]]
    return "\n".join(lines)


def dirty_paths() -> list[str]:
    """Tracked files with uncommitted changes when the run started (the commit alone does not
    describe the code that ran)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in out.splitlines()]


def main_logits(args, command: str) -> dict:
    """The ``logits`` subcommand (arguments from ``__main__._add_logits``)."""
    from transformers import AutoTokenizer

    from sglang_kv.cpu.models import smollm2_path
    from sglang_kv.results import write_result
    from text2json.data import load_records

    model = args.model or str(smollm2_path())
    tokenizer = AutoTokenizer.from_pretrained(model)
    chosen = choose_records(load_records(args.dataset), args.ids, args.num_prompts, args.min_prompt_tokens,
                            args.max_prompt_tokens)
    prompts = text2json_prompts(tokenizer, chosen, args.continuation, args.max_new_tokens)
    configs = make_configs(args.methods, args.budgets, args.exact_check)
    offload_args = shlex.split(args.offload_args)
    workload = {"model": str(model), "dataset": args.dataset,
                "prompts": [{"id": p.name, "prompt_tokens": len(p.ids),
                             "continuation_tokens": len(p.continuation) if p.continuation else args.max_new_tokens,
                             **p.meta} for p in prompts],
                "continuation": args.continuation, "max_new_tokens": args.max_new_tokens,
                "min_prompt": args.min_prompt, "threads": args.threads, "parallel": args.parallel, "server_flags": list(SERVER_FLAGS),
                "offload_args": offload_args, "configs": [c.__dict__ for c in configs],
                "uncommitted_changes_at_start": dirty_paths()}
    start = time.perf_counter()

    def save(figures: dict) -> None:
        figures["wall_s"] = round(time.perf_counter() - start, 1)
        if args.out:
            write_result(args.out, workload, figures, command=command)

    figures = run_logits(model, prompts, configs, max_new_tokens=args.max_new_tokens, min_prompt=args.min_prompt,
                         offload_args=offload_args, threads=args.threads, log_dir=args.log_dir,
                         stock_cache=args.stock_cache, log=lambda m: print(m, file=sys.stderr, flush=True),
                         on_config=save, parallel=args.parallel)
    save(figures)
    print(format_table(figures))
    print(f"\nstock checks: {figures['stock']['checks']}; wall time {figures['wall_s']} s")
    return figures
