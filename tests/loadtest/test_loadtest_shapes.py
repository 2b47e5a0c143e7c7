"""Load stages: constant, concurrency sweep, Poisson rates, and their flags."""

from __future__ import annotations

import argparse
import math

import pytest

from loadtest.shapes import Stage, parse_duration, poisson_stages, stage_at, stages_from_options, sweep_stages


def options(**kw):
    base = dict(loadtest_shape="constant", num_users=None, spawn_rate=None, sweep_users="1,2,4,8",
                stage_time="", request_rate="")
    return argparse.Namespace(**{**base, **kw})


def test_sweep_plays_levels_in_order_then_ends():
    stages = sweep_stages([1, 4, 16], 30)
    assert [(s.label, s.users, s.spawn_rate, s.user_class) for s in stages] == [
        ("users=1", 1, 1.0, "ClosedLoopUser"), ("users=4", 4, 4.0, "ClosedLoopUser"),
        ("users=16", 16, 16.0, "ClosedLoopUser")]
    assert [stage_at(stages, t).label for t in (0, 29.9, 30, 59.9, 60, 89.9)] == [
        "users=1", "users=1", "users=4", "users=4", "users=16", "users=16"]
    assert stage_at(stages, 90) is None


def test_poisson_rates_split_over_generators():
    stages = poisson_stages([2.0, 8.0], generators=4, stage_s=10)
    assert [s.label for s in stages] == ["rate=2", "rate=8"]
    assert stages[1].rate_per_user == 2.0 and stages[1].user_class == "PoissonUser"
    single = poisson_stages([3.0], generators=1, stage_s=None)
    assert single[0].duration_s == math.inf and stage_at(single, 1e9) == single[0]
    with pytest.raises(ValueError, match="closed loop"):
        Stage("users=1", 1, 1.0, 1.0).rate_per_user


def test_stages_from_flags():
    assert stages_from_options(options(num_users=3, spawn_rate=1.0)) == [Stage("users=3", 3, 1.0, math.inf)]
    sweep = stages_from_options(options(loadtest_shape="sweep", sweep_users="2,8", stage_time="1m"))
    assert [(s.users, s.duration_s) for s in sweep] == [(2, 60), (8, 60)]
    pois = stages_from_options(options(loadtest_shape="poisson", request_rate="0.5,4", stage_time="20s", num_users=2))
    assert [(s.request_rate, s.users, s.duration_s) for s in pois] == [(0.5, 2, 20), (4.0, 2, 20)]


@pytest.mark.parametrize("kw, message", [
    (dict(loadtest_shape="sweep"), "--stage-time must be > 0"),
    (dict(loadtest_shape="sweep", sweep_users="1,x", stage_time="5s"), "--sweep-users: expected comma-separated"),
    (dict(loadtest_shape="sweep", sweep_users="0,2", stage_time="5s"), "levels >= 1"),
    (dict(loadtest_shape="poisson"), "needs --request-rate"),
    (dict(loadtest_shape="poisson", request_rate="1,2"), "--stage-time is needed"),
    (dict(loadtest_shape="poisson", request_rate="0"), "rates > 0"),
    (dict(loadtest_shape="ramp"), "--loadtest-shape must be one of"),
])
def test_bad_flags_name_the_flag(kw, message):
    with pytest.raises(ValueError, match=message):
        stages_from_options(options(**kw))


def test_parse_duration_matches_locust_time_spans():
    assert [parse_duration(t, "--x") for t in ("45", "45s", "2m", "1h", "1h30m", "1m5s")] == [45, 45, 120, 3600, 5400, 65]
    for bad in ("", "5x", "m", "1.5s"):
        with pytest.raises(ValueError, match="--x: expected a time span"):
            parse_duration(bad, "--x")
