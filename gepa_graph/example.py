"""Examples and datasets: stable keys so caches and checkpoints survive restarts."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from gepa_graph.errors import InvalidInput, WrongType

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _canonical(value: Any) -> Any:
    """A JSON form that is the same in every process: sets sorted, objects by their fields
    or a repr without memory addresses (string hashing, and so set order, varies by process)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {"<set>": sorted((_canonical(v) for v in value), key=stable_json)}
    if isinstance(value, (bytes, bytearray)):
        return {"<bytes>": bytes(value).hex()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)  # pydantic models, LangChain messages
    if callable(dump):
        return {f"<{type(value).__name__}>": _canonical(dump())}
    return _ADDRESS.sub("", repr(value))


def stable_json(value: Any) -> str:
    """Canonical JSON of a value: the same text in every process (sets sorted, no addresses)."""
    return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Example(Mapping[str, Any]):
    """A read-only dict of fields with a stable ``key`` and ``uid``.

    The key is the ``id`` field when the example has one, else a hash of its content, so the
    same example gets the same key in a resumed run. Keys are unique within one dataset only:
    users number each split from 0, so training example 0 and validation example 0 share a
    key. ``uid`` adds a hash of the content to the key; every result stored or looked up
    across datasets (the rollout cache, the journal) is keyed by it, so the two never share
    a score, while one example given in two splits still runs once.
    """

    __slots__ = ("_data", "key", "uid")

    def __init__(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        merged = {**(dict(data) if data is not None else {}), **fields}
        self._data = merged
        digest = hashlib.sha256(stable_json(merged).encode("utf-8")).hexdigest()[:16]
        if "id" in merged:
            self.key = str(merged["id"])
            self.uid = f"{self.key}@{digest}"
        else:
            self.key = self.uid = f"ex-{digest}"

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name in self.__slots__:  # not set yet (an object being unpickled): no recursion
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its fields (rollouts on other processes, e.g. Ray workers, receive it)."""
        return (Example, (self._data,))

    def __repr__(self) -> str:
        return f"Example({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the fields, for code that wants a dict rather than an Example."""
        return dict(self._data)


def as_dataset(items: Iterable[Any], name: str) -> list[Example]:
    """Normalise a user dataset to Examples, rejecting empty sets, non-mappings and duplicates."""
    if items is None:
        raise InvalidInput(f"{name} is required")
    examples: list[Example] = []
    for index, item in enumerate(items):
        if isinstance(item, Example):
            examples.append(item)
        elif isinstance(item, Mapping):
            examples.append(Example(item))
        else:
            raise WrongType(
                f"{name}[{index}] is a {type(item).__name__}; examples must be dicts or gg.Example"
            )
    if not examples:
        raise InvalidInput(f"{name} is empty; give at least one example")
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        if example.key in seen:
            raise InvalidInput(
                f"{name}[{index}] duplicates {name}[{seen[example.key]}] (key {example.key!r}); "
                "give each example a unique 'id' or remove the duplicate"
            )
        seen[example.key] = index
    return examples
