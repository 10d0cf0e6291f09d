"""Helpers shared by the corpus readers: code normalisation, offset checks, warnings."""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Union

from ..errors import Errors, Warnings
from ..text import normalize_space
from ..textio import read_text as read_utf8
from ..types import COMPOSITE_SEP, NIL, GoldMention

PathLike = Union[str, Path]

# Separators found between the codes of composite / multi-code mentions:
# "|" (NCBI-disease, BC5CDR), "+" (NCBI-disease, SPACCC), white space or "," (QUAERO).
_CODE_SPLIT = re.compile(r"[|+,\s]+")
# Codes that mean "no concept" in the source formats.
NIL_CODES = {"-1", "nil", "cui-less", "cuiless"}


def normalize_code(raw: Optional[str]) -> Optional[str]:
    """Normalise a raw code field: strip, split composite/multiple codes on ``|``, ``+``,
    ``,`` or white space and join them with ``+``; ``-1`` / ``CUI-less`` become ``NIL``;
    duplicates are dropped (order kept). An empty field gives ``None``."""
    if raw is None:
        return None
    parts = [p for p in _CODE_SPLIT.split(raw.strip()) if p]
    if not parts:
        return None
    out: List[str] = []
    for p in parts:
        p = NIL if p.lower() in NIL_CODES else p
        if p not in out:
            out.append(p)
    return COMPOSITE_SEP.join(out)


def check_offsets(path: PathLike, where: str, start: int, end: int, text: str) -> None:
    """Raise E041 when ``start..end`` is outside ``text``, E042 when it is reversed."""
    if start < 0 or end > len(text) or start > len(text) or end < 0:
        raise ValueError(Errors.E041.format(path=path, where=where, start=start, end=end,
                                            length=len(text)))
    if end <= start:
        raise ValueError(Errors.E042.format(
            path=path, where=where,
            problem=f"empty or reversed entity span {start}-{end}. Fix the offsets."))


def to_int(path: PathLike, where: str, value: str, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(Errors.E042.format(
            path=path, where=where, problem=f"{what} '{value}' is not an integer."))


def same_text(a: str, b: str) -> bool:
    """Compare two mention texts after white-space normalisation."""
    return normalize_space(a) == normalize_space(b)


def csv_unquote(s: str) -> str:
    """Undo (possibly repeated) CSV quoting left in a field: doubled quotes inside outer ones."""
    while len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1].replace('""', '"')
    return s


def sort_mentions(mentions: Iterable[GoldMention]) -> List[GoldMention]:
    return sorted(mentions, key=lambda m: (m.start, m.end, m.label, m.code or ""))


def read_text(path: PathLike) -> str:
    """Read a UTF-8 text file exactly (no newline translation: offsets count ``\\r`` too);
    E190 naming the line when it is not UTF-8."""
    return read_utf8(path)


class MismatchLog:
    """Collect rows whose text does not match; warn once with W004."""

    def __init__(self, path: PathLike):
        self.path = path
        self.n = 0
        self.first: Optional[str] = None
        self.examples: List[str] = []

    def add(self, where: str, expected: str, found: str) -> None:
        self.n += 1
        msg = f"{where}: expected {expected!r}, text has {found!r}"
        if self.first is None:
            self.first = msg
        self.examples.append(msg)

    def warn(self) -> None:
        if self.n:
            warnings.warn(Warnings.W004.format(n=self.n, path=self.path, first=self.first),
                          stacklevel=3)
