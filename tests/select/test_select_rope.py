"""RoPE helper against Hugging Face's Llama rotary embedding (default and llama3 scaling)."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from sglang_kv.select.rope import RopeParams, apply_rope, inv_freq, inverse_rope

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}


def _hf(head_dim, theta, scaling=None):
    cfg = LlamaConfig(hidden_size=head_dim * 2, num_attention_heads=2, num_key_value_heads=1, head_dim=head_dim,
                      rope_theta=theta, rope_scaling=dict(scaling) if scaling else None,  # HF edits it in place
                      max_position_embeddings=131072)
    return cfg, LlamaRotaryEmbedding(cfg)


@pytest.mark.parametrize("head_dim,theta,scaling", [(64, 100000.0, None), (128, 500000.0, LLAMA3), (32, 10000.0, None)])
def test_apply_matches_hugging_face_and_inverse_undoes_it(head_dim, theta, scaling):
    torch.manual_seed(0)
    cfg, rotary = _hf(head_dim, theta, scaling)
    params = RopeParams.from_hf_config(cfg)
    torch.testing.assert_close(inv_freq(params, head_dim), rotary.inv_freq.float(), rtol=0, atol=0)
    positions = torch.tensor([0, 1, 7, 1000, 32767, 131071])
    x = torch.randn(len(positions), 3, head_dim)
    cos, sin = rotary(x, positions[None])
    hf, _ = apply_rotary_pos_emb(x.transpose(0, 1)[None], x.transpose(0, 1)[None], cos, sin)
    ours = apply_rope(x, positions, params)
    torch.testing.assert_close(ours, hf[0].transpose(0, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(inverse_rope(ours, positions, params), x, rtol=1e-5, atol=1e-5)


def test_from_hf_config_reads_both_config_styles_and_dicts():
    expected = RopeParams(theta=500000.0, **LLAMA3)
    cfg, _ = _hf(128, 500000.0, LLAMA3)
    assert RopeParams.from_hf_config(cfg) == expected
    assert RopeParams.from_hf_config({"rope_theta": 500000.0, "rope_scaling": LLAMA3}) == expected  # 4.x json
    assert RopeParams.from_hf_config({"rope_parameters": {"rope_theta": 500000.0, **LLAMA3}}) == expected  # 5.x
    assert RopeParams.from_hf_config({"rope_theta": 1e6}) == RopeParams(theta=1e6)


def test_unsupported_rope_is_rejected():
    with pytest.raises(ValueError, match="not supported"):
        RopeParams.from_hf_config({"rope_parameters": {"rope_theta": 1e4, "rope_type": "yarn", "factor": 4.0}})
    with pytest.raises(ValueError, match="partial rotary"):
        RopeParams.from_hf_config({"rope_theta": 1e4, "partial_rotary_factor": 0.5})
    with pytest.raises(ValueError, match="no rope_theta"):
        RopeParams.from_hf_config({})


def test_relative_positions_only():
    # q . k after RoPE depends on the position difference only
    torch.manual_seed(1)
    params = RopeParams(theta=10000.0)
    q, k = torch.randn(1, 1, 64).double(), torch.randn(1, 1, 64).double()
    a = (apply_rope(q, torch.tensor([900]), params) * apply_rope(k, torch.tensor([100]), params)).sum()
    b = (apply_rope(q, torch.tensor([1800]), params) * apply_rope(k, torch.tensor([1000]), params)).sum()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
