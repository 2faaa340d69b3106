"""A worker as a child process: started, probed for readiness, stopped or killed.

Used by the demo, the integration tests and the fault scripts, so all three run the
worker exactly as production does (``labelstream worker``), not an in-process imitation.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_key(env: Mapping[str, str]) -> str | None:
    """One of the API keys a worker with environment ``env`` accepts, or None (no keys).

    >>> server_key({"LABELSTREAM_API_KEYS": " " + "k" * 16 + ",x"}), server_key({})
    ('kkkkkkkkkkkkkkkk', None)
    """
    keys = [k.strip() for k in env.get("LABELSTREAM_API_KEYS", "").split(",") if k.strip()]
    path = env.get("LABELSTREAM_API_KEYS_FILE")
    if path:
        try:
            keys += [ln.strip() for ln in Path(path).read_text().splitlines()
                     if ln.strip() and not ln.strip().startswith("#")]
        except OSError:
            pass  # the worker itself refuses to start, with the reason
    return keys[0] if keys else None


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, web_port: int | None = None,
                 prefix: list[str] | None = None):
        self.web_port = web_port or free_port()
        self.prefix = prefix or []  # e.g. a profiler: ["py-spy", "record", ..., "--"]
        self.env = {**os.environ, **env, "LABELSTREAM_WEB_PORT": str(self.web_port),
                    "LABELSTREAM_WEB_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*self.prefix, sys.executable, "-m", "app.cli", "worker"], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    def _started(self) -> subprocess.Popen:
        assert self.proc is not None, "start() the worker first"
        return self.proc

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def api_key(self) -> str | None:
        """A key the worker accepts (its environment's), sent with every probe: with keys
        configured, /health/ready only shows its details to a request with one."""
        return server_key(self.env)

    def health(self, fresh: bool = False) -> dict | None:
        """/health/ready's body (None while it does not answer); ``fresh``: table sizes counted for
        this request (a large RocksDB table's count is otherwise reused for a while, with its age)."""
        key = self.api_key
        request = urllib.request.Request(f"http://127.0.0.1:{self.web_port}/health/ready" + ("?fresh=1" if fresh else ""),
                                         headers={"Authorization": f"Bearer {key}"} if key else {})
        try:
            with urllib.request.urlopen(request, timeout=30 if fresh else 2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read() or b"{}")
            except ValueError:  # a plain-text 500: /health/ready raced the consumer's start
                return None
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 90.0, min_training: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"worker exited with code {self._started().returncode}: see {self.log_path}\n{self.tail()}")
            h = self.health()
            if h and h.get("ready") and h.get("training_records_applied", 0) >= min_training:
                return h
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready within {timeout:.0f}s (last health: {self.health()}): "
                           f"see {self.log_path}\n{self.tail(60)}")  # CI keeps the output of a failed run, not the file

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        if not self.alive:
            return self.proc.returncode if self.proc else None
        proc = self._started()  # alive implies started
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """kill -9 the worker (the crash a fault test wants)."""
        if self.alive:
            os.killpg(self._started().pid, signal.SIGKILL)
        return self.proc.wait(10) if self.proc else None
