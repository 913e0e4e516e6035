"""Optimized prompts in the MLflow Prompt Registry: register, promote, roll back, load by alias.

Layout for a registration named ``NAME``: one registry prompt per module, ``NAME.<module>``
(characters MLflow does not allow in prompt names, anything outside ``[A-Za-z0-9_.-]``, become
``_`` plus a short hash of the original module name so two modules never collide). Each prompt
carries the tags ``gepa_graph.name = NAME`` and ``gepa_graph.module = <module>``; that is how the
modules of ``NAME`` are found.

One source of truth for what runs where: **the module prompts' own aliases**. ``NAME@production``
is the set of versions the modules' ``production`` aliases point at, so moving
``NAME.classifier@production`` in the MLflow UI changes what ``with_registry_prompts(graph,
"NAME@production")`` loads, and there is no second record (no bundle) that could disagree.
``promote`` and ``rollback`` move the alias of every module together: everything is read and
checked first, the aliases are then set one after the other (milliseconds apart), and a failure
half way puts back the ones already moved. Every move is appended to each module prompt's
``gepa_graph.alias_history`` tag with an id shared by the modules moved together, which is what
``rollback`` reads.

Registering links the versions to the optimization's MLflow run (MLflow 3's run-prompt link, so
the run page lists them) and to its experiment (the experiment's Prompts tab), and reuses any
existing version whose text is identical instead of creating a duplicate.

Brace round trip: LangChain templates use ``{var}`` and ``{{``/``}}`` for literal braces; MLflow
uses ``{{var}}``. A template is stored converted to MLflow's convention when the conversion can be
undone exactly (checked for every template); otherwise (format specs, ``{0}``, text that would read
as an MLflow variable, templates that are not f-strings) it is stored verbatim. The version tag
``gepa_graph.brace_format`` ("double" or "verbatim") says which, so what loads back is exactly what
was optimized. Versions without that tag (written by hand in the MLflow UI) are read as MLflow
double-brace templates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import string
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gepa_graph.errors import InvalidInput, UnknownName
from gepa_graph.redact import redact_text
from gepa_graph.store import RunStore
from gepa_graph.templates import MUSTACHE_VARIABLE
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.console import quiet_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from gepa_graph.result import Result

_NAME_RULE = re.compile(r"^[A-Za-z0-9_.-]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HISTORY_MAX_CHARS = 4500  # MLflow keeps prompt tag values up to 5000 characters


# --- brace conversion -------------------------------------------------------------------------


def _langchain_to_mlflow(template: str) -> str:
    """``{var}`` -> ``{{var}}``, ``{{``/``}}`` -> literal braces. ValueError if not expressible."""
    parts: list[str] = []
    for literal, field_name, spec, conversion in string.Formatter().parse(template):
        parts.append(literal)
        if field_name is None:
            continue
        if spec or conversion or not _IDENTIFIER.match(field_name):
            raise ValueError(f"field {{{field_name}}} has no MLflow equivalent")
        parts.append("{{" + field_name + "}}")
    return "".join(parts)


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _mlflow_to_langchain(template: str) -> str:
    """``{{var}}`` -> ``{var}``, other braces escaped; a dotted ``{{a.b}}`` has no f-string
    equivalent and stays literal text."""
    parts: list[str] = []
    position = 0
    for match in MUSTACHE_VARIABLE.finditer(template):
        if not _IDENTIFIER.match(match.group(1)):
            continue
        parts.append(_escape_braces(template[position : match.start()]))
        parts.append("{" + match.group(1) + "}")
        position = match.end()
    parts.append(_escape_braces(template[position:]))
    return "".join(parts)


def encode_template(template: str) -> tuple[str, str]:
    """The text to store in MLflow and its brace format ("double" or "verbatim")."""
    try:
        converted = _langchain_to_mlflow(template)
    except ValueError:
        return template, "verbatim"
    if _mlflow_to_langchain(converted) != template or any(
        not _IDENTIFIER.match(match.group(1)) for match in MUSTACHE_VARIABLE.finditer(converted)
    ):  # not undone exactly, or literal text MLflow would read as a dotted variable
        return template, "verbatim"
    return converted, "double"


def decode_template(text: str, brace_format: str | None) -> str:
    """Inverse of :func:`encode_template`; untagged text is read as an MLflow template."""
    if brace_format == "verbatim":
        return text
    return _mlflow_to_langchain(text)


# --- names and references ---------------------------------------------------------------------


def module_prompt_name(name: str, module: str) -> str:
    """Registry prompt name of ``module``: ``NAME.<module>``, sanitized if MLflow needs it."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", module)
    if safe != module or not safe:
        safe = f"{safe}-{hashlib.sha256(module.encode('utf-8')).hexdigest()[:8]}"
    return f"{name}.{safe}"


