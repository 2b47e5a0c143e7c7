"""OffloadConfig: every knob of sglang-kv, its defaults, validation and the ``--kv-offload*`` flags.

The launcher parses our flags out of ``python -m sglang.launch_server``'s argv (see ``plugin.py``),
validates them once, and hands the frozen config to every scheduler process through the
environment variable ``SGLANG_KV_OFFLOAD`` (JSON). Scheduler processes re-validate on load.

Defaults follow the papers (see README "Methods"):

====================  ========  =====  ====  =========================================
method                budget    local  sink  notes
====================  ========  =====  ====  =========================================
oracle                3.125%    64     0     exact top-k (upper bound)
yakv                  3.125%    64     0     2-bit per-token landmarks, 4-bit HIGGS K/V
shadowkv              1.5625%   32     0     rank 160 keys, 8-token chunks, 48 outliers
quest                 3.125%    64     0     16-token pages, min/max keys, all on GPU
====================  ========  =====  ====  =========================================
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

METHODS = ("none", "oracle", "yakv", "shadowkv", "quest")
ENV_VAR = "SGLANG_KV_OFFLOAD"
FLAG_PREFIX = "--kv-offload"

# Per-method defaults for the fields left as None by the user.
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "none": {"budget": 1.0, "local": 0},
    "oracle": {"budget": 0.03125, "local": 64},
    "yakv": {"budget": 0.03125, "local": 64},
    "shadowkv": {"budget": 0.015625, "local": 32},
    "quest": {"budget": 0.03125, "local": 64},
}
_KV_BITS = (4, 8, 16)
_LANDMARK_BITS = (1, 2, 3, 4)
PAYLOAD_GROUPS = ("head", "token")  # yakv payload Hadamard groups (the first is the default)


class ConfigError(ValueError):
    """A flag value that cannot work; the message names the flag."""


@dataclass(frozen=True)
class OffloadConfig:
    """Every knob of the offload engine. Build with :meth:`from_flags` or the constructor; frozen.

    ``budget``: values in (0, 1] are a fraction of the prompt, values > 1 an integer token count.
    Fields left ``None`` take the method's default (see the module docstring) in ``__post_init__``.
    """

    method: str = "none"
    budget: float | None = None  # fraction of the prompt in (0, 1], or a token count > 1
    local: int | None = None  # last prompt tokens kept exact on GPU
    sink: int = 0  # first prompt tokens kept exact on GPU
    min_prompt: int = 1024  # shorter prompts are not offloaded (plain attention)
    host_mem: str = "50%"  # host store size: GiB ("24", "24GB") or percent of available RAM ("50%")
    exact: float = 0.25  # exact K/V rows on the GPU: fraction of the stock KV capacity, or a token count
    kv_bits: int = 4  # offloaded K/V: 4 = HIGGS EDEN2-256, 8 = fp8 e4m3, 16 = bf16
    landmark_bits: int = 2  # yakv per-token landmark bits per value (HIGGS, per-head groups)
    landmark_residual: int = 0  # yakv residual landmarks: mean of m tokens + residual (0 = off)
    payload_group: str = "head"  # yakv 4-bit payload Hadamard group: head | token
    cache: float = 0.0  # yakv device cache of selected payload rows: fraction of the prompt in [0, 1] (0 = off)
    decode_chunks: int = 1  # each layer's decode step in this many chunks of requests, pipelined over two streams
    decode_finish_sms: int = 0  # SMs the decode's gather kernels size their grids for (0 = all)
    decode_timing: int = 0  # log the offloaded decode attention's device time every N decode steps (0 = off)
    decode_graph: int = 0  # 1: decode in breakable CUDA graphs, the offloaded attention eager between segments;
    # 2: also replay the attention's selection and gather as one CUDA graph per batch (yakv)
    shadowkv_rank: int = 160
    shadowkv_chunk: int = 8
    shadowkv_outliers: int = 48
    quest_page: int = 16

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--kv-offload: unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        defaults = _METHOD_DEFAULTS[self.method]
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        self._validate()

    # ---- validation -------------------------------------------------------------------------
    def _validate(self) -> None:
        b = self.budget
        if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
            raise ConfigError(f"--kv-offload-budget: must be > 0 (a fraction in (0, 1] or a token count), got {b!r}")
        if b > 1 and b != int(b):
            raise ConfigError(f"--kv-offload-budget: values above 1 are token counts and must be integers, got {b!r}")
        e = self.exact
        if not (isinstance(e, (int, float)) and math.isfinite(e) and e > 0) or (e > 1 and e != int(e)):
            raise ConfigError(f"--kv-offload-exact: must be a fraction in (0, 1] or an integer token count, got {e!r}")
        for name in ("local", "sink", "min_prompt", "landmark_residual"):
            _require_int(name, getattr(self, name), minimum=0)
        _require_int("decode_chunks", self.decode_chunks, minimum=1)
        _require_int("decode_finish_sms", self.decode_finish_sms, minimum=0)
        _require_int("decode_timing", self.decode_timing, minimum=0)
        if self.decode_graph not in (0, 1, 2) or isinstance(self.decode_graph, bool):
            raise ConfigError(f"--kv-offload-decode-graph: must be 0 (off), 1 (on) or 2 (on, with the selection "
                              f"and gather replayed), got {self.decode_graph!r}")
        if self.decode_graph == 2:
            self._validate_selection_graphs()
        if self.kv_bits not in _KV_BITS:
            raise ConfigError(f"--kv-offload-kv-bits: must be one of {_KV_BITS}, got {self.kv_bits!r}")
        if self.landmark_bits not in _LANDMARK_BITS:
            raise ConfigError(f"--kv-offload-landmark-bits: must be one of {_LANDMARK_BITS}, got {self.landmark_bits!r}")
        for name in ("shadowkv_rank", "shadowkv_chunk", "quest_page"):
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("shadowkv_outliers", self.shadowkv_outliers, minimum=0)
        if self.payload_group not in PAYLOAD_GROUPS:
            raise ConfigError(f"--kv-offload-payload-group: must be one of {', '.join(PAYLOAD_GROUPS)}, "
                              f"got {self.payload_group!r}")
        c = self.cache
        if not (isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) and 0 <= c <= 1):
            raise ConfigError(f"--kv-offload-cache: must be a fraction of the prompt in [0, 1] (0 = off), got {c!r}")
        if c and (self.method != "yakv" or self.kv_bits != 4):
            raise ConfigError(f"--kv-offload-cache: the device cache holds yakv's 4-bit payload rows; it needs "
                              f"--kv-offload yakv with --kv-offload-kv-bits 4, got {self.method} with {self.kv_bits} bits")
        if self.landmark_residual == 1:
            raise ConfigError("--kv-offload-landmark-residual: a residual group needs m >= 2 tokens (0 turns it off), got 1")
        parse_host_mem(self.host_mem)

    def _validate_selection_graphs(self) -> None:
        """``--kv-offload-decode-graph 2`` replays yakv's batched selection and gather of per-head rows
        (:class:`sglang_kv.graphs.SelectionGraphs`), one launch sequence on one stream."""
        needs = {"method": (self.method, "yakv"), "kv_bits": (self.kv_bits, 4), "cache": (self.cache, 0),
                 "payload_group": (self.payload_group, "head"), "landmark_residual": (self.landmark_residual, 0),
                 "decode_chunks": (self.decode_chunks, 1)}
        wrong = [f"{flag_name(name)} {have} (needs {want})"
                 for name, (have, want) in needs.items() if have != want]
        if wrong:
            raise ConfigError("--kv-offload-decode-graph 2 replays yakv's selection and gather of per-head payload "
                              "rows on one stream; it cannot with " + ", ".join(wrong))

    # ---- derived values ---------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def budget_tokens(self, prompt_len: int) -> int:
        """Selected tokens per kv head for a prompt of ``prompt_len`` tokens (before the exact windows)."""
        if self.budget <= 1:
            return max(1, math.ceil(self.budget * prompt_len))
        return int(self.budget)

    def exact_rows(self, stock_tokens: int) -> int:
        """Exact K/V rows kept on the GPU, given the stock capacity in tokens."""
        rows = int(self.exact * stock_tokens) if self.exact <= 1 else int(self.exact)
        return max(1, min(rows, stock_tokens))

    def host_mem_bytes(self, available_bytes: int) -> int:
        """The host store size in bytes given the RAM available now."""
        amount, unit = parse_host_mem(self.host_mem)
        if unit == "%":
            return int(available_bytes * amount / 100)
        return int(amount * 2**30)

    # ---- (de)serialization ------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "OffloadConfig":
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "OffloadConfig":
        """The config handed down by the launcher; method ``none`` when the variable is unset."""
        text = (os.environ if environ is None else environ).get(ENV_VAR)
        return cls() if not text else cls.from_json(text)

    @classmethod
    def from_flags(cls, argv: Sequence[str]) -> "OffloadConfig":
        """Parse ``--kv-offload*`` flags (and nothing else). Raises ConfigError or SystemExit(2)."""
        args = build_parser().parse_args(list(argv))
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
        if values["method"] is None:
            given = [flag_name(n) for n, v in values.items() if v is not None and n != "method"]
            if given:
                raise ConfigError(f"{given[0]}: given without --kv-offload METHOD")
            values["method"] = "none"
        return cls(**{k: v for k, v in values.items() if v is not None})


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{flag_name(name)}: must be an integer >= {minimum}, got {value!r}")


_HOST_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|gb|gib|g)?\s*$", re.IGNORECASE)


def parse_host_mem(text: str) -> tuple[float, str]:
    """``"50%"`` -> (50.0, "%"); ``"24"``, ``"24GB"``, ``"24GiB"`` -> (24.0, "GiB")."""
    m = _HOST_MEM_RE.match(str(text))
    if not m:
        raise ConfigError(f"--kv-offload-host-mem: expected GiB ('24', '24GB') or a percent of available RAM ('50%'), got {text!r}")
    amount = float(m.group(1))
    unit = "%" if m.group(2) == "%" else "GiB"
    if amount <= 0 or (unit == "%" and amount > 100):
        raise ConfigError(f"--kv-offload-host-mem: must be > 0 (and <= 100%), got {text!r}")
    return amount, unit


def flag_name(field_name: str) -> str:
    """``local`` -> ``--kv-offload-local``; ``method`` -> ``--kv-offload``."""
    if field_name == "method":
        return FLAG_PREFIX
    return f"{FLAG_PREFIX}-{field_name.replace('_', '-')}"


_FLAG_HELP = {
    "method": "KV offload method: none (stock SGLang), oracle (exact top-k), yakv, shadowkv, quest",
    "budget": "selected tokens per kv head per step: a fraction of the prompt in (0, 1] or a token count (default: per method)",
    "local": "last prompt tokens kept exact on GPU (default: per method)",
    "sink": "first prompt tokens kept exact on GPU (default 0)",
    "min_prompt": "prompts shorter than this are served with plain attention (default 1024)",
    "host_mem": "host store size: GiB ('24', '24GB') or percent of available RAM ('50%%'; default)",
    "exact": "exact K/V token rows on the GPU (staging for prefill, exact windows, generated tokens): a fraction of the stock KV capacity in (0, 1] (default 0.25) or a token count",
    "kv_bits": "offloaded K/V precision: 4 (HIGGS, default), 8 (fp8), 16 (bf16)",
    "landmark_bits": "yakv landmark bits per value: 1, 2 (default), 3, 4",
    "landmark_residual": "yakv residual landmarks over groups of m tokens (0 = off, default)",
    "payload_group": "yakv 4-bit payload groups: head (one Hadamard group per kv head: each head copies only "
                     "its own rows; default), token (one group per token, the paper's; a selected (token, head) "
                     "copies the whole token's row, and num_kv_heads * head_dim must be a power of two)",
    "cache": "yakv device cache of recently selected payload rows, per request and layer, as a fraction of the "
             "prompt in [0, 1] (0 = off, default): hits are read from GPU memory, only misses cross PCIe",
    "decode_chunks": "split each layer's offloaded decode step into N chunks of requests, their selections on one "
                     "CUDA stream and their gathers and attention on another, so one chunk's PCIe gather overlaps "
                     "the next chunk's selection (default 1)",
    "decode_finish_sms": "the offloaded decode's gather kernels size their grids for N SMs; with "
                         "--kv-offload-decode-chunks > 1 the gathers and attention also run on a top-priority "
                         "stream, so the next chunk's selection keeps the other SMs (same outputs; 0 = all SMs, "
                         "default)",
    "decode_timing": "every N decode steps, log the device time the offloaded decode attention took per step, "
                     "summed over layers and split by stage, the host's time for the same stages, the step's "
                     "wall time and the garbage collector's time ('sglang-kv decode timing: ...'; CUDA events, "
                     "read a step late so nothing waits; "
                     "totals only with --kv-offload-decode-chunks > 1; 0 = off, default)",
    "decode_graph": "1: run the decode step in SGLang's breakable CUDA graphs (the projections, MLP/MoE and "
                    "norms of every layer replay as captured graph segments; each layer's offloaded attention "
                    "runs eagerly between them); 2: the same, and yakv's selection and gather (score, softmax, "
                    "top-k, gather) replay as one CUDA graph per batch, captured at the batch's first layer "
                    "(needs --kv-offload yakv with 4-bit head payload groups, no device cache, no residual "
                    "landmarks, one decode chunk; the timing's select stage then includes the gather); "
                    "CUDA only; 0 = off, default: no CUDA graphs",
    "shadowkv_rank": "ShadowKV rank of the key factors (default 160)",
    "shadowkv_chunk": "ShadowKV tokens per chunk landmark (default 8)",
    "shadowkv_outliers": "ShadowKV outlier chunks kept exact per head (default 48)",
    "quest_page": "Quest tokens per page (default 16)",
}
_FLAG_TYPES = {"method": str, "budget": float, "host_mem": str, "exact": float, "payload_group": str, "cache": float}


def build_parser() -> argparse.ArgumentParser:
    """The parser of our flags alone (``prog`` names the SGLang launcher they extend)."""
    parser = argparse.ArgumentParser(
        prog="python -m sglang.launch_server ... ",
        description="sglang-kv flags (added to python -m sglang.launch_server / sglang serve by the plugin)",
        add_help=False,
    )
    for f in dataclasses.fields(OffloadConfig):
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": _FLAG_HELP[f.name]}
        if f.name == "method":
            kwargs["choices"] = METHODS
            kwargs["metavar"] = "{" + ",".join(METHODS) + "}"
        kwargs["type"] = _FLAG_TYPES.get(f.name, int)
        parser.add_argument(flag_name(f.name), **kwargs)
    return parser


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argv into (our ``--kv-offload*`` flags with their values, everything else).

    Accepts ``--flag value`` and ``--flag=value``. A flag given last without its value is kept
    (argparse then reports the missing value, naming the flag).
    """
    ours, rest = [], []
    names = {flag_name(f.name) for f in dataclasses.fields(OffloadConfig)}
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in names:
            ours.append(arg)
            if "=" not in arg and i + 1 < len(argv):
                ours.append(argv[i + 1])
                i += 1
        elif name.startswith(FLAG_PREFIX):
            raise ConfigError(f"{name}: unknown sglang-kv flag; known flags: {', '.join(sorted(names))}")
        else:
            rest.append(arg)
        i += 1
    return ours, rest


def format_flags_help() -> str:
    return build_parser().format_help()
