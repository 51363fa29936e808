"""A server in a child process, waited for until its ``/health`` answers: ``python -m duet_verl.serve`` and
``vllm serve`` engines for the serving tests and ``benchmarks/bench_serve.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``command`` (which must listen on ``port``) started with its output in ``log``; ``start`` returns once
    ``GET /health`` answers 200, and fails with the log's tail if the process exits or ``timeout_s`` passes."""

    def __init__(self, command: list[str], port: int, log: Path, env: dict | None = None, timeout_s: float = 300):
        self.command, self.port, self.log, self.env, self.timeout_s = command, port, Path(log), env, timeout_s
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[:3]} exited with {self.process.returncode}:\n{self.tail()}")
            if self.health()[0] == 200:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.command[:3]} did not answer {self.url}/health in {self.timeout_s}s:\n{self.tail()}")

    def health(self) -> tuple[int | None, str]:
        """``/health``'s status and body; (None, why) when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return None, repr(error)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process group: the server dies as a crashed one does, children and all."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
