"""What a rollout may change stays in the rollout: a private store layer over the user's store,
and stand-ins for the tools whose side effects the user does not want optimization to cause.

Rollouts run the user's own graph, and a graph with a LangGraph store reads and writes long-term
memory through it (``runtime.store``, ``get_store()``, ``InjectedStore`` tools). Each rollout (and
the probe) gets its own ``LayeredStore`` over the user's store: reads see the user's items, writes
and deletes land in the layer, and the layer is dropped with the rollout. The user's store is only
ever read, and read without refreshing TTLs, so its contents and expiry times stay as they were.

The layer reads through rather than copying the store when the rollout starts: a copy of a real
store (SQLite, Postgres, millions of memories) would cost its size on every rollout, and its
vectors could not be copied through the store API, only recomputed with paid embedding calls.
Reading through costs nothing up front and keeps the user's own search (filters, semantic search
with the store's embeddings) for the user's items. What a rollout sees is the user's store as it
is at each read: nothing in an optimization writes to it, so that is what it held when the run
started unless another process writes to it meanwhile.

Tools are another matter: a tool that sends an email or writes a file does so in every rollout,
and nothing outside the tool can undo it. ``ToolStandIns`` (``LangGraphSystem(tools={"send_email":
fake})``) runs a stand-in in place of the named tool wherever a rollout calls it (a ``ToolNode``,
``create_agent``, a node calling ``tool.invoke``), the way prompts are substituted: the stand-ins
travel in the run's config and the user's graph and tools stay as they are.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar, cast

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from gepa_graph.errors import WrongType
from gepa_graph.integrations.langgraph._internals.run_context import current_configurable

Key = tuple[tuple[str, ...], str]  # (namespace, key)
_Request = tuple[BaseStore, list[Op]]  # ops for the user's store or for the layer
_PAGE = 100  # items read at a time when checking that a namespace kept an item
_ItemT = TypeVar("_ItemT", bound=Item)


class LayeredStore(BaseStore):
    """A rollout's private store over ``base``: reads see ``base``'s items with this rollout's
    writes and deletes on top; ``base`` is only read (its TTLs are not refreshed).

    Every operation (``get``, ``search``, ``list_namespaces``, ``put``, ``delete``, sync and
    async) goes through ``batch``/``abatch``, which honour the layer. Within one batch, reads see
    the state before the batch's writes, as LangGraph's own stores do. Search results put the
    items this rollout wrote first (they are the newest) unless a query scores them, then all are
    ranked by score; items keep their search score only where the layer's store can embed them
    (it uses ``base``'s ``embeddings`` and index fields when it has them).
    """

    def __init__(
        self, base: BaseStore, prompts: Mapping[Key, Mapping[str, str]] | None = None
    ) -> None:
        self.base = base
        self._prompts = dict(prompts or {})  # fields served in place of base's (store prompts)
        self.supports_ttl = base.supports_ttl  # a put with a TTL works where it works for base
        self.ttl_config = base.ttl_config
        self._layer = InMemoryStore(index=_index_config(base))  # this rollout's live writes
        self._changed: dict[Key, bool] = {}  # True: written here; False: deleted here
        self._lock = threading.Lock()

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` against the layer and, for reads, the user's store (sync)."""
        steps = self._steps(list(ops))
        try:
            store, request = next(steps)
            while True:
                store, request = steps.send(store.batch(request))
        except StopIteration as done:
            return done.value

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` against the layer and, for reads, the user's store (async)."""
        steps = self._steps(list(ops))
        try:
            store, request = next(steps)
            while True:
                store, request = steps.send(await store.abatch(request))
        except StopIteration as done:
            return done.value

    # -- one batch, as steps: each yields (store, ops) and receives that store's results

    def _steps(self, ops: list[Op]) -> Generator[_Request, list[Result], list[Result]]:
        with self._lock:
            changed = dict(self._changed)
        results: list[Result] = [None] * len(ops)
        base_ops: list[tuple[int, Op]] = []
        layer_ops: list[tuple[int, Op]] = []
        puts: dict[Key, PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                if (op.namespace, op.key) in changed:
                    layer_ops.append((i, op))
                else:
                    base_ops.append((i, op._replace(refresh_ttl=False)))
            elif isinstance(op, SearchOp):
                masked = sum(
                    1 for ns, _ in changed if ns[: len(op.namespace_prefix)] == op.namespace_prefix
                )
                wide = op._replace(offset=0, limit=op.offset + op.limit + masked, refresh_ttl=False)
                base_ops.append((i, wide))
                if masked:
                    layer_ops.append((i, wide._replace(limit=masked)))
            elif isinstance(op, ListNamespacesOp):
                emptied = {ns for (ns, _), live in changed.items() if not live}
                listing = op._replace(offset=0, limit=op.offset + op.limit + len(emptied))
                base_ops.append((i, listing))
            elif isinstance(op, PutOp):
                puts[(op.namespace, op.key)] = op
            else:
                raise ValueError(f"unknown store operation {type(op).__name__}")
        base_results: dict[int, Result] = {}
        if base_ops:
            found = yield self.base, [op for _, op in base_ops]
            base_results = {i: result for (i, _), result in zip(base_ops, found, strict=True)}
        layer_results: dict[int, Result] = {}
        if layer_ops:
            found = yield self._layer, [op for _, op in layer_ops]
            layer_results = {i: result for (i, _), result in zip(layer_ops, found, strict=True)}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                if i in layer_results:
                    results[i] = layer_results[i]
                else:
                    got = base_results[i]
                    results[i] = self._served(got) if isinstance(got, Item) else got
            elif isinstance(op, SearchOp):
                from_base = [self._served(item) for item in _search_items(base_results[i])]
                from_layer = _search_items(layer_results.get(i))
                results[i] = _merged_search(op, from_base, from_layer, changed)
            elif isinstance(op, ListNamespacesOp):
                listed = _namespace_names(base_results[i])
                results[i] = yield from self._namespaces(op, listed, changed)
        if puts:
            with self._lock:
                self._changed.update({key: op.value is not None for key, op in puts.items()})
            yield self._layer, [op._replace(ttl=None) for op in puts.values()]
        return results

    def _served(self, item: _ItemT) -> _ItemT:
        """``item`` (read from the user's store) with the candidate's text in the fields of
        store prompts."""
        fields = self._prompts.get((item.namespace, item.key))
        if not fields:
            return item
        served = copy.copy(item)
        served.value = {**item.value, **fields}
        return served

    def _namespaces(
        self, op: ListNamespacesOp, listed: list[tuple[str, ...]], changed: dict[Key, bool]
    ) -> Generator[_Request, list[Result], list[tuple[str, ...]]]:
        depth = op.max_depth
        written = {ns for (ns, _), live in changed.items() if live}
        names = {ns[:depth] if depth is not None else ns for ns in written if _matches(op, ns)}
        for name in listed:
            if name in names:
                continue
            if any(ns[: len(name)] == name for (ns, _), live in changed.items() if not live):
                kept = yield from self._keeps_an_item(name, depth, changed)
                if not kept:
                    continue
            names.add(name)
        return sorted(names)[op.offset : op.offset + op.limit]

    def _keeps_an_item(
        self, name: tuple[str, ...], depth: int | None, changed: dict[Key, bool]
    ) -> Generator[_Request, list[Result], bool]:
        """Whether the user's store holds an item of namespace ``name`` (or under it, when
        listing truncates there) that this rollout has not deleted."""
        truncated = depth is not None and len(name) == depth
        offset = 0
        while True:
            page = yield self.base, [SearchOp(name, limit=_PAGE, offset=offset, refresh_ttl=False)]
            items = _search_items(page[0])
            for item in items:
                if (item.namespace == name or truncated) and changed.get(
                    (item.namespace, item.key), True
                ):
                    return True
            if len(items) < _PAGE:
                return False
            offset += _PAGE


def _search_items(result: Result) -> list[SearchItem]:
    """A ``SearchOp``'s result (None: no items)."""
    # BaseStore.batch answers each op with its kind's result; ``Result`` is the union of them all.
    return cast("list[SearchItem]", result or [])


def _namespace_names(result: Result) -> list[tuple[str, ...]]:
    """A ``ListNamespacesOp``'s result (None: no namespaces)."""
    # BaseStore.batch answers each op with its kind's result; ``Result`` is the union of them all.
    return cast("list[tuple[str, ...]]", result or [])


def _index_config(base: BaseStore) -> IndexConfig | None:
    """The embedding settings of ``base`` (InMemoryStore, SqliteStore, PostgresStore keep them
    as ``index_config`` and ``embeddings``), for a layer that scores its own items alike."""
    config = getattr(base, "index_config", None)
    embeddings = getattr(base, "embeddings", None)
    if not config or embeddings is None:
        return None
    return {"dims": config["dims"], "embed": embeddings, "fields": config.get("fields") or ["$"]}


def _merged_search(
    op: SearchOp,
    from_base: list[SearchItem],
    from_layer: list[SearchItem],
    changed: dict[Key, bool],
) -> list[SearchItem]:
    kept = [item for item in from_base if (item.namespace, item.key) not in changed]
    merged = [*from_layer, *kept]
    if op.query and any(getattr(item, "score", None) is not None for item in merged):
        merged.sort(key=lambda item: (item.score is None, -(item.score or 0.0)))
    return merged[op.offset : op.offset + op.limit]


def _matches(op: ListNamespacesOp, namespace: tuple[str, ...]) -> bool:
    return all(_matches_one(c, namespace) for c in op.match_conditions or ())


def _matches_one(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "suffix":
        namespace, path = namespace[::-1], path[::-1]
    return all(p == "*" or p == n for p, n in zip(path, namespace, strict=False))


StoreSource = BaseStore | Callable[[], BaseStore]


def store_source(store: Any, default: BaseStore | None) -> StoreSource | None:
    """``LangGraphSystem(store=...)``, checked: a store, a zero-argument factory of one, or
    None for ``default`` (the graph's own store)."""
    if store is None:
        return default
    if isinstance(store, BaseStore) or callable(store):
        return store
    raise WrongType(
        f"store must be a langgraph BaseStore or a function returning one, got "
        f"{type(store).__name__}"
    )


def rollout_store(
    source: StoreSource | None, prompts: Mapping[Key, Mapping[str, str]] | None = None
) -> LayeredStore | None:
    """A fresh private layer for one rollout over the store ``source`` gives (None: no store),
    serving ``prompts`` (the candidate's store prompts: (namespace, key) -> field -> text)."""
    if source is None:
        return None
    base = source if isinstance(source, BaseStore) else source()
    if not isinstance(base, BaseStore):
        raise WrongType(
            f"the store factory {getattr(source, '__qualname__', source)!r} returned a "
            f"{type(base).__name__}, not a langgraph BaseStore"
        )
    return LayeredStore(base, prompts)


TOOLS_KEY = "__gepa_graph_tools"
"""The ``configurable`` key of a rollout's ToolStandIns (``__``: LangGraph keeps it out of metadata)."""


class ToolStandIns:
    """Tool name -> what runs instead of that tool in rollouts: a function called with the
    arguments the model gave (sync or async), or a ``BaseTool``. The real tool's name,
    description and argument schema stay, so the model and the trace see the same tool."""

    def __init__(self, tools: Mapping[str, Any]) -> None:
        if not isinstance(tools, Mapping):
            raise WrongType(f"tools must map tool names to stand-ins, got {type(tools).__name__}")
        for name, fake in tools.items():
            if not isinstance(name, str) or not (isinstance(fake, BaseTool) or callable(fake)):
                raise WrongType(
                    f"tools[{name!r}] must be a function or a BaseTool to run in place of that "
                    f"tool, got {type(fake).__name__}"
                )
        self.tools = dict(tools)
        install_tool_hook()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in another process (a Ray worker): the hook is installed there too."""
        self.__dict__.update(state)
        install_tool_hook()

    def stand_in(self, tool: BaseTool) -> BaseTool | None:
        """What runs in place of ``tool``, None when it runs itself."""
        fake = self.tools.get(tool.name)
        if fake is None or isinstance(fake, BaseTool):
            return fake
        run: dict[str, Any] = {"func": fake}
        if inspect.iscoroutinefunction(fake):  # also runs where the tool is called sync
            run = {"coroutine": fake, "func": lambda **args: asyncio.run(fake(**args))}
        return StructuredTool(
            name=tool.name,
            description=tool.description,
            args_schema=tool.tool_call_schema,  # the arguments the model gives, nothing injected
            response_format=tool.response_format,
            **run,
        )


_hook_lock = threading.Lock()
_hooked: list[bool] = []  # one entry once BaseTool is hooked


def install_tool_hook() -> None:
    """Route ``BaseTool.invoke``/``ainvoke`` through a run's ToolStandIns (once; a no-op for
    runs without one)."""
    with _hook_lock:
        if _hooked:
            return
        invoke, ainvoke = BaseTool.invoke, BaseTool.ainvoke

        def hooked_invoke(self: BaseTool, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return invoke(_standing_in(self, config), input, config, **kwargs)

        async def hooked_ainvoke(
            self: BaseTool, input: Any, config: Any = None, **kwargs: Any
        ) -> Any:
            return await ainvoke(_standing_in(self, config), input, config, **kwargs)

        # By name: mypy takes assigning to a method for a mistake, and this patch is meant.
        for name, hook in (("invoke", hooked_invoke), ("ainvoke", hooked_ainvoke)):
            setattr(BaseTool, name, hook)
        _hooked.append(True)


def _standing_in(tool: BaseTool, config: Any) -> BaseTool:
    configurable = (config or {}).get("configurable") or current_configurable()
    stand_ins = configurable.get(TOOLS_KEY)
    if not isinstance(stand_ins, ToolStandIns):
        return tool
    return stand_ins.stand_in(tool) or tool
