"""Merge per-worker record files and write the run's summary: ``python -m loadtest.merge``.

    python -m loadtest.merge --out out/run1 [--slo p99_ttft_ms<=2000] [FILE ...]

Without FILEs it reads every ``{out}_records.*.jsonl`` (the workers' own copies, once gathered
on one machine). Writes ``{out}_records.jsonl``, ``{out}_summary.json`` and ``{out}_summary.txt``
and exits like the locustfile (1 when no request completed, 3 when an SLO is missed). Use it when
the master's copy is incomplete, e.g. after the master was killed.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence

from loadtest.records import RecordWriter, RequestRecord, read_records
from loadtest.report import exit_code, records_path, write_report
from loadtest.summary import parse_slos


def merge_records(paths: Sequence[str | os.PathLike]) -> list[RequestRecord]:
    """The records of all files by start time; an identical record seen twice counts once
    (a file given twice, or the master's merged file next to the workers' files)."""
    return list(dict.fromkeys(read_records(paths)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.merge", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output prefix, as --loadtest-prefix / --csv")
    parser.add_argument("--slo", default="", help="thresholds, e.g. 'p99_ttft_ms<=2000'")
    parser.add_argument("files", nargs="*", help="record files (default: {out}_records.*.jsonl)")
    args = parser.parse_args(argv)
    try:
        slos = parse_slos(args.slo)
    except ValueError as exc:
        parser.error(str(exc))
    files = args.files or sorted(glob.glob(glob.escape(args.out) + "_records.*.jsonl"))
    if not files:
        parser.error(f"no record files given and none match {args.out}_records.*.jsonl")
    records = merge_records(files)
    writer = RecordWriter(records_path(args.out))
    for record in records:
        writer.write(record)
    writer.close()
    report, text = write_report(records, args.out, {"merged_from": [str(f) for f in files]}, slos)
    print(text)
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
