"""Templates between LangChain's braces and MLflow's.

Brace round trip: LangChain templates use ``{var}`` and ``{{``/``}}`` for literal braces; MLflow
uses ``{{var}}``. A template is stored converted to MLflow's convention when the conversion can be
undone exactly (checked for every template); otherwise (format specs, ``{0}``, text that would read
as an MLflow variable, templates that are not f-strings) it is stored verbatim. The version tag
``gepa_graph.brace_format`` ("double" or "verbatim") says which, so what loads back is exactly what
was optimized. Versions without that tag (written by hand in the MLflow UI) are read as MLflow
double-brace templates.
"""

from __future__ import annotations

import re
import string

from gepa_graph.templates import MUSTACHE_VARIABLE

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
