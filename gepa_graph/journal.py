"""Append-only log of finished rollouts and reflection replies, for exact resume.

Each finished rollout and each reflection reply is appended as one JSON line and flushed at
once, so a process killed at any moment loses at most the calls still in flight. A resumed run
replays the optimization from the start, taking every rollout and reflection it already paid
for from here, and so reaches exactly the state the killed run had. This module is the file's
format; ``gepa_graph.store.RunStore`` owns the file (``store.journal``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gepa_graph.errors import CorruptRunDir, JournalWriteFailed, ResumeMismatch
from gepa_graph.example import Example
from gepa_graph.redact import redact_text

Check = Callable[[dict[str, Any]], Any]


class Journal:
    """The journal file of one run folder (``path``; None: a run without a folder, where every
    method is a no-op). Written through ``gepa_graph.store.RunStore.journal``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: io.FileIO | None = None
        self._size = 0  # bytes of whole records in the file
        self.failed: str | None = None  # why a write failed; nothing is appended after it
        self.turns: list[str] = []  # the engine's steps in the order they acted (turns.py)

    def load(
        self,
        check_rollout: Check | None = None,
        check_reflection: Check | None = None,
        examples: Iterable[Example] | None = None,
    ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, dict[str, Any]]]:
        """Read the journal: (rollouts by (candidate id, example uid), reflections by key);
        the order of the engine's steps is in ``turns`` afterwards.
        ``check_*`` validate each stored result (raising on a bad one). Without ``examples``
        (a reader, not a resume), rollouts are keyed by (candidate id, example key), the ids
        people know, though keys of two datasets may collide there.

        Rollouts journaled before examples had a ``uid`` name their example by key only; they
        are migrated to the uid of the one example among ``examples`` (the run's training and
        validation sets) with that key. Where two examples share it, which one a result
        belongs to is unknowable (that run may have mixed their scores): ResumeMismatch.

        A torn last line (the process died mid-write) is dropped; damage anywhere else is a
        CorruptRunDir naming the file and line, because silently skipping paid-for work would
        change the resumed result.
        """
        rollouts: dict[tuple[str, str], dict[str, Any]] = {}
        legacy: dict[tuple[str, str], dict[str, Any]] = {}  # by (candidate id, example key)
        by_key: dict[tuple[str, str], dict[str, Any]] = {}  # every rollout, the same way
        reflections: dict[str, dict[str, Any]] = {}
        self.turns = []
        if self.path is None or not self.path.exists():
            return rollouts, reflections
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        complete = raw.endswith(b"\n")
        good_bytes = 0
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines)
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:  # bad JSON or bad UTF-8
                if is_last and not complete:
                    break  # torn final write; truncated below
                raise CorruptRunDir(
                    f"{self.path}: line {number} is not valid JSON ({exc})"
                ) from None
            try:
                _read(
                    record,
                    rollouts,
                    legacy,
                    by_key,
                    reflections,
                    self.turns,
                    check_rollout,
                    check_reflection,
                )
            except Exception as exc:
                detail = " ".join(str(exc).split())[:300]
                raise CorruptRunDir(
                    f"{self.path}: line {number} is not a valid record ({type(exc).__name__}: "
                    f"{detail})"
                ) from None
            good_bytes += len(line) + 1
        if good_bytes < len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)
        if examples is None:
            return by_key, reflections
        return _migrated(self.path, rollouts, legacy, examples), reflections

    def _append(self, record: dict[str, Any]) -> None:
        """Write one record whole, unbuffered; on a failed write, cut the partial record off
        and raise JournalWriteFailed (then and at every later append: the run must stop)."""
        if self.path is None:
            return
        if self.failed is not None:
            raise JournalWriteFailed(self.failed)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        data = (redact_text(line) + "\n").encode("utf-8")  # the last check before the disk
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab", buffering=0)
                self._size = self._file.seek(0, os.SEEK_END)
            view = memoryview(data)
            while view:
                view = view[self._file.write(view) :]
        except OSError as exc:
            if self._file is not None:
                try:
                    os.ftruncate(self._file.fileno(), self._size)  # no torn record stays
                except OSError:
                    pass  # a torn last line is dropped when the journal is read
            self.failed = (
                f"cannot write the journal {self.path} ({exc.strerror or exc}): the run "
                "stopped; every rollout journaled so far is kept, so once there is room, "
                "resume it (resume=True) and none of them is paid again"
            )
            raise JournalWriteFailed(self.failed) from None
        self._size += len(data)

    def record_rollout(self, candidate_id: str, example: Example, result: dict[str, Any]) -> None:
        """Append one finished rollout's result (a JSON object), flushed at once; it is found
        again by the example's uid (``example_key`` is kept for people reading the file)."""
        self._append(
            {
                "type": "rollout",
                "candidate_id": candidate_id,
                "example": example.uid,
                "example_key": example.key,
                "result": result,
            }
        )

    def record_reflection(self, key: str, response: dict[str, Any]) -> None:
        """Append one reflection reply under its replay key, flushed at once."""
        self._append({"type": "reflection", "key": key, "response": response})

    def record_turn(self, label: str) -> None:
        """Append the label of a step that just took its turn (see turns.py), so a resumed run
        replays the steps in this order."""
        self._append({"type": "turn", "label": label})

    def sync(self) -> None:
        """fsync what was appended: called before each checkpoint."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close the file (a later append opens it again)."""
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None


