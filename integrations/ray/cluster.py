"""LocalCluster: a single-machine Ray cluster on 127.0.0.1, stopped by its process ids.

For tests and benchmarks: ``ray start --head --block`` in a new session (its own process group)
with a free port, no dashboard and no usage stats; ``stop()`` terminates that process group and
every process it started (found by pid, as descendants of the head), never by process name, so
other Ray clusters on the machine are left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalCluster:
    """A Ray head node on 127.0.0.1 with ``num_cpus`` worker CPUs; a context manager.

    ``pythonpath``: folders the workers import from (prepended to PYTHONPATH); ``env``: more
    environment for the head and its workers. ``address`` is what ``ray.init`` and
    ``RayExecutor(address=...)`` take once ``start()`` returned.
    """

    def __init__(
        self,
        num_cpus: int = 2,
        *,
        pythonpath: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.num_cpus = num_cpus
        self.pythonpath = [str(p) for p in pythonpath]
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` of the head's GCS."""
        if self.port is None:
            raise RuntimeError("the cluster is not started")
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalCluster:
        """Start the head and wait until it accepts connections."""
        # Ray's socket paths must stay short: a temp dir directly under /tmp.
        self._temp = tempfile.TemporaryDirectory(
            prefix="ggray-", dir="/tmp", ignore_cleanup_errors=True
        )
        self.port = free_port()
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **self.env)
        paths = [*self.pythonpath, *filter(None, [env.get("PYTHONPATH")])]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        ray_cli = Path(sys.executable).with_name("ray")
        command = [
            str(ray_cli) if ray_cli.exists() else "ray",
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self._temp.name}",
        ]
        self._log = open(Path(self._temp.name) / "head.log", "wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process.poll() is not None:
                log = Path(self._temp.name, "head.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the Ray head did not open port {self.port} in time"
                    ) from None
                time.sleep(0.2)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the head's process group and every process it started, by process id."""
        process = self.process
        if process is not None:
            descendants = _descendants(process.pid)
            for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(process.pid, sig)  # start_new_session: pgid == pid
                except ProcessLookupError:
                    pass
                for child in descendants:
                    _signal(child, sig)
                try:
                    process.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
                if not any(_alive(child) for child in descendants):
                    break
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return []
    try:
        children: list[Any] = psutil.Process(pid).children(recursive=True)
        return children
    except psutil.Error:
        return []


def _signal(process: Any, sig: int) -> None:
    import psutil

    try:
        process.send_signal(sig)
    except psutil.Error:
        pass


def _alive(process: Any) -> bool:
    import psutil

    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
