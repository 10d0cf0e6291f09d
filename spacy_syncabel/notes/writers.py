"""Outputs of ``link``: one JSONL file, brat standoff or JSONL shards (resumable, crash-safe),
or a spaCy DocBin (:class:`DocBinOutput`: written once at the end, not resumable).

Each record is one complete line written with a single ``write`` and flushed at once, and the
file is fsync'ed every ``fsync_every`` seconds and on close. On open, the ids of the complete
lines already there are read back (those notes are skipped) and a partial last line, left by
a killed process, is cut off (W150). Notes that failed are recorded in an errors JSONL beside
the output (``{"id", "error", "where"}``) and count as done too. An exclusive ``flock`` keeps a
second process off the same output (E160).
"""
from __future__ import annotations

import errno
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple, Union

import srsly
from spacy.tokens import Doc, DocBin

from ..errors import Errors, Warnings
from ..textio import json_loads
from .inputs import Note, NoteError
from .records import record_to_brat, safe_stem

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore

PathLike = Union[str, Path]
# write errors of the whole output (not of one note): they stop the run
SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


class NoteOutputError(ValueError):
    """The output of one note cannot be written (E305, E306): an error of that note, which
    the runner records in the errors file before going on."""


def errors_path_for(output: PathLike) -> Path:
    """``out.jsonl`` -> ``out.errors.jsonl`` (a folder output: ``folder/errors.jsonl``)."""
    output = Path(output)
    if output.suffix.lower() == ".jsonl":
        return output.with_name(output.stem + ".errors.jsonl")
    return output.with_name(output.name + ".errors.jsonl")


