"""Result files under ``results/``: every measured figure travels with its provenance.

Each JSON records the exact command, the git commit, the machine, the date, the workload and the
measured figures, so a number quoted in the README can be traced and re-run.
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


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("SGLANG_KV_COMMIT", "unknown")


def machine_description() -> dict[str, Any]:
    """CPU, RAM, GPU (if any) and library versions of the machine running the measurement."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    return info


def result_record(workload: dict[str, Any], figures: dict[str, Any], command: str | None = None) -> dict:
    """The provenance-carrying record written by :func:`write_result`."""
    return {
        "command": command if command is not None else shlex.join([sys.executable, *sys.argv]),
        "commit": os.environ.get("SGLANG_KV_COMMIT") or _git_commit(),
        "machine": machine_description(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "workload": workload,
        "figures": figures,
    }


def write_result(path: str | os.PathLike, workload: dict[str, Any], figures: dict[str, Any],
                 command: str | None = None) -> dict:
    """Write one result JSON (creating parent folders) and return the record."""
    record = result_record(workload, figures, command)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return record
