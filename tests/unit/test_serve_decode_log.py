"""The serving benchmark's steady decode figure, parsed from SGLang's decode log lines."""

from sglang_kv.bench.serve import steady_decode

LOG = """\
[2026-12-01 10:00:00] Prefill batch, #new-seq: 1, #new-token: 8192, #cached-token: 0, token usage: 0.10, #running-req: 0, #queue-req: 3,
[2026-12-01 10:00:01] Decode batch, #running-req: 2, #token: 9000, token usage: 0.11, cuda graph: False, gen throughput (token/s): 50.00, #queue-req: 2,
[2026-12-01 10:00:02] Decode batch, #running-req: 4, #token: 9000, token usage: 0.11, cuda graph: False, gen throughput (token/s): 3.50, #queue-req: 0,
[2026-12-01 10:00:03] Decode batch, #running-req: 4, #token: 9000, token usage: 0.11, cuda graph: False, gen throughput (token/s): 120.25, #queue-req: 0,
[2026-12-01 10:00:04] Decode batch, #running-req: 4, #token: 9000, token usage: 0.11, cuda graph: False, gen throughput (token/s): 118.75, #queue-req: 0,
[2026-12-01 10:00:05] Decode batch, #running-req: 3, #token: 9000, token usage: 0.11, cuda graph: False, gen throughput (token/s): 90.00, #queue-req: 0,
"""


def test_steady_decode_is_the_median_rate_at_the_largest_batch():
    got = steady_decode(LOG)
    assert got["batch"] == 4 and got["lines"] == 5 and got["lines_at_batch"] == 3
    assert got["rates_at_batch"] == [3.5, 120.25, 118.75]
    assert got["tok_s"] == 118.75  # the line whose interval held prefill (3.5) does not drag it down


def test_steady_decode_without_decode_lines_is_none():
    assert steady_decode("[2026-12-01 10:00:00] Prefill batch, #new-seq: 1, #running-req: 0,\n") is None
