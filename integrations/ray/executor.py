"""RayExecutor: each rollout a Ray task on a running cluster; everything else stays here.

The driver (this process) keeps the engine, the evaluator's concurrency, retries, time limits,
budget ledger, cache and journal, tracking and reflection; a worker process only runs
``system.arun(prompts, example)`` and sends the Rollout back. So a run gives the same results as
with the local executor, and a rollout whose worker dies (killed, out of memory, node lost)
comes back as a retryable failure that the evaluator runs again like a rate-limited one.

The system travels once per run: as cloudpickle bytes in the object store, each worker
unpickling it on first use, or -- for systems given as an import path -- as that path, which
each worker imports (a graph holding clients that do not pickle is built there). Ray's own task
retries are off: every attempt is the evaluator's, counted in its ledger.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import ray
from ray.exceptions import (
    LocalRayletDiedError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RayError,
    RaySystemError,
    RayTaskError,
    WorkerCrashedError,
)

from gepa_graph.adapters import system_from_path
from gepa_graph.errors import RayExecutorError
from gepa_graph.integrations.ray.pickling import dumps, loads, unpicklable_part
from gepa_graph.system import MAX_ERROR_CHARS, Rollout, System, failed_rollout
from gepa_graph.usercode import DaemonExecutor, describe

# A worker that died, not a rollout that failed: run it again.
WORKER_DEATHS = (
    WorkerCrashedError,
    NodeDiedError,
    LocalRayletDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RaySystemError,
)


Payload = tuple[Any, ...]
"""How a system travels to the workers: ("pickle", bytes) or ("import", path, module names)."""


class RayExecutor:
    """Runs rollouts as Ray tasks on a running cluster (``gg.optimize(..., executor=...)``).

    ``address``: the cluster, with ``ray.init(address=...)`` semantics; None means
    ``RAY_ADDRESS``, else ``"auto"`` (the cluster started on this machine with ``ray start
    --head``). No cluster is started implicitly; ``address="local"`` is Ray's private
    single-machine one. If this process is already connected (``ray.init`` called), that
    connection is used. ``num_cpus``: CPUs each rollout task reserves (keep the run's
    ``concurrency`` at most the cluster's CPUs / ``num_cpus``, or tasks queue inside their
    time limit). ``runtime_env``: Ray's, for the job (``{"working_dir": ".", "pip": [...]}``).
    ``init_kwargs``: more ``ray.init`` arguments. ``check_timeout_s``: how long ``prepare``
    waits for a worker to load the system.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1.0,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        check_timeout_s: float = 120.0,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.runtime_env = dict(runtime_env) if runtime_env is not None else None
        self.init_kwargs = dict(init_kwargs or {})
        self.check_timeout_s = check_timeout_s
        self._connected_here = False
        self._sources: dict[int, tuple[System, str]] = {}
        self._shipped: dict[int, tuple[System, str, Any]] = {}

    @property
    def target(self) -> str:
        """The address this executor connects to."""
        return self.address or os.environ.get("RAY_ADDRESS") or "auto"

    def connect(self) -> None:
        """Connect this process to the cluster, unless it is connected already."""
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"logging_level": logging.WARNING, **self.init_kwargs}
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        try:
            ray.init(address=self.target, **options)
        except Exception as exc:
            raise RayExecutorError(
                f"cannot connect to the Ray cluster at {self.target!r}: {_one_line(exc)}; start "
                "one with `ray start --head --node-ip-address=127.0.0.1` or pass "
                "RayExecutor(address=...) / set RAY_ADDRESS"
            ) from None
        self._connected_here = True

    def prepare(self, system: System, source: str | None = None) -> None:
        """Connect, check that the system pickles (or remember its import path), and have a
        worker load it: one-line RayExecutorError naming what fails, before any paid call."""
        self.connect()
        if source is not None:
            self._sources[id(system)] = (system, source)
        payload = self._payload(system, modules=False)
        check = _load_check.options(num_cpus=self.num_cpus).remote(payload)
        try:
            _, error = ray.get(check, timeout=self.check_timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(check, force=True)
            raise RayExecutorError(
                f"no Ray worker loaded the system within {self.check_timeout_s:g}s; is the "
                f"cluster at {self.target!r} busy, or without {self.num_cpus:g} free CPU(s)?"
            ) from None
        if error is not None:
            how = (
                f"make {source.partition(':')[0]!r} importable on every node"
                if source is not None
                else "install your code on every node"
            )
            raise RayExecutorError(
                f"a Ray worker cannot load the system: {error}; {how} (PYTHONPATH, pip install, "
                "or RayExecutor(runtime_env={'working_dir': ...}))"
            )

    async def run(self, system: System, prompts: Mapping[str, str], example: Any) -> Rollout:
        """Run ``system.arun(prompts, example)`` as a Ray task and return its Rollout; a
        cancelled run (its time limit passed) cancels the task and kills its worker."""
        token, shipped = self._ship(system)
        task = _rollout.options(num_cpus=self.num_cpus).remote(
            token, shipped, dict(prompts), example
        )
        try:
            data = await task
        except asyncio.CancelledError:
            ray.cancel(task, force=True)  # a hung rollout must not keep its worker busy
            raise
        except RayTaskError as exc:  # the task failed outside the system's own code
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            if isinstance(cause, WORKER_DEATHS) and not isinstance(cause, RayTaskError):
                return _worker_died(cause)  # e.g. an argument lost with its node
            return failed_rollout(cause)
        except WORKER_DEATHS as exc:
            return _worker_died(exc)
        except RayError as exc:
            return failed_rollout(exc)
        try:
            rollout: Rollout = loads(data)
        except Exception as exc:
            return Rollout(error=f"cannot read the rollout a Ray worker sent back: {describe(exc)}")
        return rollout

    def close(self) -> None:
        """Forget shipped systems; disconnect if this executor connected (the cluster stays)."""
        self._shipped.clear()
        self._sources.clear()
        if self._connected_here and ray.is_initialized():
            ray.shutdown()
        self._connected_here = False

    # -- shipping the system

    def _ship(self, system: System) -> tuple[str, Any]:
        """The system's token and object-store reference, put there on its first rollout
        (after the probe run, which may change which prompts it holds)."""
        entry = self._shipped.get(id(system))
        if entry is None or entry[0] is not system:
            self.connect()
            entry = (system, uuid.uuid4().hex, ray.put(self._payload(system, modules=True)))
            self._shipped[id(system)] = entry
        return entry[1], entry[2]

    def _payload(self, system: System, modules: bool) -> Payload:
        """("import", path, module names) for a system given by import path, else
        ("pickle", bytes); RayExecutorError naming the part that does not pickle."""
        known = self._sources.get(id(system))
        if known is not None and known[0] is system:
            names = sorted(system.modules()) if modules else None
            return ("import", known[1], names)
        try:
            return ("pickle", dumps(system))
        except Exception:
            found = unpicklable_part(system)
            if found is None:  # it pickles on a second try: nothing to point at
                return ("pickle", dumps(system))
            path, part, error = found
            raise RayExecutorError(
                f"the system cannot be sent to Ray workers: {path} (a {type(part).__name__}) "
                f"does not pickle ({_one_line(error)[:200]}); pass the system by import path, "
                "gg.optimize('my_pkg.agent:graph', ...), or as a factory that builds it, "
                "'my_pkg.agent:make_graph', so each worker builds its own"
            ) from None


# ----------------------------------------------------------------------------- on the workers

_SYSTEMS: OrderedDict[str, System] = OrderedDict()  # token -> system, in this worker process
_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_GUARD = threading.Lock()


def _build(payload: Payload) -> System:
    if payload[0] == "pickle":
        unpickled: System = loads(payload[1])
        return unpickled
    _, path, names = payload
    system = system_from_path(path)
    if names is not None:
        system.use_modules(names)  # the prompts a probe run on the driver confirmed
    return system


def _system(token: str, payload: Payload) -> System:
    system = _SYSTEMS.get(token)
    if system is None:
        system = _build(payload)
        _SYSTEMS[token] = system
        while len(_SYSTEMS) > 4:
            _SYSTEMS.popitem(last=False)
    return system


def _worker_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker process, kept for all its rollouts (clients that cache
    connections per loop keep working), with daemon threads for sync nodes, as on the driver."""
    global _LOOP
    with _LOOP_GUARD:
        if _LOOP is None:
            loop = asyncio.new_event_loop()
            loop.set_default_executor(DaemonExecutor("gepa-graph-ray"))
            threading.Thread(
                target=loop.run_forever, name="gepa-graph-ray-loop", daemon=True
            ).start()
            _LOOP = loop
        return _LOOP


async def _arun(system: System, prompts: dict[str, str], example: Any) -> Any:
    try:
        return await system.arun(prompts, example)
    except asyncio.CancelledError:
        return Rollout(error="CancelledError: the system cancelled its own rollout")
    except Exception as exc:  # a failing rollout is a score, as on the driver
        return failed_rollout(exc)


def rollout_task(token: str, payload: Payload, prompts: dict[str, str], example: Any) -> bytes:
    """On a worker: the pickled Rollout of ``system.arun(prompts, example)``."""
    try:
        system = _system(token, payload)
    except Exception as exc:
        return dumps(
            Rollout(error=f"a Ray worker cannot load the system: {describe(exc)}"[:MAX_ERROR_CHARS])
        )
    future = asyncio.run_coroutine_threadsafe(_arun(system, prompts, example), _worker_loop())
    rollout = future.result()
    try:
        return dumps(rollout)
    except Exception as exc:
        error = f"the rollout's output cannot be sent back from the Ray worker: {describe(exc)}"
        return dumps(Rollout(error=error[:MAX_ERROR_CHARS]))


def load_check_task(payload: Payload) -> tuple[int, str | None]:
    """On a worker: (its pid, why the system cannot be loaded there or None)."""
    try:
        _build(payload)
    except Exception as exc:
        return os.getpid(), _one_line(exc)[:500]
    return os.getpid(), None


# Module-level functions, so Ray ships them by reference (workers import this module) and not
# by value; Ray's own retries off: each attempt is the evaluator's, counted in its ledger.
_rollout = ray.remote(max_retries=0)(rollout_task)
_load_check = ray.remote(max_retries=0)(load_check_task)


def _worker_died(exc: BaseException) -> Rollout:
    """A retryable failure: the process running the rollout is gone, the prompts are not
    to blame."""
    return Rollout(
        retryable=True,
        error=(
            f"RayWorkerDied: the Ray worker running this rollout died "
            f"({type(exc).__name__}: {_one_line(exc)[:300]})"
        ),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(describe(exc).split())
