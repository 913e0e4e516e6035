"""A registration's prompts in the MLflow Prompt Registry: the registry prompt name of each
module, references (``NAME@alias``, ``NAME``, ``prompts:/NAME@alias``), and the lookups every
registry operation starts from (a registration's modules, a prompt's versions, the version at an
alias, the exact template a version holds)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from gepa_graph.errors import InvalidInput, UnknownName
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.braces import decode_template
from gepa_graph.tracking.console import quiet_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient

_NAME_RULE = re.compile(r"^[A-Za-z0-9_.-]+$")


def module_prompt_name(name: str, module: str) -> str:
    """Registry prompt name of ``module``: ``NAME.<module>``, sanitized if MLflow needs it."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", module)
    if safe != module or not safe:
        safe = f"{safe}-{hashlib.sha256(module.encode('utf-8')).hexdigest()[:8]}"
    return f"{name}.{safe}"


def check_name(name: str) -> None:
    """InvalidInput for a registration name MLflow would refuse."""
    if not _NAME_RULE.match(name or ""):
        raise InvalidInput(
            f"registry name {name!r} is invalid: use letters, digits, '_', '-' and '.' only"
        )


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME@alias``, ``NAME`` (each module's latest version), ``prompts:/NAME@alias``."""
    body = ref.removeprefix("prompts:/")
    name, _, alias = body.partition("@")
    if "/" in name:
        raise InvalidInput(
            f"{ref!r}: give NAME@alias (e.g. agent@production); versions are per module, so "
            "pin one with an alias"
        )
    check_name(name)
    if "@" in body and not alias:
        raise InvalidInput(f"empty alias in {ref!r}")
    return name, alias or None


def client_for(tracking_uri: str | None) -> MlflowClient:
    """An MLflow client whose tracking and registry are both ``tracking_uri`` (None: MLflow's
    default, from ``MLFLOW_TRACKING_URI``), with MLflow's console chatter quieted."""
    from mlflow import MlflowClient

    quiet_mlflow()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def not_found(exc: Exception) -> bool:
    """Whether an MLflow error says the thing asked for does not exist."""
    return getattr(exc, "error_code", None) in (
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "INVALID_PARAMETER_VALUE",
    )


def versions_of(client: MlflowClient, prompt_name: str) -> list[Any]:
    """Every version of a prompt, oldest first ([] if the prompt does not exist)."""
    from mlflow.exceptions import MlflowException

    versions: list[Any] = []
    token = None
    while True:
        try:
            page = client.search_prompt_versions(prompt_name, page_token=token)
        except MlflowException as exc:
            if not_found(exc):
                return []
            raise
        versions.extend(page)
        token = page.token
        if not token:
            return sorted(versions, key=lambda v: int(v.version))


def modules_of(client: MlflowClient, name: str) -> dict[str, Any]:
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


def prompt_of(client: MlflowClient, name: str) -> Any | None:
    """The registry prompt ``name``; None if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_prompt(name)
    except MlflowException as exc:
        if not_found(exc):
            return None
        raise


def at_alias(client: MlflowClient, prompt_name: str, alias: str) -> Any | None:
    """The version of ``prompt_name`` at ``alias``; None if the prompt or alias is absent."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_prompt_version_by_alias(prompt_name, alias)
    except MlflowException as exc:
        if not_found(exc):
            return None
        raise


def resolve(client: MlflowClient, ref: str) -> dict[str, Any]:
    """Module -> PromptVersion named by ``ref``; LookupError if there is none."""
    name, alias = parse_ref(ref)
    modules = modules_of(client, name)
    if not modules:
        prompt = prompt_of(client, name)
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
            versions = versions_of(client, prompt.name)
            version = versions[-1] if versions else None
        else:
            version = at_alias(client, prompt.name, alias)
        if version is not None:
            found[module] = version
    if not found:
        raise UnknownName(f"no registered gepa_graph prompts at {ref!r}")
    return found


def template_of(version: Any) -> str:
    """The exact template a PromptVersion holds, braces as the graph uses them: undoes the
    conversion ``register`` stored it with (``gepa_graph.brace_format`` tag)."""
    return decode_template(version.template, version.tags.get(S.VERSION_BRACES))
