"""A real `bgeicl serve` process on a loopback port, for integration tests
and benchmarks.

    with Server(bin_path, "--api-key", "k") as srv:
        requests.post(srv.url + "/v1/embeddings", ...)

The server's log (stderr) goes to a temporary file; `srv.log()` reads it.
`stop()` sends SIGTERM and returns the exit status; leaving the `with` block
stops the server if it still runs and fails the test on a non-zero exit
unless `expect_rc` says otherwise.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "models" / "bge-small-en-v1.5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=120):
    """One HTTP request; returns (status, headers dict (lower-case keys), body bytes).
    Never raises on HTTP error statuses."""
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Server:
    def __init__(self, bin_path, *args, model=DEFAULT_MODEL, threads=2, env=None,
                 port=None, expect_rc=0, ready_timeout=180, wait_ready=True):
        self.bin_path = bin_path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [bin_path, "serve", "--model", str(model), "--host", "127.0.0.1",
                     "--port", str(self.port), "--threads", str(threads), *args]
        self.env = dict(os.environ, **(env or {}))
        self.expect_rc = expect_rc
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.proc = None
        self._log = tempfile.NamedTemporaryFile(prefix="bgeicl-serve-", suffix=".log")

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env)
        if self.wait_ready:
            self.wait_healthy()
        return self

    def wait_healthy(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                st, _, _ = http("GET", self.url + "/health", timeout=5)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {self.ready_timeout}s:\n{self.log()}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"server ignored signal {sig} for {timeout}s:\n{self.log()}")
        return self.proc.returncode

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        log = self.log()
        self._log.close()
        if exc_type is None and self.expect_rc is not None:
            assert rc == self.expect_rc, f"server exit status {rc}:\n{log[-4000:]}"
        return False