def _check_name(name: str) -> None:
    if not _NAME_RULE.match(name or ""):
        raise InvalidInput(
            f"registry name {name!r} is invalid: use letters, digits, '_', '-' and '.' only"
        )


def _parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME@alias``, ``NAME`` (each module's latest version), ``prompts:/NAME@alias``."""
    body = ref.removeprefix("prompts:/")
    name, _, alias = body.partition("@")
    if "/" in name:
        raise InvalidInput(
            f"{ref!r}: give NAME@alias (e.g. agent@production); versions are per module, so "
            "pin one with an alias"
        )
    _check_name(name)
    if "@" in body and not alias:
        raise InvalidInput(f"empty alias in {ref!r}")
    return name, alias or None


def client_for(tracking_uri: str | None) -> MlflowClient:
    """An MLflow client whose tracking and registry are both ``tracking_uri`` (None: MLflow's
    default, from ``MLFLOW_TRACKING_URI``), with MLflow's console chatter quieted."""
    from mlflow import MlflowClient

    quiet_mlflow()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in (
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "INVALID_PARAMETER_VALUE",
    )


def _versions(client: MlflowClient, prompt_name: str) -> list[Any]:
    """Every version of a prompt, oldest first ([] if the prompt does not exist)."""
    from mlflow.exceptions import MlflowException

    versions: list[Any] = []
    token = None
    while True:
        try:
            page = client.search_prompt_versions(prompt_name, page_token=token)
        except MlflowException as exc:
            if _not_found(exc):
                return []
            raise
        versions.extend(page)
        token = page.token
        if not token:
            return sorted(versions, key=lambda v: int(v.version))


def _modules(client: MlflowClient, name: str) -> dict[str, Any]:
    """Module -> registry Prompt, for every module prompt registered under ``name``."""
    prompts: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_prompts(
            filter_string=f"tags.`{S.PROMPT_GROUP}` = '{name}'", max_results=100, page_token=token
        )
        for prompt in page:
            prompts[prompt.tags.get(S.PROMPT_MODULE, prompt.name)] = prompt
        token = page.token
        if not token:
            return prompts


def _prompt(client: MlflowClient, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_prompt(name)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def _at_alias(client: MlflowClient, prompt_name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_prompt_version_by_alias(prompt_name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def _resolve(client: MlflowClient, ref: str) -> dict[str, Any]:
    """Module -> PromptVersion named by ``ref``; LookupError if there is none."""
    name, alias = _parse_ref(ref)
    modules = _modules(client, name)
    if not modules:
        prompt = _prompt(client, name)
        group = prompt.tags.get(S.PROMPT_GROUP) if prompt is not None else None
        if group:
            raise UnknownName(
                f"registry prompt {name!r} is one module of {group!r}; load "
                f"{group!r}{'@' + alias if alias else ''} to get every module"
            )
        if prompt is not None:
            raise UnknownName(
                f"registry prompt {name!r} was not registered by gepa_graph; register prompts "
                "with gepa_graph.tracking.registry.register() (or gepa-graph optimize --register)"
            )
        raise UnknownName(f"no prompts registered as {name!r}")
    found = {}
    for module, prompt in modules.items():
        if alias is None:
            versions = _versions(client, prompt.name)
            version = versions[-1] if versions else None
        else:
            version = _at_alias(client, prompt.name, alias)
        if version is not None:
            found[module] = version
    if not found:
        raise UnknownName(f"no registered gepa_graph prompts at {ref!r}")
    return found


def template_of(version: Any) -> str:
    """The exact template a PromptVersion holds, braces as the graph uses them: undoes the
    conversion ``register`` stored it with (``gepa_graph.brace_format`` tag)."""
    return decode_template(version.template, version.tags.get(S.VERSION_BRACES))


# --- history: every alias move, so rollback can undo one ----------------------------------------


def _history(prompt: Any) -> list[dict[str, Any]]:
    try:
        return json.loads(prompt.tags.get(S.PROMPT_HISTORY, "[]"))
    except json.JSONDecodeError:
        return []


def _append_history(client: MlflowClient, prompt_name: str, entry: dict[str, Any]) -> None:
    entries = _history(client.get_prompt(prompt_name)) + [entry]
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


def _move(
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
    modules = modules if modules is not None else _modules(client, name)
    missing = sorted(set(target) - set(modules))
    if missing:
        raise UnknownName(f"{name!r} has no registered module(s) {missing}")
    changes: dict[str, tuple[int | None, int | None]] = {}
    for module, prompt in sorted(modules.items()):
        current = _at_alias(client, prompt.name, alias)
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
        _append_history(client, modules[module].name, entry)
    return move


def alias_history(
    name: str, alias: str | None = None, tracking_uri: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded alias move of ``name`` (one entry per move, modules merged), oldest first."""
    _check_name(name)
    client = client_for(tracking_uri)
    moves: dict[str, dict[str, Any]] = {}
    for module, prompt in _modules(client, name).items():
        for entry in _history(prompt):
            if alias is not None and entry.get("alias") != alias:
                continue
            move = moves.setdefault(entry["id"], {**entry, "changes": {}})
            move["changes"][module] = (entry.get("from"), entry.get("to"))
    for move in moves.values():
        move.pop("from", None)
        move.pop("to", None)
    return sorted(moves.values(), key=lambda m: m["at"])


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What :func:`register` did: the version per module and whether it was newly created."""

    name: str
    alias: str
    versions: dict[str, int]
    created: dict[str, bool] = field(default_factory=dict)
    run_id: str | None = None


def _run_id_from(result: Result) -> str | None:
    """The MLflow run recorded in the result's run folder, if any."""
    if not result.run_dir:
        return None
    return RunStore(result.run_dir).attribute(S.ATTR_RUN_ID)


def _same(version: Any, text: str, brace_format: str) -> bool:
    return version.template == text and version.tags.get(S.VERSION_BRACES) == brace_format


def _link_to_experiment(client: MlflowClient, prompt: Any, experiment_id: str) -> None:
    """List the prompt in the experiment's Prompts tab (MLflow keeps that as a prompt tag)."""
    from mlflow.prompt.constants import PROMPT_EXPERIMENT_IDS_TAG_KEY

    ids = [i for i in prompt.tags.get(PROMPT_EXPERIMENT_IDS_TAG_KEY, "").split(",") if i]
    if experiment_id not in ids:
        client.set_prompt_tag(
            prompt.name, PROMPT_EXPERIMENT_IDS_TAG_KEY, "," + ",".join([*ids, experiment_id]) + ","
        )


def link_to_run(client: MlflowClient, run_id: str, versions: list[Any]) -> None:
    """MLflow 3's run-prompt link: the run page lists these versions under Registered prompts.

    Written through this client: MLflow's ``link_prompt_version_to_run`` writes the same tag
    through the process-wide default tracking store, which is not the one a client with its
    own ``tracking_uri`` (or a remote server) talks to."""
    from mlflow.tracing.constant import TraceTagKey
    from mlflow.tracing.utils.prompt import update_linked_prompts_tag

    current = client.get_run(run_id).data.tags.get(TraceTagKey.LINKED_PROMPTS)
    updated = update_linked_prompts_tag(current, versions)
    if updated != current:
        client.set_tag(run_id, TraceTagKey.LINKED_PROMPTS, updated)


def _candidate_run(
    client: MlflowClient, run_id: str, experiment_id: str, candidate_id: str
) -> str | None:
    """The nested run of ``candidate_id`` under the optimization run ``run_id``, if any."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{S.MLFLOW_PARENT_RUN}` = '{run_id}' and "
        f"tags.`{S.TAG_CANDIDATE_ID}` = '{candidate_id}'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def register(
    result: Result,
    name: str,
    alias: str = S.CANDIDATE_ALIAS,
    tracking_uri: str | None = None,
    *,
    run_id: str | None = None,
) -> Registration:
    """Register ``result``'s best prompts as versions of ``NAME.<module>`` and point ``alias``
    of every module at them.

    A module whose text equals one of its existing versions reuses that version (no duplicate).
    ``run_id`` defaults to the MLflow run recorded in ``result.run_dir``; the versions are linked
    to that run and to its winning candidate's run, and the prompts to its experiment.
    """
    _check_name(name)
    client = client_for(tracking_uri)
    run_id = run_id or _run_id_from(result)
    experiment_id = client.get_run(run_id).info.experiment_id if run_id else None
    version_tags = {S.VERSION_CANDIDATE: result.best_id, S.VERSION_SCORE: repr(result.best_score)}
    if run_id:
        version_tags[S.VERSION_RUN_ID] = run_id
    message = redact_text(
        f"gepa_graph candidate {result.best_id} (validation score {result.best_score:.4f})"
        + (f" from run {run_id}" if run_id else "")
    )

    modules = _modules(client, name)
    created: dict[str, bool] = {}
    registered: dict[str, Any] = {}
    for module, template in sorted(result.best_candidate.items()):
        prompt_name = module_prompt_name(name, module)
        text, brace_format = encode_template(redact_text(template))
        prompt = modules.get(module)
        if prompt is None:
            if _prompt(client, prompt_name) is not None:
                raise InvalidInput(
                    f"registry prompt {prompt_name!r} exists and was not registered by "
                    f"gepa_graph as part of {name!r}"
                )
            prompt = client.create_prompt(
                prompt_name,
                description=f"Module {module!r} of the gepa_graph agent {name!r}.",
                tags={S.PROMPT_GROUP: name, S.PROMPT_MODULE: module},
            )
            modules[module] = prompt
        existing = [v for v in _versions(client, prompt_name) if _same(v, text, brace_format)]
        if existing:
            version = existing[-1]
            created[module] = False
        else:
            version = client.create_prompt_version(
                prompt_name, text, message, tags={S.VERSION_BRACES: brace_format, **version_tags}
            )
            created[module] = True
        registered[module] = version
        if experiment_id is not None:
            _link_to_experiment(client, client.get_prompt(prompt_name), experiment_id)
    if run_id:
        link_to_run(client, run_id, list(registered.values()))
        winner = _candidate_run(client, run_id, experiment_id, result.best_id)
        if winner is not None:
            link_to_run(client, winner, list(registered.values()))
    target = {m: int(v.version) for m, v in registered.items()}
    _move(client, name, alias, target, "register", modules, run_id=run_id)
    return Registration(name, alias, target, created, run_id)


def promote(
    name: str,
    from_alias: str = S.CANDIDATE_ALIAS,
    to_alias: str = S.PRODUCTION_ALIAS,
    tracking_uri: str | None = None,
) -> dict[str, int]:
    """Point ``to_alias`` at the versions ``from_alias`` names, for every module together."""
    _check_name(name)
    client = client_for(tracking_uri)
    source = _resolve(client, f"{name}@{from_alias}")
    target = {m: int(v.version) for m, v in source.items()}
    _move(client, name, to_alias, target, "promote", source_alias=from_alias)
    return target


def rollback(name: str, alias: str = S.PRODUCTION_ALIAS, tracking_uri: str | None = None) -> Move:
    """Put ``alias`` back on the version set it named before its last move, for every module.

    Each rollback undoes one more move (a rollback is itself never undone by the next one); the
    history keeps every move, rollbacks included."""
    _check_name(name)
    client = client_for(tracking_uri)
    moves = alias_history(name, alias, tracking_uri)
    undone = {m.get("undoes") for m in moves if m["event"] == "rollback"}
    for move in reversed(moves):
        if move["event"] != "rollback" and move["id"] not in undone:
            break
    else:
        move = None
    if move is None or all(before is None for before, _ in move["changes"].values()):
        raise UnknownName(f"{name}@{alias} has no earlier version set to roll back to")
    modules = _modules(client, name)
    target = {}
    for module, prompt in modules.items():
        current = _at_alias(client, prompt.name, alias)
        if current is not None:
            target[module] = int(current.version)
    for module, (before, _) in move["changes"].items():
        if before is None:
            target.pop(module, None)
        else:
            target[module] = before
    return _move(client, name, alias, target, "rollback", modules, undoes=move["id"])


def load_versions(ref: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Module -> MLflow PromptVersion at ``NAME@alias`` (or ``NAME``: each module's latest)."""
    return _resolve(client_for(tracking_uri), ref)


def load_prompts(ref: str, tracking_uri: str | None = None) -> dict[str, str]:
    """Module -> exact template at ``NAME@alias`` (or ``NAME``: each module's latest)."""
    return {m: template_of(v) for m, v in load_versions(ref, tracking_uri).items()}


@dataclass(frozen=True)
class SeedOrigin:
    """Registry prompts this process loaded with ``seed_from_registry``: the ``ref`` asked
    for, the ``versions`` it resolved to (module -> version) and their ``prompts``, so the
    MLflowTracker of a run seeded with those texts can record where its seed came from."""

    ref: str
    versions: dict[str, int]
    prompts: dict[str, str]


_LOADED: list[SeedOrigin] = []


def seed_from_registry(ref: str, tracking_uri: str | None = None) -> dict[str, str]:
    """Prompts to start an optimization from: pass as ``gg.optimize(..., seed_prompts=...)``.

    The MLflowTracker of an optimization seeded with these exact texts records ``ref`` and the
    versions on its run."""
    versions = load_versions(ref, tracking_uri)
    prompts = {m: template_of(v) for m, v in versions.items()}
    _LOADED.append(SeedOrigin(ref, {m: int(v.version) for m, v in versions.items()}, prompts))
    del _LOADED[:-16]
    return prompts


def seed_origin(seed_prompts: dict[str, str]) -> SeedOrigin | None:
    """The registry prompts loaded in this process that ``seed_prompts`` starts from, if any."""
    for origin in reversed(_LOADED):
        if all(seed_prompts.get(m) == text for m, text in origin.prompts.items()):
            return origin
    return None


def with_registry_prompts(graph: Any, ref: str, tracking_uri: str | None = None) -> Any:
    """A copy of ``graph`` running the registry prompts at ``ref`` (e.g. ``agent@production``).

    When MLflow tracing is on, each trace of the returned graph is linked to the prompt
    versions it ran (the trace's Prompts in the MLflow UI)."""
    from gepa_graph.integrations.langgraph import with_prompts
    from gepa_graph.tracking.trace_link import link_traces

    versions = load_versions(ref, tracking_uri)
    graph = with_prompts(graph, {m: template_of(v) for m, v in versions.items()})
    return link_traces(graph, list(versions.values()))
