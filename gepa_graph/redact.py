"""Masks API keys and bearer tokens in anything gepa_graph writes (journal, checkpoint, events).

Secrets can reach a trace from LM kwargs, headers or a tool's output; the optimizer never needs
them, so they are replaced before a value is stored.
"""

from __future__ import annotations

import os
import re

MASK = "***REDACTED***"

_SECRET_KEY = re.compile(r"(api[_-]?key|authorization|bearer|password|secret|access[_-]?token)", re.I)
_TOKEN_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),           # OpenAI / Anthropic style keys
    re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{12,}", re.I),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),           # Google API keys
    re.compile(r"\b(?:ghp|gho|github_pat|xox[abp])_[A-Za-z0-9_]{16,}"),
]


def env_secrets() -> list[str]:
    """Values of environment variables whose names say they hold a secret."""
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_KEY.search(k) or k.endswith("_KEY")
         if len(v) >= 8),
        key=len, reverse=True,
    )


def is_secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """``secrets``: values to mask verbatim; default the environment's (see env_secrets)."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    for value in env_secrets() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text
