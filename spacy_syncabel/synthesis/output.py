"""Crash-safe, resumable output: a JSONL corpus plus a ``.done`` sidecar.

For every finished concept, :meth:`SynthWriter.write_concept` appends its accepted sentences
to the output (one ``write``, then flush + fsync) and then one line to ``OUTPUT.done``
(``{"concept", "offset", ...}``, flush + fsync), ``offset`` being the output's size after the
concept. A concept is done when its ``.done`` line is complete, also when all its sentences
were rejected. On open, a partial last ``.done`` line is dropped and the output is truncated to
the last recorded offset, which removes a partial last line and the lines of a concept whose
``.done`` line was never written: nothing is lost or written twice, whenever the process dies.
An exclusive lock (``flock`` on the sidecar) keeps a second process off the same files.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from ..errors import Errors, Warnings
from ..textio import json_loads

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore


def done_path(path: Union[str, Path]) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".done")


def read_done(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """The complete records of ``OUTPUT.done`` (a partial last line is ignored)."""
    records = []
    side = done_path(path)
    if not side.exists():
        return records
    with open(side, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json_loads(line))
            except ValueError:
                break
    return records


class SynthWriter:
    """Append-only writer of one output file; ``open()`` returns the concepts already done."""

    def __init__(self, path: Union[str, Path], shard_hint: str = "0/1") -> None:
        self.path = Path(path)
        self.done_file = done_path(self.path)
        self.shard_hint = shard_hint
        self._out = None
        self._done = None
        self.done: Dict[str, Dict[str, Any]] = {}

    def open(self) -> Dict[str, Dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size and not self.done_file.exists():
            raise ValueError(Errors.E077.format(path=self.path, problem=f"{self.done_file.name} "
                                                "is missing"))
        self._done = open(self.done_file, "a+b")
        if fcntl is not None:
            try:
                fcntl.flock(self._done.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._done.close()
                self._done = None
                i, n = self.shard_hint.split("/")
                raise RuntimeError(Errors.E076.format(path=self.path, i=i, n=n)) from None
        # 1. the sidecar: keep its complete, valid lines
        self._done.seek(0)
        good_end, offset = 0, 0
        for line in self._done:
            if not line.endswith(b"\n"):
                break
            try:
                rec = json_loads(line)
                rec_offset = int(rec["offset"])
                code = str(rec["concept"])
            except (ValueError, KeyError, TypeError):
                break
            good_end += len(line)
            offset = rec_offset
            self.done[code] = rec
        self._done.truncate(good_end)
        self._done.seek(0, os.SEEK_END)
        # 2. the output: cut what follows the last finished concept
        self._out = open(self.path, "a+b")
        size = self._out.seek(0, os.SEEK_END)
        if size < offset:
            self.close()
            raise ValueError(Errors.E077.format(
                path=self.path, problem=f"it is shorter ({size} bytes) than its .done file says "
                                        f"({offset} bytes)"))
        if size > offset:
            warnings.warn(Warnings.W072.format(path=self.path, n_bytes=size - offset), stacklevel=2)
            self._out.truncate(offset)
            self._out.flush()
            os.fsync(self._out.fileno())
        self._out.seek(0, os.SEEK_END)
        self.offset = offset
        return self.done

    def write_concept(self, code: str, records: Iterable[Dict[str, Any]],
                      info: Optional[Dict[str, Any]] = None) -> None:
        data = b"".join(json.dumps(r, ensure_ascii=False).encode("utf8") + b"\n" for r in records)
        if data:
            self._out.write(data)
            self._out.flush()
            os.fsync(self._out.fileno())
        self.offset += len(data)
        rec = {"concept": code, "offset": self.offset, **(info or {})}
        self._done.write(json.dumps(rec, ensure_ascii=False).encode("utf8") + b"\n")
        self._done.flush()
        os.fsync(self._done.fileno())
        self.done[code] = rec

    def close(self) -> None:
        for f in (self._out, self._done):
            if f is not None:
                f.close()  # closing releases the lock
        self._out = self._done = None

    def __enter__(self) -> "SynthWriter":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
