"""optimize(): the one entry point most users call. It wires the core to the integrations
(LangGraph graphs are adapted automatically) and to tracking listeners: the inputs are checked
here (``gepa_graph.checks``), the run is assembled and run by ``gepa_graph.assembly``."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gepa_graph.adapters import as_system, system_from_path
from gepa_graph.adapters import register as register_adapter
from gepa_graph.assembly import PROBE_EXAMPLES, finished_run, run_probe, run_search
from gepa_graph.checks import checked_seed_prompts, merge_budgets, new_run_dir
from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import ConfigError, InvalidInput, WrongType
from gepa_graph.events import ListenerLike
from gepa_graph.example import Example, as_dataset
from gepa_graph.executor import Executor, LocalExecutor
from gepa_graph.fingerprint import fingerprint
from gepa_graph.guidance import Guidance
from gepa_graph.lm import ReflectionLM
from gepa_graph.metric import Metric, metric_arity
from gepa_graph.result import Result
from gepa_graph.store import RunStore
from gepa_graph.strategies import build as build_strategies
from gepa_graph.usercode import run_watched

log = logging.getLogger("gepa_graph")


def _register_integrations() -> None:
    """Let the core take the integrated frameworks' objects (``gepa_graph.adapters``); their
    adapters import no framework until asked."""
    from gepa_graph.integrations.adapters import ADAPTERS

    for adapter in ADAPTERS:
        register_adapter(adapter)


_register_integrations()


def optimize(
    system: Any,
    trainset: Iterable[Mapping[str, Any] | Example],
    valset: Iterable[Mapping[str, Any] | Example] | None = None,
    *,
    metric: Metric,
    reflection_lm: str | Callable[[str], Any],
    max_rollouts: int | None = None,
    max_cost_usd: float | None = None,
    max_seconds: float | None = None,
    config: OptimizeConfig | Mapping[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    tracking: Any = None,
    listeners: Iterable[ListenerLike] | None = None,
    progress: bool | None = None,
    seed_prompts: Mapping[str, str] | None = None,
    testset: Iterable[Mapping[str, Any] | Example] | None = None,
    mode: str | None = None,
    strategies: Mapping[str, Any] | None = None,
    executor: str | Executor = "local",
) -> Result:
    """Optimize the prompts of ``system`` (a gg.System or a compiled LangGraph graph, or the
    import path of one, ``"my_pkg.agent:graph"``).

    Budgets given here override ``config``'s. ``run_dir`` holds the checkpoint and the rollout
    journal (default: a new folder under ./gepa_runs); ``resume=True`` continues a run from it
    without re-running finished rollouts. ``tracking`` is an experiment name or a listener such
    as ``gg.tracking.MLflowTracker``. ``progress`` shows a live display (default: on a terminal).
    ``testset`` (held-out examples) is scored for the seed and the best candidate at the end:
    ``result.test_seed_score`` and ``result.test_best_score``, saved with the run (so
    ``load_result`` has them) and logged by the tracker.
    ``mode="search"`` (with no valset) searches for the best prompts for the tasks themselves
    (``result.best_by_example()``); ``strategies`` replaces named strategies with objects
    (see ``gepa_graph.strategies``). ``executor`` says where rollouts run: ``"local"`` (this
    process), ``"ray"`` (a running Ray cluster: ``RAY_ADDRESS``, else the one on this machine)
    or an executor object such as ``gg.RayExecutor(address=...)``; the search, the journal,
    tracking and reflection stay here, and the results are the same.
    """
    run_dir = run_dir if run_dir is not None else new_run_dir()
    coroutine = aoptimize(
        system,
        trainset,
        valset,
        metric=metric,
        reflection_lm=reflection_lm,
        max_rollouts=max_rollouts,
        max_cost_usd=max_cost_usd,
        max_seconds=max_seconds,
        config=config,
        run_dir=run_dir,
        resume=resume,
        tracking=tracking,
        listeners=listeners,
        progress=progress,
        seed_prompts=seed_prompts,
        testset=testset,
        mode=mode,
        strategies=strategies,
        executor=executor,
    )
    # On a loop and thread of its own (so also from inside a running loop, as in a notebook),
    # watched from this thread: async code blocking the loop, or Ctrl-C, cannot hang it.
    try:
        return run_watched(coroutine)
    except KeyboardInterrupt:
        raise interrupted(run_dir) from None


def interrupted(run_dir: str | Path) -> KeyboardInterrupt:
    """What Ctrl-C raises out of ``optimize()`` once the checkpoint says ``interrupted``: a
    KeyboardInterrupt whose message is the one line that says how to resume (and whose
    ``run_dir`` attribute is the folder)."""
    error = KeyboardInterrupt(f"interrupted, resume with resume=True and run_dir={str(run_dir)!r}")
    error.run_dir = str(run_dir)  # type: ignore[attr-defined]
    return error


async def aoptimize(
    system: Any,
    trainset: Iterable[Mapping[str, Any] | Example],
    valset: Iterable[Mapping[str, Any] | Example] | None = None,
    *,
    metric: Metric,
    reflection_lm: str | Callable[[str], Any],
    max_rollouts: int | None = None,
    max_cost_usd: float | None = None,
    max_seconds: float | None = None,
    config: OptimizeConfig | Mapping[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    tracking: Any = None,
    listeners: Iterable[ListenerLike] | None = None,
    progress: bool | None = None,
    seed_prompts: Mapping[str, str] | None = None,
    testset: Iterable[Mapping[str, Any] | Example] | None = None,
    mode: str | None = None,
    strategies: Mapping[str, Any] | None = None,
    executor: str | Executor = "local",
) -> Result:
    """``optimize`` for callers already inside an event loop."""
    config = merge_budgets(config, max_rollouts, max_cost_usd, max_seconds)
    if mode is not None:
        config = merge_budgets(config.model_copy(update={"mode": mode}), None, None, None)
    if config.mode == "search" and valset is not None:
        raise InvalidInput('mode="search" takes the tasks as trainset and no valset')
    chosen = build_strategies(config, strategies)
    runner, owned = as_executor(executor)
    source = system if isinstance(system, str) else None
    system = system_from_path(source) if source is not None else as_system(system)
    # A system whose prompts only a run can confirm is probed once every input is checked.
    seeds = None if system.needs_probe else checked_seed_prompts(system, seed_prompts)
    if seeds is not None:
        Guidance.of(config).check_seeds(seeds)  # a probed system's once the probe finds them
    if seeds is None and seed_prompts:
        system.check_names(seed_prompts)  # a name no probe could make fails before paying
    train = as_dataset(trainset, "trainset")
    val = as_dataset(valset, "valset") if valset is not None else train
    test = as_dataset(testset, "testset") if testset is not None else []
    for name, dataset in (("trainset", train), ("valset", val), ("testset", test)):
        for index, example in enumerate(dataset):
            try:
                system.validate_example(example)
            except ValueError as exc:
                raise InvalidInput(f"{name}[{index}] ({example.key}): {exc}") from None
    metric_arity(metric)
    probe = min(PROBE_EXAMPLES, len(train)) if seeds is None else 0  # the probe's own runs
    if config.max_rollouts is not None and config.max_rollouts < len(val) + probe:
        raise InvalidInput(
            f"max_rollouts={config.max_rollouts} cannot even evaluate the seed on the "
            f"{len(val)} validation examples{' after the probe run' if probe else ''}; raise "
            "it or use a smaller valset"
        )
    if isinstance(reflection_lm, str) and reflection_lm.startswith("local/"):
        from gepa_graph.local import register  # the embedded model's LiteLLM provider

        register()
    lm = ReflectionLM(
        reflection_lm,
        temperature=config.reflection_temperature,
        max_tokens=config.reflection_max_tokens,
        timeout_s=config.reflection_timeout_s,
        max_retries=config.lm_max_retries,
        backoff_s=config.lm_backoff_s,
    )
    listening = _listeners(tracking, listeners, progress)

    store = RunStore(Path(run_dir) if run_dir is not None else new_run_dir())
    # A callable's name says little about the model behind it: only model strings must match.
    model = lm.name if isinstance(lm.lm, str) else None
    try:
        runner.prepare(system, source)  # before any paid call: the system reaches the workers
        store.lock()  # before any paid call: writable, and ours alone
        try:
            # Every refusal before any paid call, the probe's included: a new run over an old
            # one, a resume of other inputs (the seed prompts of a system not yet probed are
            # compared once it is), a finished run (its result, without a rollout).
            store.check(resume, fingerprint(config, seeds, train, val, model, metric))
            finished = store.load_state() if resume else None
            if finished is not None and finished.status == "finished":
                if finished.config == config.model_dump(mode="json"):  # no budget extended
                    return await finished_run(
                        finished, system, train, val, metric, config, store, listening, test, runner
                    )
            lm.check_credentials()  # the reflection LM's keys: before the probe and rollouts
            probe_cost = None
            if seeds is None:  # the probe runs here: it changes the system the workers get
                probe_cost = await run_probe(system, train, config.rollout_timeout_s)
                seeds = checked_seed_prompts(system, seed_prompts)
                Guidance.of(config).check_seeds(seeds)
                store.check(resume, fingerprint(config, seeds, train, val, model, metric))
            return await run_search(
                system,
                train,
                val,
                metric,
                lm,
                config,
                chosen,
                seeds,
                store,
                resume,
                listening,
                test,
                probe_cost,
                runner,
            )
        finally:
            store.close()
    finally:
        if owned:  # an executor object the caller passed stays theirs to close
            runner.close()


def load_result(source: str | Path, tracking_uri: str | None = None) -> Result:
    """The Result of a run, finished or not, without the system that ran it (it can still
    ``apply`` its prompts to a graph).

    ``source`` is a run folder (its checkpoint), or an MLflow run id or ``runs:/<id>`` (the
    optimization's run, or one of its candidate runs) read through ``gepa_graph.tracking`` from
    ``tracking_uri`` (default: MLflow's own)."""
    text = str(source)
    if not isinstance(source, Path) and (
        text.startswith("runs:/") or (_RUN_ID.fullmatch(text) and not Path(text).exists())
    ):
        from gepa_graph.tracking.reader import load_result as from_mlflow

        return from_mlflow(text, tracking_uri)
    return RunStore(source).load_result()


_RUN_ID = re.compile(r"[0-9a-f]{32}")


def as_executor(executor: Any) -> tuple[Executor, bool]:
    """The executor for ``optimize(executor=...)``, and whether optimize made it (and so
    closes it): ``"local"``, ``"ray"`` (a RayExecutor for ``RAY_ADDRESS``, else the cluster
    on this machine) or an executor object; one-line ConfigError for anything else."""
    if isinstance(executor, str):
        if executor == "local":
            return LocalExecutor(), True
        if executor == "ray":
            try:
                from gepa_graph.integrations.ray import RayExecutor
            except ModuleNotFoundError as exc:
                if exc.name != "ray":
                    raise
                raise ConfigError(
                    'executor="ray" needs Ray, which is not installed: pip install "gepa-graph[ray]"'
                ) from None
            return RayExecutor(), True
        raise ConfigError(
            f"unknown executor {executor!r}; use 'local', 'ray', or an executor object such as "
            "gg.RayExecutor(address=...)"
        )
    if isinstance(executor, Executor):
        return executor, False
    raise ConfigError(
        f"executor must be 'local', 'ray' or an executor object (with prepare, run and close), "
        f"got {type(executor).__name__}"
    )


def _listeners(
    tracking: Any, extra: Iterable[ListenerLike] | None, progress: bool | None
) -> list[ListenerLike]:
    listeners: list[ListenerLike] = []
    if progress or (progress is None and sys.stderr.isatty()):
        from gepa_graph.progress import ProgressDisplay

        listeners.append(ProgressDisplay())
    if isinstance(tracking, str):
        from gepa_graph.tracking import MLflowTracker

        tracking = MLflowTracker(experiment=tracking)
    if tracking is not None:
        if not callable(tracking):
            raise WrongType("tracking must be an experiment name or a listener callable(event)")
        listeners.append(tracking)
    listeners.extend(extra or ())
    return listeners
