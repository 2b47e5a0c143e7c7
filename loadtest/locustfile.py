"""Locust load test for an SGLang server: streamed requests, bench_serving metrics on quit.

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:30000 \
        -u 8 -r 8 -t 60s --csv out/run1 [--dataset text2json.jsonl] [--slo 'p99_ttft_ms<=2000']

Each process that sends requests writes one JSON line per finished request; workers also forward
theirs to the master with their stats reports. On quit the master (or the single local process)
writes ``{prefix}_records.jsonl``, ``{prefix}_summary.json`` and ``{prefix}_summary.txt``, with
``prefix`` = ``--loadtest-prefix``, else the ``--csv`` prefix, else ``out/loadtest``. Exit code:
Locust's 1 when any request failed, 1 when none completed, 3 when an ``--slo`` threshold is missed.
See ``loadtest/README.md``.
"""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

# Locust imports this file by path; the repository root makes `loadtest` and `sglang_kv` importable
# from any working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import locust  # noqa: E402
import requests  # noqa: E402
from locust import LoadTestShape, User, constant, events, task  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402

from loadtest import client, report  # noqa: E402
from loadtest.prompts import DatasetPrompts, Prompt, RandomTextPrompts, RandomTokenPrompts, load_problems  # noqa: E402
from loadtest.records import RecordWriter, RequestRecord, dump_record, read_records  # noqa: E402
from loadtest.shapes import SHAPES, STAGE_MESSAGE, Stage, stage_at, stages_from_options  # noqa: E402
from loadtest.summary import parse_slos  # noqa: E402

logger = logging.getLogger("loadtest")

RECORDS_KEY = "loadtest_records"  # key of the worker -> master stats report carrying records
FAILURE_BACKOFF_S = 0.2  # a dead server refuses connections at once: do not spin on it
WATCH_INTERVAL_S = 1.0


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    g = parser.add_argument_group("loadtest (SGLang)")
    g.add_argument("--endpoint", choices=tuple(client.PATHS), default="chat",
                   help="chat: /v1/chat/completions; generate: SGLang's native /generate")
    g.add_argument("--model", default="default", help="model field of chat requests")
    g.add_argument("--dataset", default="", help="text2json build folder or JSON-lines file; its 'problem' fields are the prompts")
    g.add_argument("--max-tokens", type=int, default=1024, help="output budget of --dataset prompts")
    g.add_argument("--random-input-len", type=int, default=1024, help="synthetic prompt length, tokens")
    g.add_argument("--random-output-len", type=int, default=128, help="synthetic output length, tokens")
    g.add_argument("--random-range-ratio", type=float, default=1.0,
                   help="lengths uniform in [len * ratio, len], as bench_serving")
    g.add_argument("--input-ids", action="store_true",
                   help="synthetic prompts as token ids (--endpoint generate on --skip-tokenizer-init servers)")
    g.add_argument("--vocab-size", type=int, default=0, help="the model's vocabulary size (needed by --input-ids)")
    g.add_argument("--seed", type=int, default=1, help="prompt and arrival seed (each worker offsets it by its index)")
    g.add_argument("--loadtest-shape", choices=SHAPES, default="constant",
                   help="constant: -u users; sweep: --sweep-users levels; poisson: --request-rate arrivals")
    g.add_argument("--sweep-users", default="1,2,4,8", help="concurrency levels of the sweep")
    g.add_argument("--stage-time", default="", help="duration of each sweep level / request rate, e.g. 30s")
    g.add_argument("--request-rate", default="", help="Poisson arrivals, req/s in total, comma-separated")
    g.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    g.add_argument("--request-timeout", type=float, default=600.0,
                   help="seconds without a byte from the server before a request fails")
    g.add_argument("--abort-after-failures", type=int, default=50,
                   help="stop the run after this many failures without a success in between (0: never)")
    g.add_argument("--slo", default="", help="thresholds that fail the run, e.g. 'p99_ttft_ms<=2000,completed>=10'")
    g.add_argument("--loadtest-prefix", default="", help="output prefix (default: the --csv prefix, else out/loadtest)")


class RequestFailed(Exception):
    """Carries a failed record's error to Locust's failure statistics."""


