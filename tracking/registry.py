"""Optimized prompts in the MLflow Prompt Registry: register, promote, load by alias.

Layout for a registration named ``NAME``:

* one registry prompt per module, ``NAME.<module>`` (characters MLflow does not allow in prompt
  names, anything outside ``[A-Za-z0-9_.-]``, become ``_`` plus a short hash of the original module
  name so two modules never collide; the original name is kept in the version's tags);
* one *manifest* prompt named ``NAME`` whose template is JSON pinning the exact version of every
  module prompt. Loading goes through the manifest, so a reader always gets a consistent set even
  while ``promote`` is moving aliases: the manifest alias moves last.

Aliases are set on every module's version and on the manifest, so ``prompts:/NAME.<module>@alias``
also works for a single module.

Brace round trip: LangChain templates use ``{var}`` and ``{{``/``}}`` for literal braces; MLflow
uses ``{{var}}``. A template is stored converted to MLflow's convention when the conversion can be
undone exactly (checked for every template); otherwise (format specs, ``{0}``, text that would read
as an MLflow variable, templates that are not f-strings) it is stored verbatim. The version tag
``gepa_graph.brace_format`` ("double" or "verbatim") says which, so what loads back is exactly what
was optimized. Versions without that tag (written by hand in the MLflow UI) are read as MLflow
double-brace templates.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from gepa_graph.result import Result

MANIFEST_FORMAT = "gepa_graph.manifest/1"
TAG_KIND = "gepa_graph.kind"
TAG_MANIFEST = "gepa_graph.manifest"
TAG_MODULE = "gepa_graph.module"
TAG_BRACES = "gepa_graph.brace_format"
TAG_RUN_ID = "gepa_graph.run_id"
TAG_CANDIDATE = "gepa_graph.candidate_id"
TAG_SCORE = "gepa_graph.score"

_NAME_RULE = re.compile(r"^[A-Za-z0-9_.-]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MLFLOW_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


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
    parts: list[str] = []
    position = 0
    for match in _MLFLOW_VAR.finditer(template):
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
    if _mlflow_to_langchain(converted) != template:
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
        raise ValueError(
            f"registry name {name!r} is invalid: use letters, digits, '_', '-' and '.' only"
        )


def _parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    """``NAME@alias``, ``NAME/3``, ``NAME`` (latest), ``prompts:/...`` -> (name, alias, version)."""
    body = ref.removeprefix("prompts:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        _check_name(name)
        if not alias:
            raise ValueError(f"empty alias in {ref!r}")
        return name, alias, None
    if "/" in body:
        name, version = body.rsplit("/", 1)
        _check_name(name)
        if not version.isdigit():
            raise ValueError(f"version in {ref!r} must be a number")
        return name, None, int(version)
    _check_name(body)
    return body, None, None


def _client(tracking_uri: str | None) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in (
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "INVALID_PARAMETER_VALUE",
    )


def _latest_version(client: MlflowClient, prompt_name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    versions: list[Any] = []
    token = None
    while True:
        try:
            page = client.search_prompt_versions(prompt_name, page_token=token)
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise
        versions.extend(page)
        token = page.token
        if not token:
            break
    return max(versions, key=lambda v: int(v.version), default=None)


# --- manifest ---------------------------------------------------------------------------------


def _read_manifest(client: MlflowClient, name: str, alias: str | None, version: int | None):
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            prompt_version = client.get_prompt_version_by_alias(name, alias)
        elif version is not None:
            prompt_version = client.get_prompt_version(name, version)
        else:
            prompt_version = _latest_version(client, name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        prompt_version = None
    where = f"{name}@{alias}" if alias else f"{name}/{version}" if version else name
    if prompt_version is None:
        raise LookupError(f"no registered gepa_graph prompts at {where!r}")
    if prompt_version.tags.get(TAG_KIND) != "manifest":
        raise LookupError(
            f"registry prompt {where!r} is not a gepa_graph manifest; was it registered with "
            "gepa_graph.tracking.registry.register()?"
        )
    manifest = json.loads(prompt_version.template)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise LookupError(f"{where!r} holds an unknown manifest format {manifest.get('format')!r}")
    return prompt_version, manifest


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What :func:`register` did: the version per module and whether it was newly created."""

    name: str
    alias: str
    manifest_version: int
    versions: dict[str, int]
    created: dict[str, bool] = field(default_factory=dict)


def _run_id_from(result: Result) -> str | None:
    if not result.run_dir:
        return None
    path = Path(result.run_dir) / "mlflow_run.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("run_id")