def _read(
    record: Any,
    rollouts: dict[tuple[str, str], dict[str, Any]],
    legacy: dict[tuple[str, str], dict[str, Any]],
    by_key: dict[tuple[str, str], dict[str, Any]],
    reflections: dict[str, dict[str, Any]],
    turns: list[str],
    check_rollout: Check | None,
    check_reflection: Check | None,
) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    kind = record.get("type")
    if kind == "rollout":
        # No "example": a record written before uids, keyed by the example's key (see load).
        candidate_id, example_key = record["candidate_id"], record["example_key"]
        uid = record.get("example", example_key)
        strings = isinstance(candidate_id, str) and isinstance(example_key, str)
        if not (strings and isinstance(uid, str)) or not isinstance(record["result"], dict):
            raise ValueError("rollout ids must be strings and its result an object")
        if check_rollout is not None:
            check_rollout(record["result"])
        found = rollouts if "example" in record else legacy
        found[(candidate_id, uid)] = by_key[(candidate_id, example_key)] = record["result"]
    elif kind == "reflection":
        if not isinstance(record["key"], str) or not isinstance(record["response"], dict):
            raise ValueError("reflection key must be a string and its response an object")
        if check_reflection is not None:
            check_reflection(record["response"])
        reflections[record["key"]] = record["response"]
    elif kind == "turn":
        if not isinstance(record["label"], str):
            raise ValueError("turn label must be a string")
        turns.append(record["label"])
    else:
        raise ValueError(f"unknown record type {kind!r}")


def _migrated(
    path: Path,
    rollouts: dict[tuple[str, str], dict[str, Any]],
    legacy: dict[tuple[str, str], dict[str, Any]],
    examples: Iterable[Example],
) -> dict[tuple[str, str], dict[str, Any]]:
    """``rollouts`` and the ``legacy`` ones keyed by their example's uid (see Journal.load)."""
    if not legacy:
        return rollouts
    uids: dict[str, set[str]] = {}
    for example in examples:
        uids.setdefault(example.key, set()).add(example.uid)
    for (candidate_id, key), result in legacy.items():
        found = uids.get(key, set())
        if len(found) > 1:
            raise ResumeMismatch(
                f"{path} was written before results were kept apart per dataset, and two of "
                f"the run's examples share the id {key!r} (its scores may be mixed up); start "
                "a new run_dir"
            )
        if found:  # else an example this run does not have: never looked up
            rollouts.setdefault((candidate_id, next(iter(found))), result)
    return rollouts
