"""``read_corpus``: pick the reader from the path (or ``format=``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List

from ..errors import Errors
from ..types import CorpusDoc
from ..tsv import tsv_header
from ._util import PathLike
from .brat import read_brat
from .docbin import read_docbin
from .jsonl import read_jsonl
from .marked_tsv import read_marked_tsv
from .pubtator import is_pubtator_line, read_pubtator
from .spaccc import SPACCC_COLUMNS, read_spaccc

READERS: Dict[str, Callable[..., List[CorpusDoc]]] = {
    "jsonl": read_jsonl,
    "brat": read_brat,
    "pubtator": read_pubtator,
    "marked_tsv": read_marked_tsv,
    "spaccc": read_spaccc,
    "docbin": read_docbin,
}
_ALIASES = {"spacy": "docbin", "json": "jsonl", "marked": "marked_tsv", "tsv": "marked_tsv",
            "spaccc_train": "spaccc"}


def detect_format(path: PathLike) -> str:
    """Name of the reader for ``path`` (a key of ``READERS``); E043 / E040 on failure."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(Errors.E043.format(path=path))
    if path.is_dir():
        if next(path.rglob("*.ann"), None) is not None:
            return "brat"
        raise ValueError(Errors.E040.format(path=path))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".spacy":
        return "docbin"
    if suffix == ".tsv":
        cols = set(tsv_header(path))
        if {"sentence", "code"} <= cols:
            return "marked_tsv"
        if set(SPACCC_COLUMNS) <= cols:
            return "spaccc"
    if suffix in (".txt", ".pubtator"):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    if is_pubtator_line(line.lstrip("\ufeff")):
                        return "pubtator"
                    break
    raise ValueError(Errors.E040.format(path=path))


def read_corpus(path: PathLike, format: str = "auto", **kwargs) -> List[CorpusDoc]:
    """Read a corpus into :class:`CorpusDoc` objects.

    ``format``: ``auto`` (from the path), ``jsonl``, ``brat``, ``pubtator``, ``marked_tsv``,
    ``spaccc`` or ``docbin``/``spacy``. Extra keyword arguments go to the reader (e.g.
    ``texts_dir=`` for ``spaccc``).
    """
    path = Path(path)
    if format == "auto":
        fmt = detect_format(path)
    else:
        fmt = _ALIASES.get(format, format)
        if fmt not in READERS:
            raise ValueError(Errors.E040.format(path=path) + f" Unknown format '{format}': "
                             f"use one of {sorted(READERS)}.")
        if not path.exists():
            raise FileNotFoundError(Errors.E043.format(path=path))
    return READERS[fmt](path, **kwargs)