def register(
    result: Result,
    name: str,
    alias: str = "candidate",
    tracking_uri: str | None = None,
    *,
    run_id: str | None = None,
) -> Registration:
    """Register ``result``'s best prompts as versions of ``NAME.<module>`` and set ``alias``.

    A module whose template equals its latest version reuses that version (no duplicate); the
    manifest likewise. ``run_id`` defaults to the MLflow run recorded in ``result.run_dir``.
    """
    _check_name(name)
    client = _client(tracking_uri)
    run_id = run_id or _run_id_from(result)
    common = {TAG_CANDIDATE: result.best_id, TAG_SCORE: repr(result.best_score)}
    if run_id:
        common[TAG_RUN_ID] = run_id
    message = f"gepa_graph candidate {result.best_id} (validation score {result.best_score:.4f})"

    versions: dict[str, int] = {}
    created: dict[str, bool] = {}
    entries: dict[str, dict[str, Any]] = {}
    for module, template in sorted(result.best_candidate.items()):
        prompt_name = module_prompt_name(name, module)
        text, brace_format = encode_template(template)
        latest = _latest_version(client, prompt_name)
        if latest is not None:
            owner = latest.tags.get(TAG_MANIFEST)
            if owner is not None and owner != name:
                raise ValueError(f"registry prompt {prompt_name!r} belongs to {owner!r}")
        if (
            latest is not None
            and latest.template == text
            and latest.tags.get(TAG_BRACES) == brace_format
        ):
            version = int(latest.version)
            created[module] = False
        else:
            tags = {
                TAG_KIND: "module",
                TAG_MANIFEST: name,
                TAG_MODULE: module,
                TAG_BRACES: brace_format,
                **common,
            }
            version = int(client.register_prompt(prompt_name, text, message, tags=tags).version)
            created[module] = True
        versions[module] = version
        entries[module] = {"prompt": prompt_name, "version": version}

    manifest = {"format": MANIFEST_FORMAT, "modules": entries, **common}
    latest_manifest = _latest_version(client, name)
    if latest_manifest is not None and latest_manifest.tags.get(TAG_KIND) != "manifest":
        raise ValueError(f"registry prompt {name!r} exists and is not a gepa_graph manifest")
    if (
        latest_manifest is not None
        and json.loads(latest_manifest.template).get("modules") == entries
    ):
        manifest_version = int(latest_manifest.version)
    else:
        manifest_version = int(
            client.register_prompt(
                name,
                json.dumps(manifest, indent=2, sort_keys=True),
                message,
                tags={TAG_KIND: "manifest", **common},
            ).version
        )

    for module, version in versions.items():
        client.set_prompt_alias(entries[module]["prompt"], alias, version)
    client.set_prompt_alias(name, alias, manifest_version)  # last: readers see old or new set
    return Registration(name, alias, manifest_version, versions, created)


def promote(
    name: str,
    from_alias: str = "candidate",
    to_alias: str = "production",
    tracking_uri: str | None = None,
) -> dict[str, int]:
    """Point ``to_alias`` at the versions ``from_alias`` names, for every module at once."""
    _check_name(name)
    client = _client(tracking_uri)
    manifest_version, manifest = _read_manifest(client, name, from_alias, None)
    versions = {}
    for module, entry in manifest["modules"].items():
        client.set_prompt_alias(entry["prompt"], to_alias, int(entry["version"]))
        versions[module] = int(entry["version"])
    client.set_prompt_alias(name, to_alias, int(manifest_version.version))
    return versions


def load_prompts(ref: str, tracking_uri: str | None = None) -> dict[str, str]:
    """Module -> exact template for ``NAME@alias`` (or ``NAME/version``, ``NAME`` for latest)."""
    name, alias, version = _parse_ref(ref)
    client = _client(tracking_uri)
    _, manifest = _read_manifest(client, name, alias, version)
    prompts = {}
    for module, entry in manifest["modules"].items():
        prompt_version = client.get_prompt_version(entry["prompt"], int(entry["version"]))
        brace_format = prompt_version.tags.get(TAG_BRACES)
        prompts[module] = decode_template(prompt_version.template, brace_format)
    return prompts


def seed_from_registry(ref: str, tracking_uri: str | None = None) -> dict[str, str]:
    """Prompts to start an optimization from: pass as ``gg.optimize(..., seed_prompts=...)``."""
    return load_prompts(ref, tracking_uri)


def with_registry_prompts(graph: Any, ref: str, tracking_uri: str | None = None) -> Any:
    """A copy of ``graph`` running the registry prompts at ``ref`` (e.g. ``agent@production``)."""
    from gepa_graph.integrations.langgraph import with_prompts

    return with_prompts(graph, load_prompts(ref, tracking_uri))

