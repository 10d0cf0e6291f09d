"""PubTator files (NCBI-disease, BC5CDR).

``pmid|t|title`` and ``pmid|a|abstract`` lines, then ``pmid\\tstart\\tend\\ttext\\ttype\\tcode``
mention lines (BC5CDR adds a 7th column with the parts of composite mentions), relation lines
``pmid\\tCID\\t...`` (ignored), blank lines between documents. The text is
``title + " " + abstract``. Composite codes (``|`` in both corpora, ``+`` in NCBI-disease)
become ``+``-joined; ``-1`` becomes ``NIL``; other codes are kept as written
(``D012345``, ``OMIM:123456``, ``MESH:C535662``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Tuple

from ..errors import Errors, Warnings
from ..textio import iter_lines
from ..types import CorpusDoc, GoldMention
from ._util import (MismatchLog, PathLike, check_offsets, normalize_code, same_text,
                    sort_mentions, to_int)


def is_pubtator_line(line: str) -> bool:
    """``pmid|t|title`` or ``pmid|a|abstract`` (the title/abstract may hold tabs and ``|``)."""
    parts = line.split("|", 2)
    return (len(parts) == 3 and parts[1] in ("t", "a") and bool(parts[0].strip())
            and "\t" not in parts[0])


def _is_int(field: str) -> bool:
    return field.strip().lstrip("-").isdigit()


def read_pubtator(path: PathLike) -> List[CorpusDoc]:
    """Read a UTF-8 PubTator file. Mentions whose text does not match the document at their
    offsets (after white-space normalisation) are skipped and reported (W004). A mention
    line with fewer than 5 columns (a truncated file) is E042; other lines that are neither
    title/abstract, mention nor relation lines are skipped and reported (W190)."""
    path = Path(path)
    titles: Dict[str, str] = {}
    abstracts: Dict[str, str] = {}
    raw: Dict[str, List[Tuple[int, List[str]]]] = {}
    order: List[str] = []
    unknown: List[Tuple[int, str]] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        if is_pubtator_line(line):
            pmid, kind, value = line.split("|", 2)
            if pmid not in titles and pmid not in abstracts:
                order.append(pmid)
            (titles if kind == "t" else abstracts)[pmid] = value
            continue
        cols = line.split("\t")
        if len(cols) >= 2 and _is_int(cols[1]):
            raw.setdefault(cols[0], []).append((lineno, cols))  # mention (checked below)
        elif len(cols) < 3 or not cols[1].strip():
            unknown.append((lineno, line))  # relation lines are pmid, TYPE, id, id...
    if unknown:
        warnings.warn(Warnings.W190.format(n=len(unknown), path=path, line=unknown[0][0],
                                           text=unknown[0][1][:80]), stacklevel=2)
    log = MismatchLog(path)
    docs = []
    for pmid in order:
        text = titles.get(pmid, "") + " " + abstracts.get(pmid, "")
        mentions = []
        for lineno, cols in raw.pop(pmid, []):
            where = f"line {lineno}"
            if len(cols) < 5:
                raise ValueError(Errors.E042.format(
                    path=path, where=where,
                    problem=f"a mention line needs pmid, start, end, text, type[, code]; it has "
                            f"{len(cols)} tab-separated column(s) (a truncated file?)."))
            start = to_int(path, where, cols[1], "start")
            end = to_int(path, where, cols[2], "end")
            check_offsets(path, where, start, end, text)
            if not same_text(text[start:end], cols[3]):
                log.add(where, cols[3], text[start:end])
                continue
            code = normalize_code(cols[5]) if len(cols) > 5 else None
            mentions.append(GoldMention(start, end, cols[4].strip(), code))
        docs.append(CorpusDoc(id=pmid, text=text, mentions=sort_mentions(mentions)))
    if raw:
        pmid, rows = next(iter(raw.items()))
        raise ValueError(Errors.E042.format(
            path=path, where=f"line {rows[0][0]}",
            problem=f"mentions for document {pmid}, which has no title or abstract line."))
    log.warn()
    return docs
