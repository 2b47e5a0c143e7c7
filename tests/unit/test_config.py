import json

import pytest

from sglang_kv.config import ConfigError, OffloadConfig, flag_name, parse_host_mem, split_argv


def test_defaults_follow_the_methods():
    assert OffloadConfig().method == "none"
    yakv = OffloadConfig(method="yakv")
    assert (yakv.budget, yakv.local, yakv.sink, yakv.kv_bits, yakv.landmark_bits) == (0.03125, 64, 0, 4, 2)
    shadow = OffloadConfig(method="shadowkv")
    assert (shadow.budget, shadow.local, shadow.shadowkv_rank, shadow.shadowkv_chunk, shadow.shadowkv_outliers) == (
        0.015625, 32, 160, 8, 48)
    assert OffloadConfig(method="quest").quest_page == 16
    assert OffloadConfig(method="oracle", local=5).local == 5  # explicit values win over defaults


def test_budget_fraction_and_token_count():
    frac = OffloadConfig(method="oracle", budget=0.03125)
    assert frac.budget_tokens(32768) == 1024
    assert frac.budget_tokens(100) == 4  # ceil(3.125)
    assert OffloadConfig(method="oracle", budget=1.0).budget_tokens(777) == 777
    assert OffloadConfig(method="oracle", budget=4096).budget_tokens(100_000) == 4096


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"budget": 0}, "--kv-offload-budget"),
        ({"budget": -0.5}, "--kv-offload-budget"),
        ({"budget": 12.5}, "--kv-offload-budget"),
        ({"budget": float("nan")}, "--kv-offload-budget"),
        ({"local": -1}, "--kv-offload-local"),
        ({"sink": -3}, "--kv-offload-sink"),
        ({"min_prompt": -1}, "--kv-offload-min-prompt"),
        ({"kv_bits": 3}, "--kv-offload-kv-bits"),
        ({"landmark_bits": 5}, "--kv-offload-landmark-bits"),
        ({"landmark_residual": 1}, "--kv-offload-landmark-residual"),
        ({"payload_group": "page"}, "--kv-offload-payload-group"),
        ({"shadowkv_rank": 0}, "--kv-offload-shadowkv-rank"),
        ({"shadowkv_chunk": 0}, "--kv-offload-shadowkv-chunk"),
        ({"shadowkv_outliers": -1}, "--kv-offload-shadowkv-outliers"),
        ({"quest_page": 0}, "--kv-offload-quest-page"),
        ({"decode_chunks": 0}, "--kv-offload-decode-chunks"),
        ({"decode_chunks": 1.5}, "--kv-offload-decode-chunks"),
        ({"decode_finish_sms": -1}, "--kv-offload-decode-finish-sms"),
        ({"decode_timing": -1}, "--kv-offload-decode-timing"),
        ({"decode_graph": 3}, "--kv-offload-decode-graph"),
        ({"decode_graph": True}, "--kv-offload-decode-graph"),
        ({"host_mem": "lots"}, "--kv-offload-host-mem"),
        ({"host_mem": "150%"}, "--kv-offload-host-mem"),
        ({"host_mem": "0"}, "--kv-offload-host-mem"),
    ],
)
def test_invalid_values_name_their_flag(kwargs, flag):
    with pytest.raises(ConfigError, match=f"^{flag}:"):
        OffloadConfig(method="yakv", **kwargs)


def test_unknown_method_is_rejected():
    with pytest.raises(ConfigError, match="^--kv-offload: unknown method 'magic'"):
        OffloadConfig(method="magic")


def test_from_flags_parses_every_flag():
    cfg = OffloadConfig.from_flags([
        "--kv-offload", "shadowkv", "--kv-offload-budget=0.05", "--kv-offload-local", "16",
        "--kv-offload-sink", "4", "--kv-offload-min-prompt", "100", "--kv-offload-host-mem", "2GB",
        "--kv-offload-kv-bits", "16", "--kv-offload-landmark-bits", "3", "--kv-offload-landmark-residual", "4",
        "--kv-offload-payload-group", "token", "--kv-offload-shadowkv-rank", "64", "--kv-offload-shadowkv-chunk", "4",
        "--kv-offload-shadowkv-outliers", "2", "--kv-offload-quest-page", "8", "--kv-offload-decode-chunks", "2",
        "--kv-offload-decode-finish-sms", "16", "--kv-offload-decode-timing", "8", "--kv-offload-decode-graph", "1",
    ])
    assert cfg == OffloadConfig(
        method="shadowkv", budget=0.05, local=16, sink=4, min_prompt=100, host_mem="2GB", kv_bits=16,
        landmark_bits=3, landmark_residual=4, payload_group="token", shadowkv_rank=64, shadowkv_chunk=4, shadowkv_outliers=2,
        quest_page=8, decode_chunks=2, decode_finish_sms=16, decode_timing=8, decode_graph=1,
    )
    assert OffloadConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json())["method"] == "shadowkv"


def test_flags_without_method_are_rejected():
    with pytest.raises(ConfigError, match="^--kv-offload-budget: given without --kv-offload"):
        OffloadConfig.from_flags(["--kv-offload-budget", "0.1"])
    assert OffloadConfig.from_flags([]) == OffloadConfig()


def test_split_argv_takes_only_our_flags():
    argv = ["--model-path", "m", "--kv-offload", "oracle", "--port", "1", "--kv-offload-budget=0.5",
            "--kv-offload-local", "8"]
    ours, rest = split_argv(argv)
    assert ours == ["--kv-offload", "oracle", "--kv-offload-budget=0.5", "--kv-offload-local", "8"]
    assert rest == ["--model-path", "m", "--port", "1"]
    with pytest.raises(ConfigError, match="^--kv-offload-bugdet: unknown sglang-kv flag"):
        split_argv(["--kv-offload-bugdet", "0.1"])


def test_host_mem_parsing():
    assert parse_host_mem("50%") == (50.0, "%")
    assert parse_host_mem("24") == (24.0, "GiB")
    assert parse_host_mem("1.5GiB") == (1.5, "GiB")
    cfg = OffloadConfig(method="yakv", host_mem="25%")
    assert cfg.host_mem_bytes(available_bytes=8 * 2**30) == 2 * 2**30
    assert OffloadConfig(method="yakv", host_mem="3").host_mem_bytes(1) == 3 * 2**30


def test_flag_names():
    assert flag_name("method") == "--kv-offload"
    assert flag_name("shadowkv_rank") == "--kv-offload-shadowkv-rank"