def _dumps(obj: Dict[str, Any]) -> bytes:
    """One JSON line, UTF-8; text that UTF-8 cannot hold (lone surrogates, e.g. from an
    undecodable file name) is written as JSON escapes, which read back as the same string.
    ``allow_nan=False``: a NaN or infinity would make the line invalid JSON (ValueError)."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"


def _record_id(line: bytes, field: Optional[str]) -> str:
    """The id of a JSON line that is a record (an object with ``id``, and ``field`` when
    given); ValueError otherwise."""
    obj = json_loads(line)
    if not isinstance(obj, dict) or "id" not in obj or (field is not None and field not in obj):
        keys = f"'id' and '{field}'" if field else "'id'"
        raise ValueError(f"not a JSON object with {keys}")
    return str(obj["id"])


def scan_jsonl(path: Path, field: Optional[str] = None) -> Tuple[List[str], int, int]:
    """(ids of the complete lines, byte length of those lines, bytes of a partial tail).
    A complete line that is not a JSON object with an ``id`` (and ``field``) raises E159: the
    file was not written by ``link`` and is left alone. A last line without its newline is a
    partial tail, unless it is a whole record (then it counts, and the newline is added on
    open) or whole JSON that is not a record (E159)."""
    ids: List[str] = []
    good = 0
    if not path.exists():
        return ids, 0, 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                try:
                    obj = json_loads(line)
                except ValueError:
                    break  # torn by a killed process
                try:
                    ids.append(_record_id(line, field))
                except ValueError as err:
                    raise ValueError(Errors.E159.format(path=path, line=lineno,
                                                        problem=f"{err}, got {type(obj).__name__}"
                                                        )) from None
                good += len(line)
                break
            try:
                ids.append(_record_id(line, field))
            except (ValueError, TypeError) as err:
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

    def __init__(self, path: Path, fsync_every: float, lock: bool,
                 field: Optional[str] = None) -> None:
        self.path = path
        self.fsync_every = fsync_every
        self.lock = lock
        self.field = field
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
        try:
            self.ids, good, torn = scan_jsonl(self.path, self.field)
        except ValueError:
            self._f.close()
            self._f = None
            raise
        if torn:
            warnings.warn(Warnings.W150.format(path=self.path, n_bytes=torn), stacklevel=3)
            self._f.truncate(good)
            self._sync()
        self._f.seek(0, os.SEEK_END)
        if good and self._f.tell() == good:  # a whole last record without its newline
            self._f.seek(good - 1)
            if self._f.read(1) != b"\n":
                self._f.write(b"\n")
                self._sync()
        return self

    def write(self, obj: Dict[str, Any]) -> None:
        data = _dumps(obj)
        end = self._f.tell()
        try:
            self._f.write(data)
            self._f.flush()
        except BaseException:
            try:  # no partial line left behind for the next write to extend
                self._f.truncate(end)
                self._f.seek(end)
            except OSError:
                pass
            raise
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
        self.failed_lines: Set[str] = set()  # made-up ids (line:N) of lines that gave none
        self.n_records = 0
        self.n_errors = 0
        self._errors: Optional[_AppendLog] = None

    def _default_errors_path(self) -> Path:
        return errors_path_for(self.path)

    def _open_errors(self) -> None:
        self._errors = _AppendLog(self.errors_path, self.fsync_every, lock=False,
                                  field="error").open()
        for record in iter_records(self.errors_path):
            if record.get("id_known", True):
                self.done.add(str(record["id"]))
            else:
                self.failed_lines.add(str(record["id"]))
        self.n_errors = len(self._errors.ids)

    def open(self) -> "LinkOutput":
        raise NotImplementedError

    def is_done(self, note_id: str) -> bool:
        return note_id in self.done

    def is_recorded(self, item: Union[Note, NoteError]) -> bool:
        """Whether ``item`` is done: a note linked or failed, or an unreadable line (its
        made-up id never stands for a note of that id) already in the errors file."""
        if isinstance(item, NoteError) and not item.id_known:
            return item.id in self.failed_lines
        return self.is_done(item.id)

    def write(self, note: Note, record: Dict[str, Any], doc: Optional[Doc] = None) -> None:
        """Write the note's record (``doc``: the linked doc, for outputs that keep docs)."""
        raise NotImplementedError

    def write_error(self, error: NoteError) -> None:
        record = {"id": error.id, "error": error.error, "where": error.where}
        if error.id_known:
            self.done.add(error.id)
        else:
            record["id_known"] = False
            self.failed_lines.add(error.id)
        self._errors.write(record)
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
        self._log = _AppendLog(self.path, self.fsync_every, lock=True, field="entities").open()
        self.done.update(self._log.ids)
        self.n_records = len(self._log.ids)
        self._open_errors()
        return self

    def write(self, note: Note, record: Dict[str, Any], doc: Optional[Doc] = None) -> None:
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
    atomically), and ``records.jsonl``, which marks a note done once both files are there.

    Every note's files are claimed before they are written: a note whose files another note
    of the folder already holds (ids that sanitize to one stem, an id that is another's
    folder) is an error of that note (E305), never an overwrite. A folder that holds files
    but no ``records.jsonl`` was not written by ``link`` and is refused (E307)."""

    RECORDS = "records.jsonl"

    def __init__(self, path: PathLike, errors_path: Optional[PathLike] = None,
                 fsync_every: float = 2.0, db: str = "KB") -> None:
        self.folder = Path(path)
        self.db = db
        self._files: Dict[str, str] = {}  # relative file path -> the note id holding it
        self._dirs: Dict[str, str] = {}  # relative folder path -> a note id inside it
        super().__init__(self.folder / self.RECORDS, errors_path, fsync_every)

    def _default_errors_path(self) -> Path:
        return self.folder / "errors.jsonl"

    def open(self) -> "BratOutput":
        if (self.folder.is_dir() and not (self.folder / self.RECORDS).exists()
                and any(self.folder.iterdir())):
            raise ValueError(Errors.E307.format(path=self.folder))
        super().open()
        own = [self.RECORDS] + ([self.errors_path.name]
                                if self.errors_path.parent.resolve() == self.folder.resolve()
                                else [])
        for name in own:
            self._files[name] = f"the output's own {name}"
        for note_id in self._log.ids:
            self._claim(note_id)
        return self

    def _paths(self, note_id: str) -> Tuple[str, List[str], List[str]]:
        stem = safe_stem(note_id)
        parts = stem.split("/")
        return stem, [stem + ".txt", stem + ".ann"], ["/".join(parts[:i])
                                                      for i in range(1, len(parts))]

    def _conflict(self, note_id: str) -> Optional[Tuple[str, str]]:
        """(path, holder) of the first file or folder of ``note_id`` another note holds."""
        _, files, dirs = self._paths(note_id)
        for path in files:
            holder = self._files.get(path) or self._dirs.get(path)
            if holder is not None and holder != note_id:
                return path, holder
        for path in dirs:
            holder = self._files.get(path)
            if holder is not None:
                return path, holder
        return None

    def _claim(self, note_id: str) -> None:
        _, files, dirs = self._paths(note_id)
        for path in files:
            self._files.setdefault(path, note_id)
        for path in dirs:
            self._dirs.setdefault(path, note_id)

    def write(self, note: Note, record: Dict[str, Any], doc: Optional[Doc] = None) -> None:
        conflict = self._conflict(note.id)
        if conflict is not None:
            path, holder = conflict
            other = holder if holder.startswith("the output's") else f"note '{holder}'"
            raise NoteOutputError(Errors.E305.format(id=note.id, path=path, other=other))
        stem = self.folder / safe_stem(note.id)
        written: List[Path] = []
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            for suffix, content in ((".txt", note.text),
                                    (".ann", record_to_brat(record, note.text, self.db))):
                target = stem.with_name(stem.name + suffix)
                tmp = target.with_name(target.name + ".tmp")
                written.append(tmp)
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(content)
                os.replace(tmp, target)
                written[-1] = target
        except (OSError, ValueError) as err:  # e.g. a name too long, text UTF-8 cannot hold
            self._remove(written)
            if isinstance(err, OSError) and err.errno in SYSTEM_ERRNOS:
                raise
            raise NoteOutputError(Errors.E306.format(err=f"{type(err).__name__}: {err}")) \
                from err
        except BaseException:
            self._remove(written)
            raise
        try:
            super().write(note, record)
        except BaseException:
            self._remove(written)
            raise
        self._claim(note.id)

    @staticmethod
    def _remove(paths: List[Path]) -> None:
        """Delete a failed note's files: no .txt without its .ann, no stray temporary file."""
        for path in paths:
            try:
                path.unlink()
            except OSError:
                pass


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
            log = _AppendLog(part, self.fsync_every, lock=False,
                             field="entities").open()  # cuts a torn tail
            log.close()
            self.done.update(log.ids)
            self.n_records += len(log.ids)
            numbers.append(int(self.PART.match(part.name).group(1)))
        self._next = max(numbers) + 1
        self._log: Optional[_AppendLog] = None
        self._open_errors()
        return self

    def write(self, note: Note, record: Dict[str, Any], doc: Optional[Doc] = None) -> None:
        if self._log is None:  # no empty shard for a run that writes nothing
            self._log = _AppendLog(self.folder / f"part-{self._next:05d}.jsonl",
                                   self.fsync_every, lock=False, field="entities").open()
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


