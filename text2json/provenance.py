"""Provenance of result files: the command, git commit, machine and date of a measurement.

The same record shape as ``sglang_kv.results`` (command, commit, machine, date, workload, figures),
written here because ``text2json`` does not depend on ``sglang_kv``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def git_commit() -> str:
    """HEAD of the checkout the command runs in, with ``-dirty`` for uncommitted tracked changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return head.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("SGLANG_KV_COMMIT", "unknown")


def machine() -> dict:
    info = {"hostname": platform.node(), "platform": platform.platform(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    return info


def result_record(workload: dict, figures: dict, command: str | None = None) -> dict:
    return {
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": os.environ.get("SGLANG_KV_COMMIT") or git_commit(),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "workload": workload,
        "figures": figures,
    }


def write_result(path: str | os.PathLike, workload: dict, figures: dict, command: str | None = None) -> dict:
    """Write one provenance-carrying result JSON (creating parent folders) and return it."""
    record = result_record(workload, figures, command)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record
