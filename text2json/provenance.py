"""Provenance of result files: the command, git commit, machine and date of a measurement.

The one implementation of the record every result JSON under ``results/`` carries (command, commit,
machine, date, workload, figures): ``sglang_kv.results`` re-exports it, as ``text2json`` does not
depend on ``sglang_kv`` while ``sglang_kv`` ships with and uses ``text2json``.
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
from typing import Any

_REPO = Path(__file__).resolve().parent  # the checkout whose code is measured (when run from one)


def git_commit() -> str:
    """HEAD of the checkout this package runs from, with ``-dirty`` for uncommitted tracked changes;
    ``$SGLANG_KV_COMMIT`` (else ``unknown``) outside a checkout, e.g. an installed copy on the GPU host."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=_REPO).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=_REPO).stdout.strip()
        return head.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("SGLANG_KV_COMMIT", "unknown")


def machine() -> dict[str, Any]:
    """Host, CPU count and RAM of the machine running the measurement; torch's version and the GPU
    when the measuring process uses torch (it is not imported here for that)."""
    info: dict[str, Any] = {"hostname": platform.node(), "platform": platform.platform(),
                            "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    return info


def result_record(workload: dict[str, Any], figures: dict[str, Any], command: str | None = None) -> dict:
    """The provenance-carrying record :func:`write_result` writes (``command`` defaults to this
    process's interpreter and arguments)."""
    return {
        "command": command if command is not None else shlex.join([sys.executable, *sys.argv]),
        "commit": os.environ.get("SGLANG_KV_COMMIT") or git_commit(),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "workload": workload,
        "figures": figures,
    }


def write_result(path: str | os.PathLike, workload: dict[str, Any], figures: dict[str, Any],
                 command: str | None = None) -> dict:
    """Write one provenance-carrying result JSON (creating parent folders) and return it."""
    record = result_record(workload, figures, command)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record
