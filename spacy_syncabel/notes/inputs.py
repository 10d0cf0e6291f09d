"""Raw notes to link: a folder of ``.txt`` files, a JSONL file or a CSV file.

Every input is untrusted. Bytes are decoded with an explicit encoding; a note that cannot be
decoded or parsed becomes a :class:`NoteError` (reported and skipped by the runner), never an
exception that stops the run. Only problems that make the whole input unusable (a missing
file, a CSV header without the id or text column) raise a coded ``ValueError``.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Set, Union

from ..errors import Errors
from ..textio import json_loads

INPUT_FORMATS = ("auto", "txt", "jsonl", "csv")


@dataclass(frozen=True)
class Note:
    """One note to link."""

    id: str
    text: str


@dataclass(frozen=True)
class NoteError:
    """A note (or input line) that could not be read; ``where`` names the file and line.
    ``id_known`` is False when the id is made up (``line:N``: the line gave none): it then
    never stands for a note of that id."""

    id: str
    error: str
    where: str
    id_known: bool = True


NoteOrError = Union[Note, NoteError]


def input_format(path: Path, fmt: str = "auto") -> str:
    """The input's format: ``txt`` (a folder of .txt files, or one .txt file), ``jsonl`` or ``csv``."""
    path = Path(path)
    if fmt not in INPUT_FORMATS:
        raise ValueError(Errors.E151.format(path=path, formats=list(INPUT_FORMATS)))
    if not path.exists():
        raise ValueError(Errors.E150.format(path=path))
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "txt"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".txt":
        return "txt"
    raise ValueError(Errors.E151.format(path=path, formats=list(INPUT_FORMATS)))


def decode_note(data: bytes, encoding: str) -> str:
    """Decode exactly (no newline translation), dropping one leading BOM."""
    text = data.decode(encoding)
    return text[1:] if text.startswith("\ufeff") else text


def decode_problem(err: UnicodeDecodeError, encoding: str) -> str:
    return Errors.E152.format(encoding=encoding, pos=err.start, err=err.reason)


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(Errors.E157.format(encoding=encoding)) from None


def txt_files(path: Path) -> List[Path]:
    """The notes of a folder: its ``.txt`` files (any case of the suffix), sorted."""
    return sorted(p for p in path.rglob("*") if p.suffix.lower() == ".txt" and p.is_file())


def _txt_notes(path: Path, encoding: str) -> Iterator[NoteOrError]:
    files = [path] if path.is_file() else txt_files(path)
    root = path.parent if path.is_file() else path
    for file in files:
        relative = file.relative_to(root)
        note_id = relative.with_suffix("").as_posix()
        if _has_surrogates(note_id) is not None:  # a file name that is not valid UTF-8
            escaped = os.fsencode(note_id).decode("utf-8", "backslashreplace")
            where = os.fsencode(file).decode("utf-8", "backslashreplace")
            yield NoteError(escaped, Errors.E309.format(name=escaped), where, False)
            continue
        try:
            yield Note(note_id, decode_note(file.read_bytes(), encoding))
        except UnicodeDecodeError as err:
            yield NoteError(note_id, decode_problem(err, encoding), str(file))
        except OSError as err:
            yield NoteError(note_id, Errors.E153.format(err=err), str(file))


def _jsonl_notes(path: Path, encoding: str, id_column: str, text_column: str
                 ) -> Iterator[NoteOrError]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path} line {lineno}"
            fallback_id = f"line:{lineno}"
            try:
                line = decode_note(raw, encoding) if lineno == 1 else raw.decode(encoding)
            except UnicodeDecodeError as err:
                yield NoteError(fallback_id, decode_problem(err, encoding), where, False)
                continue
            if not line.strip():
                continue
            try:
                obj = json_loads(line)
            except ValueError as err:
                yield NoteError(fallback_id, Errors.E154.format(err=err), where, False)
                continue
            if not isinstance(obj, dict):
                yield NoteError(fallback_id, Errors.E155.format(
                    problem="the line is not a JSON object", id=id_column, text=text_column),
                    where, False)
                continue
            note_id, text = obj.get(id_column), obj.get(text_column)
            if not isinstance(note_id, (str, int)) or isinstance(note_id, bool) or note_id == "":
                yield NoteError(fallback_id, Errors.E155.format(
                    problem=f"no string or integer '{id_column}'", id=id_column,
                    text=text_column), where, False)
                continue
            if not isinstance(text, str):
                yield NoteError(str(note_id), Errors.E155.format(
                    problem=f"no string '{text_column}'", id=id_column, text=text_column), where)
                continue
            yield Note(str(note_id), text)


