"""Resumable, crash-safe outputs of ``link``: one JSONL file, brat standoff or JSONL shards.

Each record is one complete line written with a single ``write`` and flushed at once, and the
file is fsync'ed every ``fsync_every`` seconds and on close. On open, the ids of the complete
lines already there are read back (those notes are skipped) and a partial last line, left by
a killed process, is cut off (W150). Notes that failed are recorded in an errors JSONL beside
the output (``{"id", "error", "where"}``) and count as done too. An exclusive ``flock`` keeps a
second process off the same output (E160).
"""
from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple, Union

from ..errors import Errors, Warnings
from ..textio import json_loads
from .inputs import Note, NoteError
from .records import record_to_brat, safe_stem

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore

PathLike = Union[str, Path]


def errors_path_for(output: PathLike) -> Path:
    """``out.jsonl`` -> ``out.errors.jsonl`` (a folder output: ``folder/errors.jsonl``)."""
    output = Path(output)
    if output.suffix.lower() == ".jsonl":
        return output.with_name(output.stem + ".errors.jsonl")
    return output.with_name(output.name + ".errors.jsonl")


def _dumps(obj: Dict[str, Any]) -> bytes:
    # allow_nan=False: a NaN/inf would make the line invalid JSON (ValueError instead)
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf8") + b"\n"


def scan_jsonl(path: Path) -> Tuple[List[str], int, int]:
    """(ids of the complete lines, byte length of those lines, bytes of a partial tail).
    A complete line that is not a JSON object with an ``id`` raises E159."""
    ids: List[str] = []
    good = 0
    if not path.exists():
        return ids, 0, 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break
            try:
                obj = json_loads(line)
                ids.append(str(obj["id"]))
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(Errors.E159.format(path=path, line=lineno,
                                                    problem=f"not a record ({err})")) from None
            good += len(line)
    return ids, good, path.stat().st_size - good


def iter_records(path: PathLike) -> Iterator[Dict[str, Any]]:
    """The complete records of a JSONL output (a partial last line is ignored)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            yield json_loads(line)


class _AppendLog:
    """One append-only JSONL file: resumed on open (partial tail cut), flushed per write,
    fsync'ed periodically."""

    def __init__(self, path: Path, fsync_every: float, lock: bool) -> None:
        self.path = path
        self.fsync_every = fsync_every
        self.lock = lock
        self.ids: List[str] = []
        self._f = None
        self._last_sync = time.monotonic()

    def open(self) -> "_AppendLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+b")
        if self.lock and fcntl is not None:
            try:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._f.close()
                self._f = None
                raise RuntimeError(Errors.E160.format(path=self.path)) from None
        self.ids, good, torn = scan_jsonl(self.path)
        if torn:
            warnings.warn(Warnings.W150.format(path=self.path, n_bytes=torn), stacklevel=3)
            self._f.truncate(good)
            self._sync()
        self._f.seek(0, os.SEEK_END)
        return self

    def write(self, obj: Dict[str, Any]) -> None:
        self._f.write(_dumps(obj))
        self._f.flush()
        if time.monotonic() - self._last_sync >= self.fsync_every:
            self._sync()

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._f is not None:
            self._sync()
            self._f.close()
            self._f = None


class LinkOutput:
    """Base of the outputs: ``open()`` reads what is done, ``write``/``write_error`` append."""

    def __init__(self, path: PathLike, errors_path: Optional[PathLike] = None,
                 fsync_every: float = 2.0) -> None:
        self.path = Path(path)
        self.errors_path = Path(errors_path) if errors_path else self._default_errors_path()
        self.fsync_every = fsync_every
        self.done: Set[str] = set()
        self.n_records = 0
        self.n_errors = 0
        self._errors: Optional[_AppendLog] = None

    def _default_errors_path(self) -> Path:
        return errors_path_for(self.path)

    def _open_errors(self) -> None:
        self._errors = _AppendLog(self.errors_path, self.fsync_every, lock=False).open()
        self.done.update(self._errors.ids)
        self.n_errors = len(self._errors.ids)

    def open(self) -> "LinkOutput":
        raise NotImplementedError

    def is_done(self, note_id: str) -> bool:
        return note_id in self.done

    def write(self, note: Note, record: Dict[str, Any]) -> None:
        raise NotImplementedError

    def write_error(self, error: NoteError) -> None:
        self._errors.write({"id": error.id, "error": error.error, "where": error.where})
        self.done.add(error.id)
        self.n_errors += 1

    def record_files(self) -> List[Path]:
        """The JSONL files holding the records (for reports)."""
        raise NotImplementedError

    def records(self) -> Iterator[Dict[str, Any]]:
        for path in self.record_files():
            yield from iter_records(path)

    def close(self) -> None:
        if self._errors is not None:
            self._errors.close()

    def __enter__(self) -> "LinkOutput":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlOutput(LinkOutput):
    """One JSON line per note in ``path``; errors in ``path.errors.jsonl``."""

    def open(self) -> "JsonlOutput":
        self._log = _AppendLog(self.path, self.fsync_every, lock=True).open()
        self.done.update(self._log.ids)
        self.n_records = len(self._log.ids)
        self._open_errors()
        return self

    def write(self, note: Note, record: Dict[str, Any]) -> None:
        self._log.write(record)
        self.done.add(record["id"])
        self.n_records += 1

    def record_files(self) -> List[Path]:
        return [self.path]

    def close(self) -> None:
        if getattr(self, "_log", None) is not None:
            self._log.close()
        super().close()


