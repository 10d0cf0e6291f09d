"""Reading user files as untrusted input: explicit UTF-8, coded errors naming file and line.

Every reader of a text file (KB, corpus, saved state, prompt files) goes through these
helpers, so that a file in another encoding or with broken JSON fails with a coded error
(E190/E191) that names the file, the line and what to do, never with a bare
``UnicodeDecodeError`` or ``JSONDecodeError``.
"""
from __future__ import annotations

import io
import os
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO, Tuple, Union

from .errors import Errors

PathLike = Union[str, Path]
ENCODING = "utf-8"
_BOM = "\ufeff"

__all__ = ["open_text", "utf8_errors", "iter_lines", "read_text", "json_loads", "read_json",
           "iter_jsonl", "as_str", "decode_error_message", "MAX_JSON_DEPTH", "JSONTooDeep",
           "json_depth_exceeds"]


def open_text(path: PathLike, root: Optional[PathLike] = None, kind: str = "jsonl") -> TextIO:
    """Open ``path`` for reading as strict UTF-8 without newline translation (offsets and
    ``\\r`` are kept). Use inside :func:`utf8_errors` to get coded decode errors. With
    ``root`` (a saved folder that may be hostile) the file is opened through
    :func:`~spacy_syncabel.guarded.open_in`: a regular file inside ``root``, no link, at most
    the size cap of ``kind``."""
    if root is None:
        return open(path, encoding=ENCODING, errors="strict", newline="")
    from .guarded import open_in

    return io.TextIOWrapper(open_in(root, path, kind), encoding=ENCODING, errors="strict",
                            newline="")


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


def iter_lines(path: PathLike, root: Optional[PathLike] = None,
               kind: str = "jsonl") -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its end of line) of a UTF-8 file; a leading BOM
    is dropped. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``. ``root``/``kind``: see
    :func:`open_text`."""
    with utf8_errors(path), open_text(path, root, kind) as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1 and line.startswith(_BOM):
                line = line[1:]
            yield lineno, line.rstrip("\r\n")


def read_text(path: PathLike, root: Optional[PathLike] = None, kind: str = "json") -> str:
    """The whole text of a UTF-8 file, exactly (no newline translation: offsets count
    ``\\r`` too); a leading BOM is dropped. ``root``/``kind``: see :func:`open_text`."""
    with utf8_errors(path), open_text(path, root, kind) as f:
        text = f.read()
    return text[1:] if text.startswith(_BOM) else text


#: deepest nesting of arrays and objects a JSON value may have (ours need fewer than 10)
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONTooDeep(ValueError):
    """A JSON text nested deeper than :data:`MAX_JSON_DEPTH`."""


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings
    do not count). Linear and vectorized; a text with at most ``limit`` opening brackets is
    not scanned."""
    if text.count("[") + text.count("{") <= limit:
        return False
    import numpy as np

    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    steps = np.frombuffer(brackets, dtype=np.uint8)
    opening = (steps == ord("[")) | (steps == ord("{"))
    return bool(len(steps)) and int(np.cumsum(np.where(opening, 1, -1)).max()) > limit


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads(text: Union[str, bytes]) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` are rejected (they would become float codes), and a
    value nested deeper than :data:`MAX_JSON_DEPTH` is :class:`JSONTooDeep` (never a bare
    ``RecursionError``). Every JSON text spacy-syncabel reads goes through here (bytes are
    UTF-8); all its errors are ``ValueError``s."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode(ENCODING)
    if json_depth_exceeds(text):
        raise JSONTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise JSONTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels") from None


def _json_error(path: PathLike, line: Any, err: ValueError) -> ValueError:
    if isinstance(err, JSONTooDeep):
        return ValueError(Errors.E324.format(path=path, line=line, limit=MAX_JSON_DEPTH))
    if isinstance(err, json.JSONDecodeError):
        return ValueError(Errors.E191.format(path=path, line=line if line != "?" else err.lineno,
                                             err=f"{err.msg}, column {err.colno}"))
    return ValueError(Errors.E191.format(path=path, line=line, err=err))


def _size_checked(path: PathLike, root: Optional[PathLike], kind: str) -> None:
    """Outside a guarded folder: still no file above the cap of ``kind`` is read whole."""
    if root is not None:
        return
    from .guarded import KINDS, size_cap

    try:
        size = os.stat(path).st_size
    except OSError:
        return  # open() reports it
    if size > size_cap(kind):
        raise ValueError(Errors.E322.format(path=path, size=size, cap=size_cap(kind),
                                            what=KINDS[kind][1],
                                            env=f"SPACY_SYNCABEL_MAX_{kind.upper()}_MB"))


def read_json(path: PathLike, root: Optional[PathLike] = None, kind: str = "json") -> Any:
    """A JSON file; E190 on a decode error, E191 (file, line, column) on invalid JSON, E324
    nested too deep, E322 larger than the cap of ``kind``; ``root``: see :func:`open_text`."""
    _size_checked(path, root, kind)
    text = read_text(path, root, kind)
    try:
        return json_loads(text)
    except ValueError as err:
        raise _json_error(path, "?", err) from None


def iter_jsonl(path: PathLike, root: Optional[PathLike] = None,
               kind: str = "jsonl") -> Iterator[Tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file; E190 on a decode error,
    E191 naming the line on invalid JSON (a truncated last line included), E324 on a line
    nested too deep, E322 on a file larger than the cap of ``kind``."""
    _size_checked(path, root, kind)
    for lineno, line in iter_lines(path, root, kind):
        if not line.strip():
            continue
        try:
            value = json_loads(line)
        except ValueError as err:
            raise _json_error(path, lineno, err) from None
        yield lineno, value


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
