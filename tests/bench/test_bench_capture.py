"""`bench capture` on a tiny random Llama: the captured Q/K/V are the model's, post-RoPE, and the
fidelity benchmark runs on them. About 15 s on 2 cores."""

import json

import pytest
import torch

from sglang_kv.bench.__main__ import main
from sglang_kv.bench.capture import load_capture, read_text
from sglang_kv.select.rope import inverse_rope

TEXT = "".join(f"record {i}: id=INV-{1000 + 7 * i}, amount={13 * i % 97}.{i % 10}0 EUR; " for i in range(12))


@pytest.fixture(scope="module")
def capture_file(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("capture")
    text = folder / "text.txt"
    text.write_text(TEXT)
    out = folder / "tiny.safetensors"
    main(["capture", "--model", str(tiny_model), "--text", str(text), "--queries", "6", "--out", str(out)])
    return out


def _reference_activations(model_dir, ids):
    """Pre-RoPE keys (k_proj outputs) and attention outputs (o_proj inputs) of every layer."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="eager")
    keys, outs, hooks = {}, {}, []
    for i, layer in enumerate(model.model.layers):
        attn = layer.self_attn
        hooks.append(attn.k_proj.register_forward_hook(lambda m, a, o, i=i: keys.__setitem__(i, o[0])))
        hooks.append(attn.o_proj.register_forward_pre_hook(lambda m, a, i=i: outs.__setitem__(i, a[0][0])))
    with torch.no_grad():
        model(torch.tensor([ids]), use_cache=False)
    for h in hooks:
        h.remove()
    return keys, outs


def test_captured_tensors_are_the_models_post_rope_qkv(capture_file, tiny_model):
    from transformers import AutoTokenizer

    model, layers, meta = load_capture(str(capture_file))
    ids = AutoTokenizer.from_pretrained(tiny_model)(TEXT)["input_ids"]
    n = len(ids)
    assert (meta["num_tokens"], meta["prompt_len"], meta["layers"]) == (n, n - 6, [0, 1])
    assert tuple(model.shape) == (4, 2, 32) and model.num_layers == 2 and meta["rope"]["theta"] == 10000.0
    assert meta["scale"] == pytest.approx(32 ** -0.5)
    keys_pre, attn_out = _reference_activations(tiny_model, ids)
    for i, data in enumerate(layers):
        assert data.keys.shape == (n, 2, 32) and data.queries.shape == (6, 4, 32) and data.generated == 6
        # un-rotating the captured keys gives back k_proj's output: they are post-RoPE at positions 0..n-1
        pre = inverse_rope(data.keys.float(), data.positions, model.rope)
        torch.testing.assert_close(pre, keys_pre[i].float().view(n, 2, 32), atol=3e-2, rtol=2e-2)
        # exact causal attention of the last queries over the captured K/V is the model's attention output
        for j, pos in enumerate(data.query_positions.tolist()):
            k = data.keys[: pos + 1].float().repeat_interleave(2, 1)
            v = data.values[: pos + 1].float().repeat_interleave(2, 1)
            p = torch.softmax(torch.einsum("hd,thd->ht", data.queries[j].float(), k) * data.scale, -1)
            out = torch.einsum("ht,thd->hd", p, v).reshape(-1)
            torch.testing.assert_close(out, attn_out[i][pos].float(), atol=2e-2, rtol=2e-2)


def test_fidelity_runs_on_a_capture(capture_file, tmp_path):
    out = tmp_path / "fidelity_capture.json"
    main(["fidelity", "--input", str(capture_file), "--budgets", "0.05", "40", "--selectors", "oracle",
          "yakv:local=16", "shadowkv:local=16,shadowkv_outliers=2", "quest:local=16", "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["workload"]["kind"] == "capture" and record["workload"]["capture"]["layers_evaluated"] == [0, 1]
    rows = record["figures"]["rows"]
    assert len(rows) == 8 and record["figures"]["exact_attention"] is None
    for r in rows:
        assert 0 <= r["recall"] <= 1 + 1e-6 and r["target_recall"] is None
        if r["selector"] == "oracle":
            assert r["recall"] == pytest.approx(1.0)


def test_read_text_from_jsonl(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"problem": "a"}) + "\n" + json.dumps({"problem": "b", "x": 1}) + "\n")
    assert read_text(jsonl_file=str(path), index=1)[0] == "b"
    with pytest.raises(ValueError, match="no field 'nope'"):
        read_text(jsonl_file=str(path), field="nope")
    with pytest.raises(ValueError, match="exactly one"):
        read_text()