class _Process:
    """What one Locust process holds: prompts, the stage, records on their way to disk or master."""

    def __init__(self) -> None:
        self.worker = "local"
        self.next_prompt = None  # set at test start, once the master's options have arrived
        self.stage: Stage | None = None  # set by the shape's broadcast
        self.arrival_rng = random.Random()
        self.writer: RecordWriter | None = None
        self.pending: list[str] = []  # worker: lines not yet sent to the master
        self.workload: dict = {}


_proc = _Process()


def _prompt_source(options, seed: int):
    if options.input_ids and (options.endpoint != "generate" or options.dataset):
        raise ValueError("--input-ids needs --endpoint generate and no --dataset")
    if options.input_ids and options.vocab_size <= 0:
        raise ValueError("--input-ids needs --vocab-size (the model's vocabulary size)")
    if options.dataset:
        return DatasetPrompts(load_problems(options.dataset), options.max_tokens, seed)
    lens = (options.random_input_len, options.random_output_len, options.random_range_ratio, seed)
    if options.input_ids:
        return RandomTokenPrompts(*lens, vocab_size=options.vocab_size)
    return RandomTextPrompts(*lens)


def _prefix(options) -> str:
    return report.default_prefix(options.loadtest_prefix, options.csv_prefix)


def _workload(environment) -> dict:
    options = environment.parsed_options
    try:
        resp = requests.get(environment.host.rstrip("/") + "/server_info", timeout=5)
        server_info = resp.json() if resp.status_code == 200 else f"HTTP {resp.status_code}"
    except (requests.RequestException, ValueError) as exc:
        server_info = f"unavailable: {type(exc).__name__}"
    prompts = {"dataset": options.dataset, "max_tokens": options.max_tokens} if options.dataset else {
        "random_input_len": options.random_input_len, "random_output_len": options.random_output_len,
        "random_range_ratio": options.random_range_ratio, "input_ids": options.input_ids}
    stages = [{k: (None if v == float("inf") else v) for k, v in s._asdict().items()}
              for s in stages_from_options(options)]
    return {
        "host": environment.host, "endpoint": options.endpoint, "model": options.model,
        "shape": options.loadtest_shape, "stages": stages, "prompts": prompts, "seed": options.seed,
        "locust": locust.__version__, "server_info": server_info,
    }


@events.init.add_listener
def _on_init(environment, runner, **_kw) -> None:
    runner.register_message(STAGE_MESSAGE, _on_stage)
    if isinstance(runner, WorkerRunner):
        events.report_to_master.add_listener(_forward_records)
        return
    options = environment.parsed_options
    try:  # validate every flag once, before any user starts
        if not environment.host:
            raise ValueError("--host is required (the SGLang server's base URL)")
        stages_from_options(options)
        parse_slos(options.slo)
        _prompt_source(options, options.seed)
    except ValueError as exc:
        raise SystemExit(f"loadtest: {exc}") from None
    if isinstance(runner, MasterRunner):
        events.worker_report.add_listener(_collect_records)
    if options.abort_after_failures > 0:
        gevent.spawn(_watch_failures, environment, options.abort_after_failures)


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    options, runner = environment.parsed_options, environment.runner
    prefix = _prefix(options)
    if _proc.writer is not None:  # a new test from the web UI starts new files
        _proc.writer.close()
    if isinstance(runner, WorkerRunner):
        _proc.worker = runner.client_id
        _proc.writer = RecordWriter(report.worker_records_path(prefix, runner.client_id))
        seed = options.seed + 1000 * max(runner.worker_index, 0)
    else:
        _proc.writer = RecordWriter(report.records_path(prefix))
        _proc.workload = _workload(environment)
        seed = options.seed
    _proc.pending = []
    _proc.arrival_rng = random.Random(seed)
    if not isinstance(runner, MasterRunner):
        _proc.next_prompt = _prompt_source(options, seed)


def _on_stage(environment, msg, **_kw) -> None:
    _proc.stage = Stage(**msg.data)


def _forward_records(client_id, data) -> None:
    data[RECORDS_KEY], _proc.pending = _proc.pending, []


def _collect_records(client_id, data) -> None:
    lines = data.get(RECORDS_KEY, ())
    if lines and _proc.writer is None:
        logger.warning("loadtest: dropped %d records from %s that arrived before the test", len(lines), client_id)
        return
    for line in lines:
        _proc.writer.write_line(line)