class BratOutput(JsonlOutput):
    """brat standoff in folder ``path``: ``STEM.txt`` + ``STEM.ann`` per note (written
    atomically), and ``records.jsonl``, which marks a note done once both files are there."""

    def __init__(self, path: PathLike, errors_path: Optional[PathLike] = None,
                 fsync_every: float = 2.0, db: str = "KB") -> None:
        self.folder = Path(path)
        self.db = db
        super().__init__(self.folder / "records.jsonl", errors_path, fsync_every)

    def _default_errors_path(self) -> Path:
        return self.folder / "errors.jsonl"

    def write(self, note: Note, record: Dict[str, Any]) -> None:
        stem = self.folder / safe_stem(note.id)
        stem.parent.mkdir(parents=True, exist_ok=True)
        for suffix, content in ((".txt", note.text), (".ann", record_to_brat(record, note.text,
                                                                            self.db))):
            target = stem.with_name(stem.name + suffix)
            tmp = target.with_name(target.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(content)
            os.replace(tmp, target)
        super().write(note, record)


class ShardedOutput(LinkOutput):
    """JSONL shards ``part-NNNNN.jsonl`` in folder ``path`` (Ray runs): each run appends to
    a new shard; the ids of every earlier shard are done."""

    PART = re.compile(r"part-(\d{5})\.jsonl$")

    def __init__(self, path: PathLike, errors_path: Optional[PathLike] = None,
                 fsync_every: float = 2.0) -> None:
        self.folder = Path(path)
        super().__init__(self.folder, errors_path, fsync_every)

    def _default_errors_path(self) -> Path:
        return self.folder / "errors.jsonl"

    def _parts(self) -> List[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if self.PART.match(p.name))

    def open(self) -> "ShardedOutput":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = _AppendLog(self.folder / ".lock", self.fsync_every, lock=True).open()
        numbers = [-1]
        for part in self._parts():
            log = _AppendLog(part, self.fsync_every, lock=False).open()  # cuts a torn tail
            log.close()
            self.done.update(log.ids)
            self.n_records += len(log.ids)
            numbers.append(int(self.PART.match(part.name).group(1)))
        self._next = max(numbers) + 1
        self._log: Optional[_AppendLog] = None
        self._open_errors()
        return self

    def write(self, note: Note, record: Dict[str, Any]) -> None:
        if self._log is None:  # no empty shard for a run that writes nothing
            self._log = _AppendLog(self.folder / f"part-{self._next:05d}.jsonl",
                                   self.fsync_every, lock=False).open()
        self._log.write(record)
        self.done.add(record["id"])
        self.n_records += 1

    def record_files(self) -> List[Path]:
        return self._parts()

    def close(self) -> None:
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if getattr(self, "_lock", None) is not None:
            self._lock.close()
        super().close()


OUTPUT_FORMATS = ("jsonl", "brat")


def open_output(path: PathLike, fmt: str = "jsonl", *, errors_path: Optional[PathLike] = None,
                sharded: bool = False, db: str = "KB", fsync_every: float = 2.0) -> LinkOutput:
    """The writer for ``--format`` (``sharded``: JSONL shards, for Ray), opened."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(Errors.E161.format(fmt=fmt))
    if fmt == "brat":
        out: LinkOutput = BratOutput(path, errors_path, fsync_every, db=db)
    elif sharded:
        out = ShardedOutput(path, errors_path, fsync_every)
    else:
        out = JsonlOutput(path, errors_path, fsync_every)
    return out.open()
