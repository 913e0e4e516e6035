"""The System protocol: what the optimizer needs from anything it optimizes.

A System owns a set of named prompts (modules) and can run one example with a candidate's
prompts, returning a Rollout: the output, a Trace of what happened, and an error if it failed.
LangGraph graphs are adapted to this protocol in ``gepa_graph.integrations.langgraph``.
"""

from __future__ import annotations

import inspect
import traceback
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from gepa_graph.errors import InvalidInput, PromptNeverUsed, WrongType
from gepa_graph.failures import is_transient
from gepa_graph.redact import clip, redact_text
from gepa_graph.usercode import call_user, describe


class Usage(BaseModel):
    """Tokens and USD cost of LM calls, summed with ``+`` so budgets and reports add them up.

    ``prompt_tokens`` and ``completion_tokens``: tokens read and written. ``cost_usd``: None
    where LiteLLM does not know the price (the budget then counts nothing for it).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
        )


class TraceRecord(BaseModel):
    """One thing that happened during a rollout.

    ``node`` attributes the record to the part of the system that produced it (a LangGraph node);
    None means the record belongs to the whole system and every module's reflection sees it.
    ``kind`` is free text; the integrations use "llm", "tool", "node" and "error".
    ``modules``: in a trace attributed by prompt (``Trace.by_prompt``), the modules whose prompt
    this model call carried, or that the calls inside this node step or tool call carried.
    ``inputs``/``outputs``: what went in and came out (messages, tool arguments, state),
    ``error``: what it raised, ``usage``: an LM call's tokens and cost, ``meta``: anything else
    a reflection may want (a tool call id, a step number).
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    node: str | None = None
    modules: list[str] | None = None
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    usage: Usage | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class Trace(BaseModel):
    """What happened during a rollout, the material reflection reads: ``records`` in the order
    they happened. ``by_prompt``: the system attributed each record to the modules whose prompt
    it carried (``TraceRecord.modules``), so reflection reads exactly those.

    ``read``: the modules whose prompt could have shaped this rollout (a FunctionSystem records
    the prompts its function read; a LangGraph rollout, those its model calls carried); None
    when the system cannot tell. A candidate that differs only in other prompts would have run
    exactly this rollout, so it takes this result instead of running again (``reuse.py``)."""

    records: list[TraceRecord] = Field(default_factory=list)
    by_prompt: bool = False
    read: list[str] | None = None

    def add(self, kind: str, **fields: Any) -> TraceRecord:
        """Append a record (``TraceRecord`` fields as keywords) and return it."""
        record = TraceRecord(kind=kind, **fields)
        self.records.append(record)
        return record

    def for_node(self, node: str | None) -> list[TraceRecord]:
        """Records a module living in ``node`` may see: its node's own and the system-wide ones."""
        if node is None:
            return list(self.records)
        return [r for r in self.records if r.node is None or r.node == node]

    def for_module(self, module: str, node: str | None) -> list[TraceRecord]:
        """Records a module's reflection reads: those that carried its prompt when the trace is
        attributed by prompt, else those of the module's node (``for_node``)."""
        if self.by_prompt:
            return [r for r in self.records if module in (r.modules or ())]
        return self.for_node(node)

    def usage(self) -> Usage:
        """Tokens and cost of every LM call recorded in this rollout."""
        total = Usage()
        for record in self.records:
            if record.usage is not None:
                total = total + record.usage
        return total