class DocBinOutput(LinkOutput):
    """The linked docs in one spaCy DocBin file ``path`` (``.spacy``): entities with their
    ``kb_id``, and ``doc.user_data`` (what spaCy keeps of extension attributes set on the
    doc: the n-best ``ent._.syncabel``, ``ent._.syncabel_nil_reason``, other components'
    values) plus the note id as ``doc._.syncabel_note_id``. The docs are kept in memory
    (compact arrays) and the file is written on close, at once (a run stopped early keeps
    the docs it linked; a run that linked none writes no file). Not resumable: an existing file, or errors file, is refused (E452)."""

    NOTE_ID = "syncabel_note_id"

    def __init__(self, path: PathLike, errors_path: Optional[PathLike] = None,
                 fsync_every: float = 2.0) -> None:
        super().__init__(path, errors_path, fsync_every)
        self._bin = DocBin(store_user_data=True)
        self._records: List[Dict[str, Any]] = []

    def open(self) -> "DocBinOutput":
        for path in (self.path, self.errors_path):
            if path.exists():
                raise ValueError(Errors.E452.format(path=path, errors=self.errors_path))
        if not Doc.has_extension(self.NOTE_ID):
            Doc.set_extension(self.NOTE_ID, default=None)
        self._open_errors()
        return self

    def write(self, note: Note, record: Dict[str, Any], doc: Optional[Doc] = None) -> None:
        if doc is None:
            raise ValueError("DocBinOutput.write needs the linked doc")
        doc._.set(self.NOTE_ID, note.id)
        try:  # first: DocBin.add fails on user_data after adding the tokens (a broken bin)
            srsly.msgpack_dumps(doc.user_data)
        except (TypeError, ValueError, OverflowError) as err:
            raise NoteOutputError(Errors.E453.format(err=f"{type(err).__name__}: {err}")) \
                from err
        self._bin.add(doc)
        self._records.append(record)
        self.done.add(record["id"])
        self.n_records += 1

    def record_files(self) -> List[Path]:
        return []

    def records(self) -> Iterator[Dict[str, Any]]:
        yield from self._records

    def close(self) -> None:
        if self._bin is not None and self.n_records:  # no file for a run that linked none
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            self._bin.to_disk(tmp)
            os.replace(tmp, self.path)
            self._bin = None
        super().close()


OUTPUT_FORMATS = ("jsonl", "brat", "spacy")


def output_format_for(path: PathLike, fmt: str) -> str:
    """``auto``: ``spacy`` for a ``.spacy`` output, else ``jsonl``."""
    if fmt == "auto":
        return "spacy" if Path(path).suffix.lower() == ".spacy" else "jsonl"
    return fmt


def default_errors_path(path: PathLike, fmt: str = "jsonl", *, sharded: bool = False) -> Path:
    """Where the errors of an output go when ``--errors`` is not given."""
    path = Path(path)
    return path / "errors.jsonl" if fmt == "brat" or sharded else errors_path_for(path)


def open_output(path: PathLike, fmt: str = "jsonl", *, errors_path: Optional[PathLike] = None,
                sharded: bool = False, db: str = "KB", fsync_every: float = 2.0) -> LinkOutput:
    """The writer for ``--format`` (``sharded``: JSONL shards, for Ray), opened."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(Errors.E161.format(fmt=fmt))
    if fmt == "brat":
        out: LinkOutput = BratOutput(path, errors_path, fsync_every, db=db)
    elif fmt == "spacy":
        out = DocBinOutput(path, errors_path, fsync_every)
    elif sharded:
        out = ShardedOutput(path, errors_path, fsync_every)
    else:
        out = JsonlOutput(path, errors_path, fsync_every)
    return out.open()
