"""TSV knowledge bases: ``code<TAB>name[<TAB>group...]`` rows, with optional header."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import spacy

from ...errors import Errors
from ...tsv import iter_tsv_fields
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish, group_kw,
                      register, truthy as _truthy)


def read_tsv(path: PathLike, group: Optional[str] = None) -> ConceptKB:
    """TSV with a header: ``code<TAB>name<TAB>group`` (any order), optional
    ``preferred`` (1/true/yes marks the code's preferred name) and ``definition``.
    Without a ``group`` column, ``group`` must be given. Fields may be csv-quoted as pandas
    writes them (``"a<TAB>b"`` holds a tab, ``""`` a quote; the reader of the corpus TSVs,
    :mod:`spacy_syncabel.tsv`); a row with more fields than the header (an unquoted tab
    inside a name) is E195. Codes are kept as written (``NaN`` stays ``"NaN"``)."""
    p = _check(path)
    expected = "code, name, group [, preferred, definition]"
    entries: List[Entry] = []
    preferred: Dict[str, str] = {}
    definitions: Dict[str, str] = {}
    rows = iter_tsv_fields(p)
    first = next(rows, None)
    if first is None:
        raise ValueError(Errors.E005.format(path=p))
    lineno, header, _ = first
    header = [h.lower() for h in header]
    missing = [c for c in ("code", "name") if c not in header]
    if "group" not in header and group is None:
        missing.append("group")
    if missing:
        raise ValueError(Errors.E001.format(
            path=p, line=lineno, problem=f"header lacks column(s) {', '.join(missing)}",
            expected=expected))
    i_code, i_name = header.index("code"), header.index("name")
    i_group = header.index("group") if "group" in header else None
    i_pref = header.index("preferred") if "preferred" in header else None
    i_def = header.index("definition") if "definition" in header else None
    n_needed = max(i for i in (i_code, i_name, i_group) if i is not None) + 1
    for lineno, fields, _ in rows:
        if len(fields) > len(header):
            raise ValueError(Errors.E195.format(
                path=p, line=lineno, n=len(fields), n_header=len(header),
                header=", ".join(header)))
        if len(fields) < n_needed:
            raise ValueError(Errors.E001.format(
                path=p, line=lineno,
                problem=f"{len(fields)} column(s) where {n_needed} are needed",
                expected=expected))
        code = fields[i_code].strip()
        name = fields[i_name]
        grp = fields[i_group].strip() if i_group is not None else group
        if not code:
            raise ValueError(Errors.E001.format(
                path=p, line=lineno, problem="empty code", expected=expected))
        if not grp:
            raise ValueError(Errors.E001.format(
                path=p, line=lineno, problem="empty group", expected=expected))
        if not name.strip():
            raise ValueError(Errors.E002.format(path=p, line=lineno, code=code))
        entries.append((code, name, grp))
        if i_pref is not None and i_pref < len(fields) and _truthy(fields[i_pref]):
            preferred.setdefault(code, name)
        if i_def is not None and i_def < len(fields) and fields[i_def].strip():
            definitions.setdefault(code, fields[i_def].strip())
    kb = ConceptKB(entries, preferred=preferred, definitions=definitions, source=str(p))
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromTSV.v1")
def kb_from_tsv(path: str, group: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_tsv`."""
    return lambda: read_tsv(path, group=group)


FORMAT = register(KBFormat(
    "tsv", rank=60, detect=lambda p: p.is_file() and p.name.lower().endswith(".tsv"),
    read=lambda p, group, languages: read_tsv(p, **group_kw(group))))
