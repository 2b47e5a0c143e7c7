"""``sglang-kv`` / ``python -m sglang_kv``: lists the ``--kv-offload*`` flags the plugin adds to
``python -m sglang.launch_server`` (they also appear at the top of its ``--help``)."""

from __future__ import annotations

import sys

from sglang_kv.config import format_flags_help


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("flags", "-h", "--help"):
        print(f"sglang-kv: unknown command {argv[0]!r}; usage: sglang-kv [flags]", file=sys.stderr)
        return 2
    print(format_flags_help())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
