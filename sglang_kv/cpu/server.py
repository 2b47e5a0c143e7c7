"""Launch a real ``python -m sglang.launch_server`` for tests, demos and benchmarks.

On CPU (the default) the server runs with ``SGLANG_USE_CPU_ENGINE=1 --device cpu
--attention-backend torch_native`` and the torch stand-in for sgl-kernel's CPU ops first on
PYTHONPATH (``sgl_kernel_stub/``); with ``cpu=False`` it is launched as is (the GPU host). The
context manager waits for ``/health``, yields a handle with the base URL, and always shuts the
server down (the whole process group), also when the body raises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import requests

STUB_DIR = Path(__file__).resolve().parent / "sgl_kernel_stub"


@dataclass
class CpuServer:
    """A running server: ``url`` is the base (``http://127.0.0.1:PORT``), ``log_path`` its output."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def server_info(self) -> dict:
        r = requests.get(f"{self.url}/server_info", timeout=30)
        r.raise_for_status()
        return r.json()

    def offload_stats(self) -> dict:
        """The plugin's accounting of scheduler 0 (``internal_states[0]["kv_offload"]``)."""
        return self.server_info()["internal_states"][0]["kv_offload"]

    def kill(self) -> None:
        """Kill the server's whole process group at once (SIGKILL), e.g. to test client failures."""
        _kill_group(self.process, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model_path: str | os.PathLike, port: int, extra_args: Sequence[str] = (),
                   cpu: bool = True) -> list[str]:
    cpu_args = ["--device", "cpu", "--attention-backend", "torch_native", "--max-total-tokens", "65536"]
    return [
        sys.executable, "-m", "sglang.launch_server",
        "--model-path", str(model_path),
        *(cpu_args if cpu else []),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--log-level", "info",
        *extra_args,
    ]


def server_env(extra_env: dict[str, str] | None = None, cpu: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)  # set by the CPU test process for its own kernel tests
    if cpu:
        env["SGLANG_USE_CPU_ENGINE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(STUB_DIR), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra_env or {})
    return env


@contextlib.contextmanager
def cpu_server(
    model_path: str | os.PathLike,
    extra_args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    startup_timeout: float = 300.0,
    log_dir: str | os.PathLike | None = None,
    cpu: bool = True,
) -> Iterator[CpuServer]:
    """Start an SGLang server (on CPU unless ``cpu=False``), wait until it answers ``/health``,
    yield it, always stop it.

    Raises RuntimeError (with the server's log tail) if it exits or does not become healthy
    within ``startup_timeout`` seconds.
    """
    port = free_port()
    log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="sglang-kv-server-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            server_command(model_path, port, extra_args, cpu),
            stdout=log, stderr=subprocess.STDOUT, env=server_env(env, cpu), start_new_session=True,
        )
    server = CpuServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_healthy(server, startup_timeout)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: CpuServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"SGLang server exited with code {server.process.returncode} during startup; "
                f"log tail:\n{server.log()[-4000:]}"
            )
        try:
            if requests.get(f"{server.url}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"SGLang server not healthy after {timeout:.0f} s; log tail:\n{server.log()[-4000:]}")


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    if process.poll() is None:
        _kill_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Children (scheduler, detokenizer) may outlive the launcher: always sweep the group.
    _kill_group(process, signal.SIGKILL)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def run_cli(model_path: str | os.PathLike, extra_args: Sequence[str], timeout: float = 300.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the launcher to completion (for startup-failure tests): returns its exit code and output.
    A launcher still running after ``timeout`` seconds is killed (process group) and TimeoutExpired raised."""
    args = server_command(model_path, free_port(), extra_args)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=server_env(env), start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
