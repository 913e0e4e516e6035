"""The local model's errors: each message is one line that says what to do."""


class LocalModelError(RuntimeError):
    """The local model cannot be used: parts missing, file missing, runtime not installed."""


class ModelChecksumError(LocalModelError):
    """The assembled model does not have the expected size or SHA-256."""
