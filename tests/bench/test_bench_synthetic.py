"""The synthetic generator: shapes, determinism, and that it builds what its docstring says."""


import pytest
import torch

from sglang_kv.bench.shapes import MODELS, ModelSpec
from sglang_kv.bench.synthetic import SyntheticSpec, content_pairs, make_layer, record_layout
from sglang_kv.select import ModelShape, RopeParams
from sglang_kv.select.rope import inverse_rope

MODEL = ModelSpec(ModelShape(8, 2, 64), 4, RopeParams(theta=500000.0))


@pytest.fixture(scope="module")
def layer():
    return make_layer(SyntheticSpec(num_tokens=3000, num_queries=4, seed=1), MODEL, 0)


def test_shapes_dtypes_and_determinism(layer):
    assert layer.keys.shape == layer.values.shape == (3000, 2, 64) and layer.keys.dtype == torch.bfloat16
    assert layer.queries.shape == (4, 8, 64) and layer.query_positions.tolist() == [3000] * 4
    assert layer.targets.shape == (4, 2, 4 * 2)  # per kv head: 4 query heads x 2 identifier tokens
    again = make_layer(SyntheticSpec(num_tokens=3000, num_queries=4, seed=1), MODEL, 0)
    assert torch.equal(layer.keys, again.keys) and torch.equal(layer.queries, again.queries)
    other = make_layer(SyntheticSpec(num_tokens=3000, num_queries=4, seed=1), MODEL, 1)
    assert not torch.equal(layer.keys, other.keys)


def test_records_do_not_align_with_chunks():
    spec = SyntheticSpec(num_tokens=5000)
    record, offset, num = record_layout(spec)
    lengths = torch.bincount(record)[:-1]  # the last record may be cut
    assert lengths.min() >= 48 and lengths.max() <= 80 and len(set(lengths.tolist())) > 10
    assert torch.equal(offset[record == 3], torch.arange(int(lengths[3])))


def test_targets_are_identifier_tokens_and_logits_are_calibrated(layer):
    spec = SyntheticSpec(num_tokens=3000, num_queries=4, seed=1)
    record, offset, _ = record_layout(spec)
    is_id = (offset >= spec.id_offset) & (offset < spec.id_offset + spec.id_len)
    assert bool(is_id[layer.targets.flatten()].all())
    k = layer.keys.float()
    gaps_field, gaps_target = [], []
    for qi in range(4):
        for h in range(8):
            g = h // 4
            logits = k[:, g] @ layer.queries[qi, h].float() * layer.scale
            # each head of the group looks for one of the group's records: the best-scoring one
            group_tokens = layer.targets[qi, g]
            best = max(record[group_tokens].unique().tolist(),
                       key=lambda r: float(logits[group_tokens[record[group_tokens] == r]].mean()))
            own = group_tokens[record[group_tokens] == best]
            others = is_id.clone()
            others[own] = False
            gaps_field.append(float(logits[is_id].mean() - logits.mean()))
            gaps_target.append(float(logits[own].mean() - logits[others].mean()))
    # calibrated per head on the same keys in float32; bf16 rounding of q and k moves them slightly
    assert sum(gaps_field) / len(gaps_field) == pytest.approx(spec.field_logit, abs=0.5)
    assert sum(gaps_target) / len(gaps_target) == pytest.approx(spec.target_logit, abs=1.0)


def test_outlier_channels_and_shared_low_rank_structure(layer):
    pre = inverse_rope(layer.keys.float(), layer.positions, MODEL.rope)
    means = pre.mean(0).abs()  # (Hkv, D): outliers are constant offsets of 8 standard deviations
    for h in range(2):
        big = torch.nonzero(means[h] > 4).flatten()
        assert len(big) == 4
        pairs = content_pairs(MODEL.rope, 64, 3000)
        assert bool(torch.cat([pairs, pairs])[big].all())  # in the slowly turning pairs
    # the template rank-32 part dominates: 32 of 128 directions hold most of the non-outlier energy
    x = (pre - pre.mean(0)).reshape(3000, -1)
    s = torch.linalg.svdvals(x) ** 2
    assert s[:32].sum() / s.sum() > 0.6


def test_content_pairs_follow_the_rope_frequencies():
    llama = MODELS["llama-3.1-8b"]
    assert int(content_pairs(llama.rope, 128, 32768).sum()) == 25
    assert int(content_pairs(MODELS["smollm2-135m"].rope, 64, 4096).sum()) == 10
    pairs = content_pairs(llama.rope, 128, 32768)
    assert bool(pairs[-1]) and not bool(pairs[0])  # the lowest frequencies are the last pairs
    with pytest.raises(ValueError, match="turns by less than"):
        content_pairs(RopeParams(theta=2.0), 8, 10**9)
