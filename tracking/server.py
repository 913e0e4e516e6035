"""A local ``mlflow server``: the command ``gepa-graph ui`` runs, and a context manager that starts
one on a free port of 127.0.0.1 and stops it by its process id (tests, the screenshot script).

One worker and ``LITELLM_LOCAL_MODEL_COST_MAP=True``: without them the server hangs offline.
``check_reachable`` asks any server whether it answers, before a tracker relies on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def server_command(
    host: str, port: int, backend_store_uri: str | None = None, artifacts: str | Path | None = None
) -> list[str]:
    """The ``mlflow server`` command line: one worker (more hang offline), optionally a store
    and an artifacts folder."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if backend_store_uri:
        command += ["--backend-store-uri", backend_store_uri]
    if artifacts:
        command += ["--artifacts-destination", str(artifacts)]
    return command


def server_env() -> dict[str, str]:
    """The server's environment: ours, with LiteLLM's price map read locally (no network)."""
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now, for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and its children, by its group id."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def local_server(root: str | Path, timeout_s: float = 120.0) -> Iterator[str]:
    """An ``mlflow server`` on 127.0.0.1 with its SQLite store and artifacts under ``root``;
    yields its URI once healthy, stops it on exit. RuntimeError (with the log's tail) if it
    exits or does not become healthy in ``timeout_s``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            server_command("127.0.0.1", port, f"sqlite:///{root}/server.db", root / "artifacts"),
            cwd=root,
            env=server_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not become healthy in {timeout_s:.0f} s")
            time.sleep(0.25)
        yield uri
    finally:
        stop(process)


def check_reachable(uri: str | None, timeout_s: float = 3.0) -> None:
    """Fail at once for an MLflow server that does not answer: MLflow's own client retries a
    refused connection for minutes, and the optimization would wait for it at the end."""
    if not uri or not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # it answers (a proxy or auth in front of it): let MLflow's client deal with it
    except OSError as exc:
        raise ConnectionError(f"MLflow server {uri} does not answer ({exc})") from None
