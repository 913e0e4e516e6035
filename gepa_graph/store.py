"""RunStore: the one owner of a run folder.

Every file in a run folder is written here, nowhere else:

* ``.lock``: held (``flock``) by the one optimization running there;
* ``run.json``: the fingerprint of the run's inputs, which a resume must match
  (``gepa_graph.fingerprint`` decides; the store reads and writes);
* ``journal.jsonl``: the append-only log of finished rollouts and reflection replies
  (``gepa_graph.journal`` is its format);
* ``state.json``: the checkpoint, written atomically (write, fsync, rename); once a run given a
  testset finished, it holds the held-out scores too (``save_testset``);
* ``attributes.json``: small named values others attach to the run, such as the MLflow run it
  writes to (``store.set_attribute("mlflow_run_id", ...)``). Folders written before the store
  kept the MLflow run in ``mlflow_run.json``; it is read as the attributes ``mlflow_<key>``.

As with Optuna's journal storage, the journal is the truth and the run is rebuilt by replay: a
resumed optimization runs again from the start, taking every rollout and reflection it already
paid for from the journal, and so reaches exactly the state the killed run had. The checkpoint is
the readable summary of that state (``load_result``) and tells a resume how far replay goes.

``RunStore(None)`` is a run without a folder: journal and checkpoint are no-ops, attributes live
in memory. A store is a handle: several may read one folder (a listener setting an attribute, a
reader loading the result); ``lock()`` is what claims it for a run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from gepa_graph import fingerprint
from gepa_graph.errors import CorruptRunDir, ResumeMismatch, RunDirError
from gepa_graph.journal import Journal
from gepa_graph.records import HeldOutScores
from gepa_graph.redact import clip, redact
from gepa_graph.result import Result
from gepa_graph.state import FORMAT, OptimizerState

try:
    import fcntl
except ImportError:  # Windows: no folder lock
    fcntl = None  # type: ignore[assignment]

STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = ".lock"
FINGERPRINT_FILE = "run.json"
ATTRIBUTES_FILE = "attributes.json"
# Attribute files of older run folders, read (never written) as attributes: file -> key prefix.
LEGACY_ATTRIBUTE_FILES = {"mlflow_run.json": "mlflow_"}
# A rejected proposal's text is kept for reading, not for resuming: bounded, so a run of huge
# unusable replies cannot grow the checkpoint without limit.
MAX_REJECTED_CHARS = 4000


class RunStore:
    """The run folder ``directory`` (None: a run kept in memory only); see the module docstring."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory: Path | None = Path(directory) if directory is not None else None
        self.journal = Journal(self.directory / JOURNAL_FILE if self.directory else None)
        self._lock: IO[str] | None = None
        self._memory: dict[str, Any] = {}  # attributes of a run without a folder

    def __repr__(self) -> str:
        return f"RunStore({str(self.directory) if self.directory else None!r})"

    # ------------------------------------------------------------------ claiming the folder

    def lock(self) -> RunStore:
        """Create the folder if needed, prove it writable, and lock it for this run: a second
        optimization (another process, or this one) on the same folder refuses in one line
        (RunDirError) instead of paying for the same rollouts twice. ``close()`` releases it."""
        if self.directory is not None and self._lock is None:
            self._lock = _lock(self.directory)
        return self

    def close(self) -> None:
        """Flush and close the journal, release the lock. Safe to call more than once."""
        self.journal.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunStore:
        return self.lock()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, resume: bool, current: Mapping[str, Any]) -> None:
        """Refuse a new run over an old one, or a resume that would not continue this run
        (``RunExists``, ``ResumeMismatch``), and record ``current`` (the inputs' fingerprint)
        for later resumes."""
        if self.directory is None:
            return
        journal = self.directory / JOURNAL_FILE
        fingerprint.check_folder(
            self.directory,
            resume,
            has_state=(self.directory / STATE_FILE).exists(),
            has_journal=journal.exists(),
            journal_empty=journal.exists() and journal.stat().st_size == 0,
            state_file=STATE_FILE,
            journal_file=JOURNAL_FILE,
        )
        path = self.directory / FINGERPRINT_FILE
        if resume and path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ResumeMismatch(f"{path} is unreadable ({type(exc).__name__})") from None
            fingerprint.compare(self.directory, saved, current)
            return
        _write_atomic(path, json.dumps(dict(current), indent=1))  # new run, or an older one

    # ------------------------------------------------------------------ journal and checkpoint

    def load_journal(
        self, check_rollout: Any = None, check_reflection: Any = None, examples: Any = None
    ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, dict[str, Any]]]:
        """What a killed run already paid for: (rollouts by (candidate id, example uid) when
        ``examples``, the run's training and validation examples, are given, else by example
        key; reflection replies by key); see ``Journal.load``."""
        return self.journal.load(check_rollout, check_reflection, examples)

    def save_state(self, state: OptimizerState) -> None:
        """Checkpoint ``state``: the journal is synced first (a checkpoint never counts a
        rollout the journal lacks), then ``state.json`` is replaced atomically."""
        if self.journal.failed is not None:
            return  # the journal lacks what this state counts: the last checkpoint stays
        self.journal.sync()
        if self.directory is not None:
            try:
                _write_atomic(
                    self.directory / STATE_FILE,
                    json.dumps(_stored(state), indent=1, ensure_ascii=False),
                )
            except OSError as exc:  # a full disk: the journal holds the run, resume finds it
                raise RunDirError(
                    f"cannot write the checkpoint {self.directory / STATE_FILE} "
                    f"({exc.strerror or exc}): the run stopped; once there is room, resume it "
                    "(resume=True): nothing journaled is paid again"
                ) from None

    def load_state(self) -> OptimizerState | None:
        """The checkpoint, None if there is none; CorruptRunDir (naming the file) if it cannot
        be read."""
        if self.directory is None:
            return None
        path = self.directory / STATE_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            state = OptimizerState.model_validate(data)
            if state.best_id is not None and state.best_id not in {c.id for c in state.candidates}:
                raise ValueError(f"best_id {state.best_id!r} is not among its candidates")
        except (OSError, ValueError) as exc:  # bad JSON, bad UTF-8, failed validation
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CorruptRunDir(f"checkpoint {path} is corrupt: {first}") from None
        if state.format != FORMAT:
            raise CorruptRunDir(f"checkpoint {path} has format {state.format}, expected {FORMAT}")
        return state

    def save_testset(self, scores: HeldOutScores) -> None:
        """Add the held-out ``scores`` to the checkpoint of the run that just finished, so the
        Result read back has them (a run without a folder keeps them in its Result only)."""
        state = self.load_state()
        if state is not None:
            self.save_state(state.model_copy(update={"testset": scores}))

    def load_result(self) -> Result:
        """The Result saved in the folder (finished or not); FileNotFoundError without a
        checkpoint."""
        state = self.load_state()
        if state is None:
            raise FileNotFoundError(f"no {STATE_FILE} in {self.directory}")
        return state.to_result(self.directory)

    # ------------------------------------------------------------------ attributes

    def attributes(self) -> dict[str, Any]:
        """Every attribute of the run (those of an older folder's legacy files included)."""
        if self.directory is None:
            return dict(self._memory)
        values: dict[str, Any] = {}
        for name, prefix in LEGACY_ATTRIBUTE_FILES.items():
            legacy = _read_json(self.directory / name)
            values.update({prefix + key: value for key, value in legacy.items()})
        values.update(_read_json(self.directory / ATTRIBUTES_FILE))
        return values

    def attribute(self, name: str, default: Any = None) -> Any:
        """The attribute ``name``, or ``default``."""
        return self.attributes().get(name, default)

    def set_attribute(self, name: str, value: Any) -> None:
        """Set one attribute (a JSON value); see ``set_attributes``."""
        self.set_attributes({name: value})

    def set_attributes(self, values: Mapping[str, Any]) -> None:
        """Set several attributes in one atomic write (JSON values)."""
        if self.directory is None:
            self._memory.update(values)
            return
        path = self.directory / ATTRIBUTES_FILE
        current = _read_json(path)
        current.update(values)
        _write_atomic(path, json.dumps(current, indent=2, ensure_ascii=False))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptRunDir(f"{path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CorruptRunDir(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def _write_atomic(target: Path, text: str) -> None:
    """Write a temporary file beside ``target``, fsync it, rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _stored(state: OptimizerState) -> dict[str, Any]:
    """The checkpoint's JSON: secrets masked, rejected proposals' text bounded."""
    data = state.model_dump(mode="json")
    for rejection in data["rejected"]:
        rejection["detail"] = clip(rejection["detail"], MAX_REJECTED_CHARS)
        if rejection["proposed_text"] is not None:
            rejection["proposed_text"] = clip(rejection["proposed_text"], MAX_REJECTED_CHARS)
    masked: dict[str, Any] = redact(data)
    return masked


def _lock(run_dir: Path) -> IO[str]:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")
    except OSError as exc:
        raise RunDirError(
            f"run_dir {run_dir} cannot be used: {exc.strerror or type(exc).__name__}"
        ) from None
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirError(
                f"run_dir {run_dir} is in use by another optimization (pid {holder}); wait for "
                "it to finish or choose another run_dir"
            ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


# Function forms, for callers of the names gepa_graph.state had.


def save_state(state: OptimizerState, run_dir: Path) -> None:
    """Checkpoint ``state`` into ``run_dir`` (``RunStore(run_dir).save_state``)."""
    RunStore(run_dir).save_state(state)


def load_state(run_dir: Path) -> OptimizerState | None:
    """The checkpoint in ``run_dir`` (``RunStore(run_dir).load_state``)."""
    return RunStore(run_dir).load_state()


def load_result(run_dir: str | Path) -> Result:
    """The Result saved in a run directory, finished or not (``RunStore.load_result``); for a
    run folder or an MLflow run id, use ``gg.load_result``."""
    return RunStore(run_dir).load_result()
