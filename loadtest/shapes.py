"""Load shapes: constant users, a concurrency sweep, and Poisson open-loop arrivals.

A run is a list of :class:`Stage`. A closed-loop stage keeps ``users`` requests in flight (each
user sends its next request when the previous one ends: bench_serving's ``--max-concurrency``
with an infinite request rate). A Poisson stage runs ``users`` arrival generators that together
send ``request_rate`` requests per second with exponential gaps, without waiting for responses
(bench_serving's ``--request-rate``).

The locustfile's ``StagedShape`` plays the stages on the Locust master (or the local runner) and
broadcasts each new stage to the processes that send requests, which label their records with it.
This module does not import Locust: importing Locust monkey-patches the whole process with gevent,
which the tests' own process must not undergo.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import NamedTuple

SHAPES = ("constant", "sweep", "poisson")
STAGE_MESSAGE = "loadtest_stage"
CLOSED_LOOP_USER = "ClosedLoopUser"
POISSON_USER = "PoissonUser"


class Stage(NamedTuple):
    label: str  # written into every record sent during the stage: "users=4" or "rate=2"
    users: int  # closed-loop users, or Poisson arrival generators
    spawn_rate: float  # users started per second when entering the stage
    duration_s: float  # math.inf: until --run-time ends the test
    request_rate: float | None = None  # total arrivals per second; None for closed loop

    @property
    def user_class(self) -> str:
        return CLOSED_LOOP_USER if self.request_rate is None else POISSON_USER

    @property
    def rate_per_user(self) -> float:
        """Arrival rate of one generator: independent Poisson processes add up to request_rate."""
        if self.request_rate is None:
            raise ValueError(f"stage {self.label} is closed loop")
        return self.request_rate / self.users


def constant_stages(users: int, spawn_rate: float) -> list[Stage]:
    if users < 1:
        raise ValueError(f"--users must be >= 1, got {users}")
    return [Stage(f"users={users}", users, spawn_rate, math.inf)]


def sweep_stages(levels: list[int], stage_s: float) -> list[Stage]:
    """One closed-loop stage per concurrency level; each level's users start within a second."""
    if not levels or min(levels) < 1:
        raise ValueError(f"--sweep-users needs levels >= 1, got {levels}")
    if stage_s <= 0:
        raise ValueError(f"--stage-time must be > 0 for a sweep, got {stage_s}")
    return [Stage(f"users={n}", n, float(n), stage_s) for n in levels]


def poisson_stages(rates: list[float], generators: int, stage_s: float | None) -> list[Stage]:
    """One open-loop stage per rate; a single rate may run until --run-time (``stage_s`` None)."""
    if not rates or min(rates) <= 0:
        raise ValueError(f"--request-rate needs rates > 0, got {rates}")
    if generators < 1:
        raise ValueError(f"--users (arrival generators) must be >= 1, got {generators}")
    if stage_s is None and len(rates) > 1:
        raise ValueError("--stage-time is needed with several --request-rate values")
    duration = math.inf if stage_s is None else stage_s
    return [Stage(f"rate={r:g}", generators, float(generators), duration, r) for r in rates]


def stage_at(stages: list[Stage], elapsed_s: float) -> Stage | None:
    """The stage running ``elapsed_s`` seconds into the run; None once all have ended."""
    end = 0.0
    for stage in stages:
        end += stage.duration_s
        if elapsed_s < end:
            return stage
    return None


def parse_duration(text: str, flag: str) -> int:
    """Locust's time spans: ``90``, ``90s``, ``2m``, ``1h30m`` -> seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{flag}: expected a time span like 30s, 2m or 1h30m, got {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return 3600 * hours + 60 * minutes + seconds


def _parse_list(text: str, kind: type, flag: str) -> list:
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag}: expected comma-separated numbers, got {text!r}") from None


def stages_from_options(options: argparse.Namespace) -> list[Stage]:
    """The run's stages from the locustfile's flags (``--loadtest-shape`` and friends)."""
    stage_s = parse_duration(options.stage_time, "--stage-time") if options.stage_time else None
    users = options.num_users or 1
    if options.loadtest_shape == "constant":
        return constant_stages(users, options.spawn_rate or float(users))
    if options.loadtest_shape == "sweep":
        return sweep_stages(_parse_list(options.sweep_users, int, "--sweep-users"), stage_s or 0)
    if options.loadtest_shape == "poisson":
        if not options.request_rate:
            raise ValueError("--loadtest-shape poisson needs --request-rate (req/s, comma-separated)")
        return poisson_stages(_parse_list(options.request_rate, float, "--request-rate"), users, stage_s)
    raise ValueError(f"--loadtest-shape must be one of {SHAPES}, got {options.loadtest_shape!r}")

