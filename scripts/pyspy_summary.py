"""Summarize py-spy folded stacks (``py-spy record --format raw``): the frames with the most samples,
inclusive (the frame anywhere on the stack) and as the leaf, and the samples per process and thread.

    python scripts/pyspy_summary.py pyspy_decode.txt [--top 40] [--match sglang_kv]

``--match`` keeps inclusive frames whose name or file contains one of the given strings (leaves are
always listed). Written for ``scripts/gpu/pyspy_decode.sh``'s output.
"""

from __future__ import annotations

import argparse
import collections
import re

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``"f (path/file.py:12)"`` -> ``"f (path/file.py)"``: lines folded into their function."""
    m = _FRAME.match(frame)
    return f"{m['name']} ({m['file']})" if m else frame


def summarize(lines, top: int, match: list[str]) -> str:
    inclusive: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    processes: collections.Counter = collections.Counter()
    total = 0
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, count = line.rsplit(" ", 1)
        n = int(count)
        total += n
        frames = stack.split(";")
        labels = [f for f in frames if f.startswith(("process ", "thread "))]
        procs = [f[:80] for f in labels if f.startswith("process ")]
        threads = [f for f in labels if f.startswith("thread ")]
        processes[" ".join(procs[-1:] + threads[-1:]) or "?"] += n
        calls = [frame_name(f) for f in frames if not f.startswith(("process ", "thread "))]
        for name in set(calls):
            inclusive[name] += n
        if calls:
            leaves[frames[-1]] += n
    out = [f"{total} samples"]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {p}" for p, n in processes.most_common()]
    out.append("-- inclusive" + (f" (frames matching {match})" if match else ""))
    kept = [(k, n) for k, n in inclusive.most_common() if not match or any(s in k for s in match)]
    out += [f"{n:6d} {100 * n / total:5.1f}%  {k}" for k, n in kept[:top]]
    out.append("-- leaf")
    out += [f"{n:6d} {100 * n / total:5.1f}%  {k}" for k, n in leaves.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", nargs="*", default=[])
    args = parser.parse_args()
    with open(args.path) as f:
        print(summarize(f, args.top, args.match))


if __name__ == "__main__":
    main()
