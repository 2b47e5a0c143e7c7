"""Capture post-RoPE Q/K/V of a Hugging Face causal LM over a text, for the fidelity benchmark.

The model runs one forward pass over the text with an attention implementation registered under
the name ``sglang_kv_capture`` (``transformers.AttentionInterface``): it records the query, key and
value each attention layer receives (after q/k norms and RoPE, before the GQA expansion, exactly
what the engine's KV cache holds) and then runs the stock SDPA attention, so the activations are
those of the unmodified model. The last ``num_queries`` tokens play the decode steps: their queries
are kept, and the tokens before them are the prompt.

File layout (safetensors): ``layer.{i}.k`` and ``layer.{i}.v`` ``[num_tokens, num_kv_heads, head_dim]``,
``layer.{i}.q`` ``[num_queries, num_q_heads, head_dim]`` for each captured layer ``i``; metadata key
``sglang_kv`` holds JSON: model path, shape, number of layers, captured layers, rope parameters,
softmax scale, ``prompt_len``, ``query_positions`` and the text's source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from sglang_kv.bench.shapes import ModelSpec
from sglang_kv.bench.synthetic import LayerData
from sglang_kv.select.base import ModelShape
from sglang_kv.select.rope import RopeParams

ATTN_NAME = "sglang_kv_capture"
META_KEY = "sglang_kv"


def read_text(text_file: str | None = None, jsonl_file: str | None = None, field: str = "problem",
              index: int = 0) -> tuple[str, str]:
    """(text, description of its source) from a plain file or record ``index`` of a JSONL file."""
    if (text_file is None) == (jsonl_file is None):
        raise ValueError("give exactly one of --text FILE or --text-jsonl FILE")
    if text_file is not None:
        return Path(text_file).read_text(), f"file {text_file}"
    with open(jsonl_file) as f:
        for i, line in enumerate(f):
            if i == index:
                record = json.loads(line)
                if field not in record:
                    raise ValueError(f"--field: record {index} of {jsonl_file} has no field {field!r}; "
                                     f"fields: {', '.join(record)}")
                return str(record[field]), f"jsonl {jsonl_file} record {index} field {field}"
    raise ValueError(f"--index: {jsonl_file} has no record {index}")


def capture(model_dir: str, text: str, out: str, *, num_queries: int = 16, max_tokens: int | None = None,
            layers: Sequence[int] | None = None, chat: bool = False, device: str = "cpu",
            dtype: torch.dtype = torch.bfloat16, source: str = "") -> dict[str, Any]:
    """Run the model over ``text`` and write the capture file ``out``; returns its metadata."""
    from safetensors.torch import save_file
    from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if chat:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    else:
        ids = tokenizer(text)["input_ids"]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) <= num_queries:
        raise ValueError(f"the text has {len(ids)} tokens; need more than --queries {num_queries}")

    captured: dict[str, torch.Tensor] = {}
    scales: dict[int, float] = {}

    def capturing_attention(module, query, key, value, attention_mask, **kwargs):
        layer = module.layer_idx
        if layers is None or layer in layers:
            captured[f"layer.{layer}.q"] = query[0, :, -num_queries:].transpose(0, 1).to(dtype).cpu().contiguous()
            captured[f"layer.{layer}.k"] = key[0].transpose(0, 1).to(dtype).cpu().contiguous()
            captured[f"layer.{layer}.v"] = value[0].transpose(0, 1).to(dtype).cpu().contiguous()
            scales[layer] = float(kwargs.get("scaling") or module.scaling)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(ATTN_NAME, capturing_attention)
    AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=ATTN_NAME).to(device)
    model.eval()
    with torch.no_grad():
        model(torch.tensor([ids], device=device), use_cache=False)

    cfg = model.config
    captured_layers = sorted(scales)
    if not captured_layers:
        raise ValueError(f"no attention layer matched --layers {list(layers or [])}")
    q0 = captured[f"layer.{captured_layers[0]}.q"]
    k0 = captured[f"layer.{captured_layers[0]}.k"]
    try:
        rope = RopeParams.from_hf_config(cfg).to_dict()
    except ValueError:
        rope = None  # the selectors that un-rotate keys cannot run on this capture
    num_tokens = len(ids)
    meta = {
        "model": str(model_dir),
        "num_q_heads": q0.shape[1],
        "num_kv_heads": k0.shape[1],
        "head_dim": k0.shape[2],
        "num_layers": cfg.num_hidden_layers,
        "layers": captured_layers,
        "rope": rope,
        "scale": scales[captured_layers[0]],
        "num_tokens": num_tokens,
        "prompt_len": num_tokens - num_queries,
        "query_positions": list(range(num_tokens - num_queries, num_tokens)),
        "source": source,
        "chat_template": chat,
        "dtype": str(dtype).removeprefix("torch."),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(captured, out, metadata={META_KEY: json.dumps(meta)})
    return meta


def load_capture(path: str, num_layers: int | None = None) -> tuple[ModelSpec, list[LayerData], dict[str, Any]]:
    """(model spec, layers, metadata) of a capture file; ``num_layers`` evenly spaced captured layers
    (all by default). The last ``len(query_positions)`` tokens are generated ones (exact windows)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        chosen = meta["layers"]
        if num_layers is not None and num_layers < len(chosen):
            step = len(chosen) / num_layers
            chosen = [chosen[int(i * step)] for i in range(num_layers)]
        rope = RopeParams(**meta["rope"]) if meta["rope"] else None
        shape = ModelShape(meta["num_q_heads"], meta["num_kv_heads"], meta["head_dim"])
        spec = ModelSpec(shape, meta["num_layers"], rope)
        q_pos = torch.tensor(meta["query_positions"])
        out = [LayerData(f.get_tensor(f"layer.{i}.k"), f.get_tensor(f"layer.{i}.v"),
                         torch.arange(meta["num_tokens"]), f.get_tensor(f"layer.{i}.q"), q_pos, meta["scale"],
                         targets=None, generated=meta["num_tokens"] - meta["prompt_len"])
               for i in chosen]
    return spec, out, {**meta, "layers_evaluated": chosen}
