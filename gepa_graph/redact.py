"""Masks API keys and bearer tokens in anything gepa_graph writes (journal, checkpoint,
events, MLflow).

Secrets can reach a trace from LM kwargs, headers or a tool's output; the optimizer never needs
them, so they are replaced before a value is stored.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|passwd|authorization|credential|bearer"
    r"|(access|auth|api|bearer|refresh|session)[_-]?token|^token$)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(\bsk-[A-Za-z0-9_\-]{16,}"
    r"|\b(?i:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|\bAKIA[0-9A-Z]{16}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|(?i:(?:api[_-]?key|secret|token|password)\s*[=:]\s*)[^\s,;\"']{6,})"
)


def env_secrets() -> list[str]:
    """Values of environment variables whose names say they hold a secret, longest first."""
    return sorted(
        (v for k, v in os.environ.items()
         if (_SECRET_KEY.search(k) or k.endswith("_KEY")) and len(v) >= 8),
        key=len, reverse=True,
    )


def is_secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Mask key-shaped substrings and the verbatim ``secrets`` (default: the environment's)."""
    text = _SECRET_VALUE.sub(MASK, text)
    for value in env_secrets() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


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
