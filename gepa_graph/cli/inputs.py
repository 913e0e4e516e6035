"""What the command line names: ``module:attr`` objects, JSONL examples, a reflection LM given
as a model name or a Python path. Every problem with them is a CLIError naming the input."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from gepa_graph.cli.common import one_line
from gepa_graph.errors import CLIError
from gepa_graph.executor import attribute_at


def load_object(spec: str, what: str) -> Any:
    """``package.module:attr`` or ``path/to/file.py:attr`` -> the object (cwd is importable)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise CLIError(f"{what} must be given as module:attr (e.g. my_agent:graph), got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise CLIError(f"cannot import {what} {spec!r}: no file {path}")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None:
                raise CLIError(f"cannot import {what} {spec!r}: {path} is not a Python module")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except CLIError:
        raise
    except Exception as exc:  # the user's module failed to import: say how, in one line
        raise CLIError(
            f"cannot import {what} {spec!r}: {type(exc).__name__}: {one_line(exc)}"
        ) from None
    try:
        return attribute_at(module, attr)
    except AttributeError:
        raise CLIError(
            f"cannot import {what} {spec!r}: {module_name} has no attribute {attr!r}"
        ) from None


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """Examples from a JSONL file: one JSON object per line, blank lines skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CLIError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CLIError(f"{path}:{number}: invalid JSON in {what}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise CLIError(
                f"{path}:{number}: each {what} line must be a JSON object, got "
                f"{type(value).__name__}"
            )
        examples.append(value)
    if not examples:
        raise CLIError(f"{what} file {path} holds no examples")
    return examples


_PYTHON_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def reflection_lm_from(value: str) -> Any:
    """A LiteLLM model name, or ``module:attr`` naming a Python callable(prompt) -> str."""
    if _PYTHON_PATH.match(value):
        try:
            target = load_object(value, "reflection LM")
        except CLIError:
            return value  # e.g. "ollama:llama3": a model name, not a Python path
        if callable(target):
            return target
    return value
