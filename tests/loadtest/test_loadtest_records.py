"""The record type and its JSON-lines files."""

from __future__ import annotations

import pytest

from loadtest.records import RecordWriter, RequestRecord, dump_record, iter_records, read_records


def rec(start, **kw):
    return RequestRecord("generate", start, True, 2.0, ttft_s=0.5, itl_s=(0.25, 0.5), prompt_tokens=3,
                         completion_tokens=3, **kw)


def test_round_trip_through_a_file(tmp_path):
    records = [rec(2.0, stage="rate=1", worker="w1", finish_reason="length"),
               RequestRecord("chat", 1.0, False, 0.1, error="StreamError: HTTP 503: busy")]
    writer = RecordWriter(tmp_path / "sub" / "r.jsonl")
    for r in records:
        writer.write(r)
    writer.close()
    assert writer.num_written == 2
    assert list(iter_records(tmp_path / "sub" / "r.jsonl")) == records
    assert read_records([tmp_path / "sub" / "r.jsonl"]) == records[::-1]  # ordered by start time
    with pytest.raises(ValueError, match="closed"):
        writer.write(records[0])


def test_records_sent_at_the_same_instant_read_in_one_order_whatever_the_file_order(tmp_path):
    # two workers' clocks can agree to the microsecond: the master's merged file and the workers' files
    # list such records in different orders, and both must read back the same
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path, worker in ((first, "w1"), (second, "w2")):
        writer = RecordWriter(path)
        writer.write(rec(5.0, worker=worker))
        writer.write(rec(1.0, worker=worker))
        writer.close()
    ordered = read_records([first, second])
    assert ordered == read_records([second, first])
    assert [(r.start_time, r.worker) for r in ordered] == [(1.0, "w1"), (1.0, "w2"), (5.0, "w1"), (5.0, "w2")]


def test_a_truncated_last_line_is_skipped_but_a_bad_middle_line_raises(tmp_path):
    path = tmp_path / "r.jsonl"
    line = dump_record(rec(1.0))
    path.write_text(line + "\n" + line[:40])  # the writer was killed mid-line
    assert len(list(iter_records(path))) == 1
    path.write_text(line[:40] + "\n" + line + "\n")
    with pytest.raises(ValueError, match="r.jsonl:1: not a JSON line"):
        list(iter_records(path))


def test_invalid_records_are_refused():
    with pytest.raises(ValueError, match="endpoint"):
        RequestRecord("completions", 0.0, True, 1.0, ttft_s=0.5)
    with pytest.raises(ValueError, match="ttft_s <= e2e_s"):
        RequestRecord("chat", 0.0, True, 1.0, ttft_s=1.5)
    with pytest.raises(ValueError, match="needs an error"):
        RequestRecord("chat", 0.0, False, 1.0)
    with pytest.raises(ValueError, match="carries no error"):
        RequestRecord("chat", 0.0, True, 1.0, ttft_s=0.5, error="x")
    with pytest.raises(ValueError, match="unknown record fields"):
        RequestRecord.from_dict({**rec(0.0).to_dict(), "latency": 1.0})