class Rollout(BaseModel):
    """The result of running a System on one example with one candidate.

    ``retryable`` marks a failure that says nothing about the prompts (a rate limit, a timeout,
    a dropped connection): the evaluator runs such a rollout again instead of scoring it.
    ``output`` is what the metric scores (a graph's final state), ``trace`` what reflection
    reads, ``error`` the failure (masked, one line) of a rollout that raised.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    output: Any = None
    trace: Trace = Field(default_factory=Trace)
    error: str | None = None
    retryable: bool = False


@runtime_checkable
class System(Protocol):
    """Anything with named prompts that can run one example: the two methods a user writes.

    The optional hooks (a module's trace node, example checks, a probe run, writing prompts
    back) are declared, with their defaults, by ``BaseSystem``: subclass it to define them.
    ``optimize`` runs any other System through a BaseSystem that gives it the defaults.
    """

    def modules(self) -> dict[str, str]:
        """The seed prompts by module name: what the optimization starts from."""
        ...

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """Run ``example`` with the candidate's prompts in place of the seed's; a failure is a
        Rollout with ``error`` set, never an exception."""
        ...


class ProbeOutcome(Protocol):
    """What a probe run (``BaseSystem.aprobe``) tells ``optimize``: the USD cost of its model
    calls (None where unknown) and notes to log."""

    cost_usd: float | None

    def notes(self) -> list[str]:
        """Lines worth logging about what the probe found."""
        ...


class BaseSystem(ABC):
    """The System every part of gepa_graph calls: ``modules`` and ``arun`` to write, and every
    hook the optimizer, the Ray workers and ``Result`` call, each with its default.

    ``FunctionSystem`` and ``LangGraphSystem`` subclass it; so does your own system when it
    needs a hook (``optimize`` gives any other ``gg.System`` the defaults).
    """

    probe_report: ProbeOutcome | None = None
    """The report of the probe run once made (``aprobe``); None before (and without one)."""

    @abstractmethod
    def modules(self) -> dict[str, str]:
        """The seed prompts by module name: what the optimization starts from."""

    @abstractmethod
    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """Run ``example`` with the candidate's prompts in place of the seed's; a failure is a
        Rollout with ``error`` set, never an exception."""

    @property
    def needs_probe(self) -> bool:
        """True while the modules wait for a probe run (``aprobe``) on training examples:
        what reaches a model decides them. Default: False."""
        return False

    async def aprobe(self, examples: Sequence[Any]) -> ProbeOutcome:
        """Run the seed on ``examples`` and settle the modules (only called while
        ``needs_probe``); sets ``probe_report``."""
        raise NotImplementedError(f"{type(self).__name__} needs a probe but has no aprobe()")

    def check_names(self, names: Iterable[str]) -> None:
        """Before a probe run: raise InvalidInput for a module name no probe could give.
        Default: every name may be right."""
        return None

    def validate_example(self, example: Any) -> None:
        """Raise ValueError (InvalidInput) for an example this system cannot run, before any
        paid call. Default: every example is accepted."""
        return None

    def node_of(self, module: str) -> str | None:
        """The trace node a module's reflection reads (``Trace.for_node``). Default: None,
        every record."""
        return None

    def use_modules(self, names: Iterable[str]) -> None:
        """Make exactly ``names`` the modules: what a probe run in another process confirmed,
        for a system rebuilt there from its import path (a Ray worker). Default: they must
        already be the modules."""
        if sorted(set(names)) != sorted(self.modules()):
            raise InvalidInput(
                f"this {type(self).__name__} has modules {sorted(self.modules())}, not "
                f"{sorted(set(names))}"
            )

    def apply(self, target: Any, prompts: Mapping[str, str]) -> None:
        """Write ``prompts`` into ``target`` (``Result.apply``). Default: WrongType."""
        raise WrongType(
            f"a {type(self).__name__} cannot write prompts into an object (it has no "
            "apply(target, prompts)); use result.best_candidate directly"
        )

    def export(self, directory: Any, prompts: Mapping[str, str]) -> dict[str, str]:
        """Write each prompt kept in a file to a copy under ``directory`` (``Result.export``);
        module -> path written. Default: WrongType."""
        raise WrongType(
            f"a {type(self).__name__} keeps no prompt in files (it has no export(directory, "
            "prompts)); use result.best_candidate directly"
        )


HOOKS = (
    "probe_report",
    "needs_probe",
    "aprobe",
    "check_names",
    "validate_example",
    "node_of",
    "use_modules",
    "apply",
    "export",
)
"""Every hook ``BaseSystem`` declares beyond ``modules`` and ``arun``."""


MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 6000


def failed_rollout(exc: BaseException, trace: Trace | None = None) -> Rollout:
    """The Rollout of a run that raised: the error (masked, bounded) and its traceback added
    to ``trace``; retryable when the failure is transient (rate limit, timeout, connection)."""
    trace = trace if trace is not None else Trace()
    stack = "".join(traceback.format_exception(exc, limit=8))
    trace.add("error", error=clip(redact_text(stack), MAX_TRACEBACK_CHARS))
    return Rollout(
        error=clip(redact_text(describe(exc)), MAX_ERROR_CHARS),
        trace=trace,
        retryable=is_transient(exc),
    )


def _check_signature(fn: Callable[..., Any]) -> bool:
    """Raise a one-line TypeError unless ``fn`` takes (prompts, example[, trace]); True if it
    takes ``trace``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False  # a builtin without a signature: trust it
    wants_trace = "trace" in signature.parameters
    try:
        signature.bind({}, {}, **({"trace": None} if wants_trace else {}))
    except TypeError:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise WrongType(
            f"FunctionSystem fn {name!r} must accept (prompts, example) or (prompts, example, "
            f"trace); its signature is {signature}"
        ) from None
    return wants_trace


