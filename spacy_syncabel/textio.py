"""Reading user files as untrusted input: explicit UTF-8, coded errors naming file and line.

Every reader of a text file (KB, corpus, saved state, prompt files) goes through these
helpers, so that a file in another encoding or with broken JSON fails with a coded error
(E190/E191) that names the file, the line and what to do, never with a bare
``UnicodeDecodeError`` or ``JSONDecodeError``.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO, Tuple, Union

from .errors import Errors

PathLike = Union[str, Path]
ENCODING = "utf-8"
_BOM = "\ufeff"

__all__ = ["open_text", "utf8_errors", "iter_lines", "read_text", "json_loads", "read_json",
           "iter_jsonl", "as_str", "decode_error_message"]


def open_text(path: PathLike) -> TextIO:
    """Open ``path`` for reading as strict UTF-8 without newline translation (offsets and
    ``\\r`` are kept). Use inside :func:`utf8_errors` to get coded decode errors."""
    return open(path, encoding=ENCODING, errors="strict", newline="")


def _locate(path: Path) -> Optional[Tuple[int, int, bytes]]:
    """(line, byte column, bad bytes) of the first invalid UTF-8 sequence of ``path``."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode(ENCODING)
            except UnicodeDecodeError as err:
                return lineno, err.start + 1, raw[err.start:err.end]
    return None


def decode_error_message(path: PathLike, err: UnicodeDecodeError) -> str:
    """E190 for ``err`` raised while reading ``path``: the line is found by re-reading the
    file line by line in binary (the error itself only knows a chunk offset)."""
    path = Path(path)
    where = _locate(path) if path.is_file() else None
    if where is None:
        line, col, bad = "?", "?", err.object[err.start:err.end]
    else:
        line, col, bad = where
    msg = Errors.E190.format(path=path, line=line, col=col, bad=bytes(bad)[:8])
    if path.is_file():
        with open(path, "rb") as f:
            if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                msg += " The file starts with a UTF-16 byte order mark: use `iconv -f utf16`."
    return msg


@contextmanager
def utf8_errors(path: PathLike) -> Iterator[None]:
    """Turn a ``UnicodeDecodeError`` raised inside the block into E190 naming ``path``."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise ValueError(decode_error_message(path, err)) from None


def iter_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its end of line) of a UTF-8 file; a leading BOM
    is dropped. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``."""
    with utf8_errors(path), open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1 and line.startswith(_BOM):
                line = line[1:]
            yield lineno, line.rstrip("\r\n")


def read_text(path: PathLike) -> str:
    """The whole text of a UTF-8 file, exactly (no newline translation: offsets count
    ``\\r`` too); a leading BOM is dropped."""
    with utf8_errors(path), open_text(path) as f:
        text = f.read()
    return text[1:] if text.startswith(_BOM) else text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads(text: str) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` are rejected (they would become float codes)."""
    return json.loads(text, parse_constant=_no_constant)


def read_json(path: PathLike) -> Any:
    """A JSON file; E190 on a decode error, E191 (file, line, column) on invalid JSON."""
    text = read_text(path)
    try:
        return json_loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(Errors.E191.format(path=path, line=err.lineno,
                                            err=f"{err.msg}, column {err.colno}")) from None
    except ValueError as err:
        raise ValueError(Errors.E191.format(path=path, line="?", err=err)) from None


def iter_jsonl(path: PathLike) -> Iterator[Tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file; E190 on a decode error,
    E191 naming the line on invalid JSON (a truncated last line included)."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            yield lineno, json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E191.format(path=path, line=lineno, err=err)) from None


def as_str(value: Any, what: str, path: PathLike, line: Union[int, str],
           allow_none: bool = False) -> Optional[str]:
    """A JSON field read as a string: str as is, int (not bool) as its digits; anything
    else (float, NaN, bool, list, object) is E194, so ``1e3`` never becomes ``"1000.0"``."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(Errors.E194.format(path=path, line=line, what=what, value=value,
                                        type=type(value).__name__))
