"""What a failure means for a retry: transient (a rate limit, a timeout, a dropped connection:
try again) or a configuration error (an unknown model, a missing key: every call would fail the
same way). Read from the exception's class names and status code, so no provider SDK is
imported; rollouts (``system``) and reflection calls (``lm``) classify their failures here."""

from __future__ import annotations

import re

from gepa_graph.usercode import describe

# Exception class names that mean "try again later" across LiteLLM, OpenAI, Anthropic and
# httpx, matched anywhere in the class hierarchy so no provider SDK needs importing.
_TRANSIENT_NAMES = frozenset(
    {
        "RateLimitError",
        "Timeout",
        "APITimeoutError",
        "TimeoutException",
        "APIConnectionError",
        "ServiceUnavailableError",
        "InternalServerError",
        "OverloadedError",
        "ConnectError",
        "ReadTimeout",
        "RemoteProtocolError",
        "BadGatewayError",
    }
)
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Errors that will fail every call the same way: the run stops at the first one, in one line.
_CONFIG_NAMES = frozenset({"AuthenticationError", "PermissionDeniedError", "NotFoundError"})
_CREDENTIALS = re.compile(
    r"missing credentials|api[_ -]?key|no key is set|unauthori[sz]ed|authenticat", re.IGNORECASE
)


def class_names(exc: BaseException) -> set[str]:
    """The names of every class ``exc`` is an instance of."""
    return {cls.__name__ for cls in type(exc).__mro__}


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: rate limits, timeouts, dropped connections, 5xx."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in _TRANSIENT_STATUS or status >= 500):
        return True
    return bool(class_names(exc) & _TRANSIENT_NAMES)


def is_config_error(exc: BaseException) -> bool:
    """An unknown model or missing/bad credentials: every later call would fail the same way
    (OpenAI reports a missing key as a 500, so the message is read too)."""
    if class_names(exc) & _CONFIG_NAMES:
        return True
    return not isinstance(exc, TimeoutError) and bool(_CREDENTIALS.search(describe(exc)))
