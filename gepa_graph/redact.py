"""The one redaction point: every byte gepa_graph persists or prints (journal, checkpoint,
events, logs, MLflow runs, artifacts and registry, console) passes through here first.

It masks key-shaped substrings (``sk-…``, ``sk-ant-…``, ``AKIA…``, ``Bearer …``, ``?key=…``
query parameters, passwords inside URLs, …) and the exact values of environment variables whose
names say they hold a secret (KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL, or a URL with a
password). It also replaces lone surrogates, which no UTF-8 file can hold.

Public API, stable for tracking and the CLI: ``MASK``, ``redact_text``, ``redact``,
``env_secrets``, ``is_secret_key``, ``find_secret``, ``clip``, ``RedactingFilter``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import unquote

MASK = "[REDACTED]"

# Keys of mappings (configs, headers, kwargs) whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|passwd|authorization|credential|bearer"
    r"|(access|auth|api|bearer|refresh|session)[_-]?token|^token$)",
    re.IGNORECASE,
)
# Environment variable names that hold secrets.
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)
# A URL's user:password@ part; group 1 is the password.
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@\"'\\]*:([^\s@/\"'\\]+)@", re.I)

# Shapes that are secrets on sight, wherever they appear.
_KEY_SHAPES = (
    r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}"
    r"|\b(?i:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|(?<=[?&])(?i:api[_-]?key|key|token|access_token|secret|sig|signature|password)"
    r"=[^&\s\"'#]{4,}"
)
_STRICT = re.compile(_KEY_SHAPES)
# Plus `password: s3cr3t…`-style assignments, only when the value has a digit: "token: word"
# in a prompt is prose, not a key.
_SECRET_VALUE = re.compile(
    _KEY_SHAPES + r"|(?i:(?:api[_-]?key|secret|token|password|passwd)\s*[=:]\s*)"
    r"(?=[^\s,;\"'&]*\d)[^\s,;\"'&]{8,}"
)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# The environment last scanned and its secrets.
_ENV_CACHE: tuple[dict[str, str], list[str]] | None = None


def env_secrets() -> list[str]:
    """Values of environment variables whose names say they hold a secret, and passwords
    inside URL-valued variables (DATABASE_URL), longest first.

    Scanned again only when the environment changed: this runs for every stored record."""
    global _ENV_CACHE
    environ = dict(os.environ)
    if _ENV_CACHE is not None and environ == _ENV_CACHE[0]:
        return _ENV_CACHE[1]
    found: set[str] = set()
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8:
            found.add(value)
        for match in _URL_PASSWORD.finditer(value):
            password = match.group(1)
            if len(password) >= 4:
                found.update({password, unquote(password)})
    secrets = sorted(found, key=len, reverse=True)
    _ENV_CACHE = (environ, secrets)
    return secrets


def is_secret_key(name: str) -> bool:
    """Whether a field or variable name says it holds a secret (``api_key``, ``token``,
    ``password``...): its value is masked whatever it looks like."""
    return bool(_SECRET_KEY.search(name))


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Mask key-shaped substrings, URL passwords and the verbatim ``secrets`` (default: the
    environment's); replace lone surrogates."""
    if not text:
        return text
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    text = _SECRET_VALUE.sub(MASK, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(0).replace(m.group(1), MASK), text)
    for value in env_secrets() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def find_secret(text: str) -> str | None:
    """What secret ``text`` holds ("a key-shaped string", "the value of $NAME"), or None.

    Used to refuse a seed prompt that holds a secret, so only unmistakable shapes count here:
    prose such as "password: see the manual" does not.
    """
    if _STRICT.search(text) or _URL_PASSWORD.search(text):
        return "a key-shaped string"
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8 and value in text:
            return f"the value of ${name}"
        for match in _URL_PASSWORD.finditer(value):
            if len(match.group(1)) >= 4 and match.group(1) in text:
                return f"the password in ${name}"
    return None


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a note of how much was cut: stored text is
    bounded so one huge message cannot multiply into a huge journal or checkpoint."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" ...[{len(text) - limit} more characters cut]"


def redact(value: Any, *, by_key: bool = False, key: str = "") -> Any:
    """Redact secrets in nested data; with ``by_key``, also every value stored under a
    secret-sounding key (for configs; not for prompt dicts keyed by module name)."""
    if by_key and is_secret_key(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, by_key=by_key, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, by_key=by_key) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Masks secrets in log records (message and arguments) before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken __str__ in an argument must not break logging
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# A logger's filters see only its own records, not its children's: name each package logger.
for _name in ("gepa_graph", "gepa_graph.tracking", "gepa_graph.integrations"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, RedactingFilter) for f in _logger.filters):
        _logger.addFilter(RedactingFilter())