def check_modules_used(modules: Sequence[str], traces: Sequence[Trace]) -> None:
    """Raise PromptNeverUsed for modules no prompt-attributed trace shows reaching a model.

    Optimizing such a prompt would spend the budget on rewrites nothing ever reads.
    """
    attributed = [trace for trace in traces if trace.by_prompt]
    if not attributed:
        return
    used = {m for trace in attributed for record in trace.records for m in record.modules or ()}
    unused = [module for module in modules if module not in used]
    if unused:
        raise PromptNeverUsed(
            f"prompt module(s) {unused} reached no model in any of the seed's "
            f"{len(attributed)} validation rollouts; exclude them (LangGraphSystem(graph, "
            "exclude=[...])) or add validation examples whose runs use them"
        )


def node_of(system: System, module: str) -> str | None:
    """The trace node a module's reflection reads (``BaseSystem.node_of``; None for a System
    without hooks)."""
    return system.node_of(module) if isinstance(system, BaseSystem) else None


class FunctionSystem(BaseSystem):
    """Wraps a plain function ``fn(prompts, example)`` (sync or async) as a System.

    The function may return the output, or a Rollout when it wants to report a trace. If it
    accepts a third parameter ``trace``, it receives a Trace to record into.
    """

    def __init__(
        self,
        modules: Mapping[str, str],
        fn: Callable[..., Any] | Callable[..., Awaitable[Any]],
    ) -> None:
        if not modules:
            raise InvalidInput("FunctionSystem needs at least one module (name -> seed prompt)")
        for name, text in modules.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise WrongType("FunctionSystem modules must map str names to str prompts")
        if not callable(fn):
            raise WrongType(f"FunctionSystem fn must be callable, got {type(fn).__name__}")
        self._modules = dict(modules)
        self._fn = fn
        self._wants_trace = _check_signature(fn)

    def modules(self) -> dict[str, str]:
        """A copy of the seed prompts given at construction."""
        return dict(self._modules)

    async def arun(self, candidate: Mapping[str, str], example: Any) -> Rollout:
        """Call ``fn`` with the candidate's prompts (a dict that notes which ones it reads:
        ``Trace.read``); a raise becomes a failed Rollout that keeps what ``fn`` recorded in its
        trace."""
        trace = Trace()
        kwargs = {"trace": trace} if self._wants_trace else {}
        prompts = PromptReads(candidate)
        try:
            value = await call_user(self._fn, prompts, example, **kwargs)
        except Exception as exc:  # keep what the trace recorded (the usage was paid for)
            return failed_rollout(exc, trace)
        rollout = value if isinstance(value, Rollout) else Rollout(output=value, trace=trace)
        if _holds(rollout.output, prompts):  # the metric may read them from the output
            prompts.read.update(prompts.keys())
        if rollout.trace.read is None:
            rollout.trace.read = sorted(prompts.read)
        return rollout


def _holds(value: Any, target: object, depth: int = 0) -> bool:
    """Whether ``target`` is ``value`` or inside it (containers, dataclasses, objects' fields)."""
    if value is target:
        return True
    if depth > 8 or isinstance(value, str | bytes | int | float | bool | None):
        return False
    if isinstance(value, Mapping):
        items: Iterable[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        items = list(getattr(value, "__dict__", {}).values())
    return any(_holds(item, target, depth + 1) for item in items)


class PromptReads(dict[str, str]):
    """The prompts a FunctionSystem's function receives: a plain dict that notes which ones
    the function read (``read``). Reading one by name (``[]``, ``get``, ``pop``,
    ``setdefault``) notes that one; anything that can see every value (iterating, ``items``,
    ``values``, copying, comparing, printing, pickling) notes them all, so ``read`` never
    misses a prompt the function could have used."""

    def __init__(self, prompts: Mapping[str, str]) -> None:
        super().__init__(prompts)
        self.read: set[str] = set()

    def _all(self) -> None:
        self.read.update(dict.keys(self))

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self.read.add(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: str = "") -> str:
        self.read.add(key)
        return super().setdefault(key, default)

    def __iter__(self) -> Any:
        self._all()
        return super().__iter__()

    def items(self) -> Any:
        self._all()
        return super().items()

    def values(self) -> Any:
        self._all()
        return super().values()

    def popitem(self) -> tuple[str, str]:
        self._all()
        return super().popitem()

    def copy(self) -> dict[str, str]:
        self._all()
        return dict(super().items())

    def __or__(self, other: Any) -> Any:
        self._all()
        return dict(super().items()) | other

    def __ror__(self, other: Any) -> Any:
        self._all()
        return other | dict(super().items())

    def __eq__(self, other: object) -> bool:
        self._all()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._all()
        return super().__ne__(other)

    def __repr__(self) -> str:
        self._all()
        return super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        self._all()
        return (dict, (dict(super().items()),))
