"""The background thread a tracker makes its MLflow calls on, so a slow or remote tracking
server never blocks the optimization's event loop. Items are handled in the order they were
put; between items (every ``every_s`` seconds of quiet, and at each flush) the ``idle`` call
runs, which is where buffered metrics go out. The first failure is logged once and switches the
worker off: tracking stops, the optimization goes on."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gepa_graph.tracking")


class _Flush:
    """Queue marker: the worker sets ``done`` once everything queued before it is handled."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class Worker:
    """One daemon thread (``gepa-mlflow``) calling ``handle(item)`` for each item ``put``, in
    order, and ``idle()`` when there is nothing to do; ``failed`` once a call raised."""

    def __init__(
        self,
        handle: Callable[[Any], None],
        idle: Callable[[], None],
        every_s: float = 5.0,
        timeout_s: float = 120.0,
    ) -> None:
        self.handle = handle
        self.idle = idle
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.failed = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """Whether the thread runs (it starts with the first item)."""
        return self._thread is not None

    def put(self, item: Any) -> None:
        """Queue ``item`` for ``handle``, starting the thread if needed."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="gepa-mlflow", daemon=True)
            self._thread.start()
        self._queue.put(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything put so far is handled; False if it timed out."""
        if self._thread is None:
            return True
        marker = _Flush()
        self._queue.put(marker)
        done = marker.done.wait(self.timeout_s if timeout is None else timeout)
        if not done:
            log.warning("MLflow tracking did not finish writing within %.0f s", self.timeout_s)
        return done

    def stop(self) -> None:
        """End the thread once it has handled what is queued (waiting up to ``timeout_s``)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.timeout_s)

    def guard(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` unless the worker failed; an exception turns it off (``fail``)."""
        if self.failed:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        """Switch tracking off for the rest of the optimization, saying why once."""
        if not self.failed:
            self.failed = True
            log.warning(
                "MLflow tracking failed (%s: %s); tracking is off for the rest of this "
                "optimization, which continues",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.every_s)
            except queue.Empty:
                self.guard(self.idle)
                continue
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                self.guard(self.idle)
                item.done.set()
            else:
                self.guard(self.handle, item)
