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

The parts: brace conversion (``braces``), names, references and lookups (``prompt_refs``),
alias moves and their history (``alias_moves``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gepa_graph.errors import InvalidInput, UnknownName
from gepa_graph.redact import redact_text
from gepa_graph.store import RunStore
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.alias_moves import Move, history_of, move_alias
from gepa_graph.tracking.braces import encode_template
from gepa_graph.tracking.prompt_refs import (
    at_alias,
    check_name,
    client_for,
    module_prompt_name,
    modules_of,
    prompt_of,
    resolve,
    template_of,
    versions_of,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from gepa_graph.result import Result

__all__ = [
    "Move",
    "Registration",
    "SeedOrigin",
    "alias_history",
    "client_for",
    "link_to_run",
    "load_prompts",
    "load_versions",
    "module_prompt_name",
    "promote",
    "register",
    "rollback",
    "seed_from_registry",
    "seed_origin",
    "seed_origin_tags",
    "template_of",
    "with_registry_prompts",
]


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
    check_name(name)
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

    modules = modules_of(client, name)
    created: dict[str, bool] = {}
    registered: dict[str, Any] = {}
    for module, template in sorted(result.best_candidate.items()):
        prompt_name = module_prompt_name(name, module)
        text, brace_format = encode_template(redact_text(template))
        prompt = modules.get(module)
        if prompt is None:
            if prompt_of(client, prompt_name) is not None:
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
        existing = [v for v in versions_of(client, prompt_name) if _same(v, text, brace_format)]
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
        winner = (
            _candidate_run(client, run_id, experiment_id, result.best_id)
            if experiment_id is not None
            else None
        )
        if winner is not None:
            link_to_run(client, winner, list(registered.values()))
    target = {m: int(v.version) for m, v in registered.items()}
    move_alias(client, name, alias, target, "register", modules, run_id=run_id)
    return Registration(name, alias, target, created, run_id)


def promote(
    name: str,
    from_alias: str = S.CANDIDATE_ALIAS,
    to_alias: str = S.PRODUCTION_ALIAS,
    tracking_uri: str | None = None,
) -> dict[str, int]:
    """Point ``to_alias`` at the versions ``from_alias`` names, for every module together."""
    check_name(name)
    client = client_for(tracking_uri)
    source = resolve(client, f"{name}@{from_alias}")
    target = {m: int(v.version) for m, v in source.items()}
    move_alias(client, name, to_alias, target, "promote", source_alias=from_alias)
    return target


def alias_history(
    name: str, alias: str | None = None, tracking_uri: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded alias move of ``name`` (one entry per move, modules merged), oldest first."""
    check_name(name)
    client = client_for(tracking_uri)
    moves: dict[str, dict[str, Any]] = {}
    for module, prompt in modules_of(client, name).items():
        for entry in history_of(prompt):
            if alias is not None and entry.get("alias") != alias:
                continue
            move = moves.setdefault(entry["id"], {**entry, "changes": {}})
            move["changes"][module] = (entry.get("from"), entry.get("to"))
    for move in moves.values():
        move.pop("from", None)
        move.pop("to", None)
    return sorted(moves.values(), key=lambda m: m["at"])


def rollback(name: str, alias: str = S.PRODUCTION_ALIAS, tracking_uri: str | None = None) -> Move:
    """Put ``alias`` back on the version set it named before its last move, for every module.

    Each rollback undoes one more move (a rollback is itself never undone by the next one); the
    history keeps every move, rollbacks included."""
    check_name(name)
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
    modules = modules_of(client, name)
    target = {}
    for module, prompt in modules.items():
        current = at_alias(client, prompt.name, alias)
        if current is not None:
            target[module] = int(current.version)
    for module, (before, _) in move["changes"].items():
        if before is None:
            target.pop(module, None)
        else:
            target[module] = before
    return move_alias(client, name, alias, target, "rollback", modules, undoes=move["id"])


def load_versions(ref: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Module -> MLflow PromptVersion at ``NAME@alias`` (or ``NAME``: each module's latest)."""
    return resolve(client_for(tracking_uri), ref)


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


def seed_origin_tags(seed_prompts: dict[str, str]) -> dict[str, str]:
    """The tags of an optimization's run saying where its seed came from (``seed_from_registry``
    in this process): the reference and the versions; none otherwise."""
    origin = seed_origin(seed_prompts)
    if origin is None:
        return {}
    return {S.TAG_SEED_FROM: origin.ref, S.TAG_SEED_VERSIONS: json.dumps(origin.versions)}


def with_registry_prompts(graph: Any, ref: str, tracking_uri: str | None = None) -> Any:
    """A copy of ``graph`` running the registry prompts at ``ref`` (e.g. ``agent@production``).

    When MLflow tracing is on, each trace of the returned graph is linked to the prompt
    versions it ran (the trace's Prompts in the MLflow UI)."""
    from gepa_graph.adapters import with_prompts
    from gepa_graph.tracking.trace_link import link_traces

    versions = load_versions(ref, tracking_uri)
    graph = with_prompts(graph, {m: template_of(v) for m, v in versions.items()})
    return link_traces(graph, list(versions.values()))
