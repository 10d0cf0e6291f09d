"""Marked-sentence TSV (SPACCC ``test_half.tsv``): one mention a row, the ``sentence`` column
holds the sentence with the mention marked ``[mention]{TYPE}``.

Each row gives one :class:`CorpusDoc` whose text is the unmarked sentence, with one mention
(label ``TYPE``, code from the ``code`` column) and ``sentences=[(0, len(text))]``.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import Errors, Warnings
from ..types import CorpusDoc, GoldMention
from ..tsv import iter_tsv, tsv_header
from ._util import PathLike, csv_unquote, normalize_code, same_text

_ANY_END = re.compile(r"\]\{([^{}\[\]\s]+)\}")


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += (ch == "[") - (ch == "]")
        if depth < 0:
            return False
    return depth == 0


def unmark(sentence: str, label: Optional[str] = None, span: Optional[str] = None
           ) -> Optional[Tuple[str, int, int, str]]:
    """Remove the ``[mention]{TYPE}`` markup: return (text, start, end, TYPE) or None.

    The end marker is ``]{label}`` when the label is known, else ``]{WORD}``. The opening
    ``[`` is the one whose enclosed text equals ``span`` (when given), else the nearest one
    that leaves the brackets inside the mention balanced, else the nearest one.
    """
    if label:
        ends = [(m.start(), m.end(), label)
                for m in re.finditer(re.escape("]{" + label + "}"), sentence)]
    else:
        ends = [(m.start(), m.end(), m.group(1)) for m in _ANY_END.finditer(sentence)]
    if len(ends) != 1:
        # Several candidates: keep those that have an opening bracket before them
        ends = [e for e in ends if "[" in sentence[:e[0]]]
        if len(ends) != 1:
            return None
    close, after, typ = ends[0]
    opens = [i for i in range(close - 1, -1, -1) if sentence[i] == "["]
    if not opens:
        return None
    chosen = None
    if span is not None:
        chosen = next((i for i in opens if same_text(sentence[i + 1:close], span)
                       or same_text(sentence[i + 1:close], csv_unquote(span))), None)
    if chosen is None:
        chosen = next((i for i in opens if _balanced(sentence[i + 1:close])), opens[0])
    mention = sentence[chosen + 1:close]
    text = sentence[:chosen] + mention + sentence[after:]
    return text, chosen, chosen + len(mention), typ


def read_marked_tsv(path: PathLike, sentence_column: str = "sentence",
                    code_column: str = "code") -> List[CorpusDoc]:
    """Read a marked-sentence TSV. The marked mention is authoritative; rows where it differs
    from the ``span`` column (after white-space normalisation and undoing CSV quoting left
    in the field) are kept and counted in one warning (W042)."""
    path = Path(path)
    cols = tsv_header(path)
    for needed in (sentence_column, code_column):
        if needed not in cols:
            raise ValueError(Errors.E042.format(
                path=path, where="header",
                problem=f"no '{needed}' column (columns: {cols})."))
    n_mismatch = 0
    first_mismatch = None
    docs = []
    for n, (lineno, row) in enumerate(iter_tsv(path)):
        where = f"line {lineno}"
        sentence = row.get(sentence_column) or ""
        label = (row.get("label") or "").strip() or None
        span = row.get("span")
        res = unmark(sentence, label, span)
        if res is None:
            raise ValueError(Errors.E042.format(
                path=path, where=where,
                problem=f"expected exactly one '[mention]{{{label or 'TYPE'}}}' in the sentence "
                        f"{sentence[:200]!r}. Mark one mention per row."))
        text, start, end, typ = res
        if span is not None and not (same_text(text[start:end], span)
                                     or same_text(text[start:end], csv_unquote(span))):
            n_mismatch += 1
            first_mismatch = first_mismatch or f"{where}: {span!r} vs {text[start:end]!r}"
        if not text[start:end].strip():
            raise ValueError(Errors.E042.format(path=path, where=where,
                                                problem="the marked mention is empty."))
        doc_id = (row.get("mention_id") or "").strip()
        if not doc_id:
            base = (row.get("filename") or "").strip() or path.stem
            doc_id = f"{base}#{n}"
        docs.append(CorpusDoc(
            id=doc_id, text=text,
            mentions=[GoldMention(start, end, typ, normalize_code(row.get(code_column)))],
            sentences=[(0, len(text))]))
    if n_mismatch:
        warnings.warn(Warnings.W042.format(n=n_mismatch, path=path, first=first_mismatch),
                      stacklevel=2)
    return docs