def _watch_failures(environment, limit: int) -> None:
    """Quit once ``limit`` requests have failed since the last success (stats of all workers)."""
    failures_at_last_success, successes = 0, 0
    while True:
        gevent.sleep(WATCH_INTERVAL_S)
        total = environment.runner.stats.total
        if total.num_requests - total.num_failures != successes:
            successes = total.num_requests - total.num_failures
            failures_at_last_success = total.num_failures
        elif total.num_failures - failures_at_last_success >= limit:
            logger.error("loadtest: %d requests failed since the last success, stopping the run "
                         "(--abort-after-failures %d)", total.num_failures - failures_at_last_success, limit)
            environment.process_exit_code = 1
            environment.runner.quit()
            return


@events.quitting.add_listener
def _on_quitting(environment, **_kw) -> None:
    if _proc.writer is None:  # quit before any test started
        return
    _proc.writer.close()
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    records = read_records([_proc.writer.path])
    rep, text = report.write_report(records, _prefix(options), _proc.workload, parse_slos(options.slo))
    print(text, flush=True)
    logger.info("loadtest: %d records, summary in %s_summary.json", len(records), _prefix(options))
    code = report.exit_code(rep)
    if code:
        environment.process_exit_code = code


def _record(record: RequestRecord) -> None:
    line = dump_record(record)
    _proc.writer.write_line(line)
    if _proc.worker != "local":
        _proc.pending.append(line)


class _LLMUser(User):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        if _proc.next_prompt is None or _proc.stage is None:
            raise RuntimeError("loadtest: user started before the test's prompts and stage were set up")
        self.session = requests.Session()
        # Poisson users keep many streams open at once; the default pool would drop connections
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=256)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def on_stop(self) -> None:
        self.session.close()

    def send_one(self) -> bool:
        options = self.environment.parsed_options
        prompt: Prompt = _proc.next_prompt()
        record, num_bytes = client.send(
            self.session, self.host, options.endpoint, prompt, model=options.model,
            timeout=(options.connect_timeout, options.request_timeout), stage=_proc.stage.label,
            worker=_proc.worker)
        _record(record)
        self.environment.events.request.fire(
            request_type="POST", name=client.PATHS[options.endpoint], response_time=record.e2e_s * 1000,
            response_length=num_bytes, response=None, context={"stage": record.stage}, start_time=record.start_time,
            url=self.host, exception=None if record.success else RequestFailed(record.error))
        return record.success


class ClosedLoopUser(_LLMUser):
    """Sends its next request when the previous one ends: N users = N requests in flight."""

    @task
    def request(self) -> None:
        if not self.send_one():
            gevent.sleep(FAILURE_BACKOFF_S)


class PoissonUser(_LLMUser):
    """One Poisson arrival process: requests start at exponential gaps, whether or not earlier ones ended."""

    def on_start(self) -> None:
        super().on_start()
        self.in_flight = gevent.pool.Group()

    def on_stop(self) -> None:
        self.in_flight.kill(block=True, timeout=5)
        super().on_stop()

    @task
    def arrive(self) -> None:
        gevent.sleep(_proc.arrival_rng.expovariate(_proc.stage.rate_per_user))
        self.in_flight.spawn(self.send_one)


class StagedShape(LoadTestShape):
    """Plays the stages of ``loadtest.shapes`` and tells every request-sending process the stage.

    Always present, so Locust always runs it: each stage names the user class to run (closed
    loop or Poisson), and the constant shape reproduces plain ``-u/-r/-t``.
    """

    use_common_options = True  # reads --run-time; constant mode --users/--spawn-rate, Poisson --users

    def __init__(self) -> None:
        super().__init__()
        self._stages: list[Stage] | None = None
        self._current: Stage | None = None

    def tick(self):
        options = self.runner.environment.parsed_options
        if self._stages is None:
            self._stages = stages_from_options(options)
        elapsed_s = self.get_run_time()
        # Locust only arms --run-time after a shape has finished, so the shape enforces it
        if options.run_time and elapsed_s >= options.run_time:
            return None
        stage = stage_at(self._stages, elapsed_s)
        if stage is None:
            return None
        if stage != self._current:
            self._current = stage
            self.runner.send_message(STAGE_MESSAGE, stage._asdict())
        user_classes = [c for c in self.runner.environment.user_classes if c.__name__ == stage.user_class]
        return stage.users, stage.spawn_rate, user_classes