def _has_surrogates(text: str) -> Optional[int]:
    """Position of the first byte that could not be decoded (``surrogateescape``), or None."""
    for i, ch in enumerate(text):
        if "\udc80" <= ch <= "\udcff":
            return i
    return None


def _csv_notes(path: Path, encoding: str, id_column: str, text_column: str,
               delimiter: Optional[str]) -> Iterator[NoteOrError]:
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # notes can be long
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
        # strict: a quote that does not close a field is an error, never a silent merge
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ValueError(Errors.E156.format(path=path, line=1, problem=err)) from None
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        missing = [c for c in (id_column, text_column) if c not in header]
        if missing:
            raise ValueError(Errors.E156.format(
                path=path, line=1, problem=f"no column {missing} in the header {header}; name "
                "the columns with --id-column and --text-column"))
        twice = sorted({c for c in (id_column, text_column) if header.count(c) > 1})
        if twice:
            raise ValueError(Errors.E156.format(
                path=path, line=1, problem=f"the header names column(s) {twice} more than "
                "once, so which one holds the notes is not clear; rename the other"))
        i_id, i_text = header.index(id_column), header.index(text_column)
        lineno = reader.line_num
        while True:
            start_line = lineno + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:  # e.g. a NUL byte or a stray quote
                if "end of data" in str(err) and not stream.read(1):
                    # a quote opened and never closed: the rest of the file is one field
                    raise ValueError(Errors.E304.format(path=path, line=start_line)) from None
                lineno = reader.line_num
                yield NoteError(f"line:{start_line}", Errors.E156.format(
                    path=path, line=start_line, problem=err), f"{path} line {start_line}",
                    False)
                continue
            lineno = reader.line_num
            where = f"{path} line {start_line}"
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                yield NoteError(f"line:{start_line}", Errors.E156.format(
                    path=path, line=start_line,
                    problem=f"{len(row)} field(s), the header has {len(header)}"), where, False)
                continue
            note_id, text = row[i_id], row[i_text]
            bad = _has_surrogates(note_id)
            if bad is not None or not note_id:
                yield NoteError(f"line:{start_line}", Errors.E156.format(
                    path=path, line=start_line, problem=f"the '{id_column}' field is empty or "
                    f"not valid {encoding}"), where, False)
                continue
            bad = _has_surrogates(text)
            if bad is not None:
                yield NoteError(note_id, Errors.E152.format(encoding=encoding, pos=bad,
                                                            err="invalid byte"), where)
                continue
            yield Note(note_id, text)


def read_notes(path: Union[str, Path], fmt: str = "auto", *, encoding: str = "utf-8",
               id_column: str = "id", text_column: str = "text",
               delimiter: Optional[str] = None) -> Iterator[NoteOrError]:
    """Stream the notes of ``path`` in input order; duplicate ids become :class:`NoteError`."""
    path = Path(path)
    fmt = input_format(path, fmt)
    _check_encoding(encoding)
    if fmt == "txt":
        stream = _txt_notes(path, encoding)
    elif fmt == "jsonl":
        stream = _jsonl_notes(path, encoding, id_column, text_column)
    else:
        stream = _csv_notes(path, encoding, id_column, text_column, delimiter)
    return _unique(stream)


def _unique(stream: Iterator[NoteOrError]) -> Iterator[NoteOrError]:
    seen: Set[str] = set()
    for item in stream:
        if isinstance(item, Note):
            if item.id in seen:
                yield NoteError(item.id, Errors.E158.format(id=item.id), "")
                continue
            seen.add(item.id)
        yield item


def count_notes(path: Union[str, Path], fmt: str = "auto") -> Optional[int]:
    """A quick upper bound of the note count for a progress bar (None for CSV: rows may
    span lines)."""
    path = Path(path)
    fmt = input_format(path, fmt)
    if fmt == "txt":
        return 1 if path.is_file() else len(txt_files(path))
    if fmt == "jsonl":
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    return None
