"""Moving a registration's alias: every module's alias together (a failure half way puts back
the ones already moved), each move appended to the module prompts' ``gepa_graph.alias_history``
tag with an id shared by the modules moved together, which is what ``rollback`` reads."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gepa_graph.errors import UnknownName
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.prompt_refs import at_alias, modules_of

if TYPE_CHECKING:
    from mlflow import MlflowClient

_HISTORY_MAX_CHARS = 4500  # MLflow keeps prompt tag values up to 5000 characters


def history_of(prompt: Any) -> list[dict[str, Any]]:
    """The alias moves recorded on a registry prompt, oldest first ([] if none or unreadable)."""
    try:
        return json.loads(prompt.tags.get(S.PROMPT_HISTORY, "[]"))
    except json.JSONDecodeError:
        return []


def append_history(client: MlflowClient, prompt_name: str, entry: dict[str, Any]) -> None:
    """Append ``entry`` to the prompt's move history, dropping the oldest entries past the
    tag's length limit."""
    entries = history_of(client.get_prompt(prompt_name)) + [entry]
    text = json.dumps(entries, separators=(",", ":"))
    while len(text) > _HISTORY_MAX_CHARS and len(entries) > 1:
        entries = entries[1:]
        text = json.dumps(entries, separators=(",", ":"))
    client.set_prompt_tag(prompt_name, S.PROMPT_HISTORY, text)


@dataclass(frozen=True)
class Move:
    """One alias moved for a whole registration: module -> (version before, version after);
    ``None`` means the module had (or now has) no such alias."""

    name: str
    alias: str
    event: str
    id: str
    changes: dict[str, tuple[int | None, int | None]]

    @property
    def versions(self) -> dict[str, int]:
        """Module -> version the alias points at after the move; modules that lost the alias
        are left out."""
        return {m: after for m, (_, after) in self.changes.items() if after is not None}


def move_alias(
    client: MlflowClient,
    name: str,
    alias: str,
    target: dict[str, int],
    event: str,
    modules: dict[str, Any] | None = None,
    **note: Any,
) -> Move:
    """Point ``alias`` of every module of ``name`` at ``target`` (module -> version); modules
    not in ``target`` lose the alias. Everything is read first; a failure while moving puts
    back the aliases already moved. The move is recorded in each touched module's history."""
    modules = modules if modules is not None else modules_of(client, name)
    missing = sorted(set(target) - set(modules))
    if missing:
        raise UnknownName(f"{name!r} has no registered module(s) {missing}")
    changes: dict[str, tuple[int | None, int | None]] = {}
    for module, prompt in sorted(modules.items()):
        current = at_alias(client, prompt.name, alias)
        before = int(current.version) if current is not None else None
        after = target.get(module)
        if before != after:
            changes[module] = (before, after)
    done: list[str] = []
    try:
        for module, (_, after) in changes.items():
            prompt_name = modules[module].name
            if after is None:
                client.delete_prompt_alias(prompt_name, alias)
            else:
                client.set_prompt_alias(prompt_name, alias, after)
            done.append(module)
    except Exception:
        for module in done:  # best effort: the set as it was
            before = changes[module][0]
            if before is None:
                client.delete_prompt_alias(modules[module].name, alias)
            else:
                client.set_prompt_alias(modules[module].name, alias, before)
        raise
    move = Move(name, alias, event, uuid.uuid4().hex[:12], changes)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for module, (before, after) in changes.items():
        entry = {
            "id": move.id,
            "at": at,
            "alias": alias,
            "event": event,
            "from": before,
            "to": after,
            **note,
        }
        append_history(client, modules[module].name, entry)
    return move
