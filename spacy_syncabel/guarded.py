"""Reading files of a saved folder that may be hostile: regular files inside it, size-capped.

Every loader of a pipeline folder (state, KB, tries, aliases, tokenizer, weights, records)
opens its files through :func:`open_in` (or checks a whole sub-folder with
:func:`check_tree` before a library reads it). A file is read only when, checked with
``os.lstat`` before it is opened:

* its path is inside the folder (no absolute part, no ``..``) and no part of it, from the
  folder down, is a symbolic link (E320);
* it is a regular file, not a device, FIFO, socket or folder (E321); it is opened with
  ``O_NONBLOCK | O_NOFOLLOW`` and checked again on the open descriptor, so a FIFO swapped
  in meanwhile never blocks;
* it is not larger than the cap of its kind (E322; raised with the environment variable
  the error names).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, Optional, Tuple, Union

from .errors import Errors

PathLike = Union[str, Path]
MB = 1 << 20
#: kind -> (default cap in MB, what the files are)
KINDS: Dict[str, Tuple[int, str]] = {
    "json": (64, "JSON settings and state files"),
    "jsonl": (4096, "JSONL files"),
    "kb": (4096, "saved KB files (kb/kb.jsonl, kb/meta.json)"),
    "aliases": (1024, "alias files (aliases.jsonl)"),
    "tries": (16384, "token trie files"),
    "tokenizer": (1024, "tokenizer files"),
    "weights": (1 << 20, "model weight files"),
}
_ENV = "SPACY_SYNCABEL_MAX_{kind}_MB"


def size_cap(kind: str) -> int:
    """The byte cap of ``kind``: the environment variable ``SPACY_SYNCABEL_MAX_<KIND>_MB``
    (a number of MB) when set, else the default of :data:`KINDS`."""
    default, _ = KINDS[kind]
    value = os.environ.get(_ENV.format(kind=kind.upper()), "")
    try:
        return int(float(value) * MB) if value.strip() else default * MB
    except ValueError:
        return default * MB


def _inside(root: Path, path: Path) -> Tuple[str, ...]:
    """The parts of ``path`` below ``root`` (E320 when it is not lexically inside)."""
    try:
        rel: Optional[Path] = path.relative_to(root)
    except ValueError:
        rel = None if path.is_absolute() else path
    if rel is None or rel.is_absolute() or any(p in ("..", "") for p in rel.parts) \
            or not rel.parts:
        raise ValueError(Errors.E323.format(path=root, name=str(path), source="the loader",
                                            key="path"))
    return rel.parts


def _check_stat(path: Path, st: os.stat_result, kind: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(Errors.E320.format(path=path, target=os.readlink(path)))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(Errors.E321.format(path=path, what=_file_type(st.st_mode)))
    cap = size_cap(kind)
    if st.st_size > cap:
        raise ValueError(Errors.E322.format(path=path, size=st.st_size, cap=cap,
                                            what=KINDS[kind][1],
                                            env=_ENV.format(kind=kind.upper())))


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_file(root: PathLike, path: PathLike, kind: str) -> Path:
    """``root / path`` after the checks of the module docstring; returns the full path.
    ``path`` may be relative to ``root`` or an absolute path below it."""
    root = Path(root)
    parts = _inside(root, Path(path))
    full = root
    for i, part in enumerate(parts):
        full = full / part
        st = os.lstat(full)
        if i < len(parts) - 1:
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(Errors.E320.format(path=full, target=os.readlink(full)))
            if not stat.S_ISDIR(st.st_mode):
                raise ValueError(Errors.E321.format(path=full, what=_file_type(st.st_mode)))
        else:
            _check_stat(full, st, kind)
    return full


def open_in(root: PathLike, path: PathLike, kind: str) -> BinaryIO:
    """A binary file object of ``root / path`` after :func:`check_file`; opened without
    following a link and without blocking, then checked again on its descriptor."""
    full = check_file(root, path, kind)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(full, flags)
    except OSError as err:
        if os.path.islink(full):
            raise ValueError(Errors.E320.format(path=full, target=os.readlink(full))) from None
        raise err
    try:
        _check_stat(full, os.fstat(fd), kind)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes_in(root: PathLike, path: PathLike, kind: str) -> bytes:
    """The bytes of ``root / path`` (:func:`open_in`), at most the cap of ``kind``."""
    with open_in(root, path, kind) as f:
        data = f.read(size_cap(kind) + 1)
    if len(data) > size_cap(kind):  # grew after the check
        raise ValueError(Errors.E322.format(path=Path(root) / path, size=len(data),
                                            cap=size_cap(kind), what=KINDS[kind][1],
                                            env=_ENV.format(kind=kind.upper())))
    return data


def iter_tree(root: PathLike, sub: Optional[PathLike] = None) -> Iterator[Path]:
    """Every file under ``root / sub`` (recursively, links not followed), as paths relative
    to ``root``; a link anywhere is E320, a non-regular, non-folder entry E321."""
    root = Path(root)
    start = root if sub is None else check_dir(root, sub)
    stack = [start]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            p = Path(entry.path)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(Errors.E320.format(path=p, target=os.readlink(p)))
            if stat.S_ISDIR(st.st_mode):
                stack.append(p)
            elif stat.S_ISREG(st.st_mode):
                yield p.relative_to(root)
            else:
                raise ValueError(Errors.E321.format(path=p, what=_file_type(st.st_mode)))


def check_dir(root: PathLike, sub: PathLike) -> Path:
    """``root / sub`` when it is a real folder inside ``root`` (no link on the way)."""
    root = Path(root)
    full = root
    for part in _inside(root, Path(sub)):
        full = full / part
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            raise ValueError(Errors.E320.format(path=full, target=os.readlink(full)))
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(Errors.E321.format(path=full, what=_file_type(st.st_mode)))
    return full


def check_tree(root: PathLike, sub: PathLike, kind_of) -> None:
    """:func:`iter_tree` with the size cap of ``kind_of(relative path)`` on every file."""
    for rel in iter_tree(root, sub):
        _check_stat(Path(root) / rel, os.lstat(Path(root) / rel), kind_of(rel))


def exists_in(root: PathLike, path: PathLike) -> bool:
    """Whether ``root / path`` exists as anything (``os.lstat``: a dangling link counts),
    so a loader that skips optional missing files does not skip a hostile link silently."""
    root = Path(root)
    try:
        os.lstat(root.joinpath(*_inside(root, Path(path))))
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


__all__ = ["KINDS", "size_cap", "check_file", "open_in", "read_bytes_in", "iter_tree",
           "check_dir", "check_tree", "exists_in"]
