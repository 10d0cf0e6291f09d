"""eCIE-O-3.1 JSONL (CANTEMIST's morphology codes)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List

import spacy

from ...errors import Errors
from ...textio import as_str, json_loads
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish, group_kw,
                      json_lines as _json_lines, lines as _lines, register)


def read_cie_o3(path: PathLike, group: str = "MORFOLOGIA_NEOPLASIA") -> ConceptKB:
    """eCIE-O-3.1 JSONL (``concept_id``, ``definition``, ``canonical_name``, ``aliases``).
    The name is ``definition`` (the preferred name); ``canonical_name`` (an internal id)
    and ``aliases`` (badly split on commas) are ignored. Codes are ``concept_id``
    (``8000/6``); CANTEMIST's ``8000/6/H`` maps to ``8000/6`` through ``kb.aliases``."""
    p = _check(path)
    entries: List[Entry] = []
    for lineno, obj in _json_lines(p):
        code = (as_str(obj.get("concept_id", obj.get("code")), "'concept_id'", p, lineno,
                       allow_none=True) or "").strip()
        if not code:
            raise ValueError(Errors.E007.format(path=p, line=lineno, problem="no 'concept_id'"))
        name = as_str(obj.get("definition") or obj.get("name") or "", "'definition'", p, lineno)
        if not name.strip():
            raise ValueError(Errors.E002.format(path=p, line=lineno, code=code))
        entries.append((code, name, group))
    aliases = {f"{c}/H": c for c, _, _ in entries}
    kb = ConceptKB(entries, source=str(p), aliases=aliases)
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromCIEO3.v1")
def kb_from_cie_o3(path: str, group: str = "MORFOLOGIA_NEOPLASIA") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_cie_o3`."""
    return lambda: read_cie_o3(path, group=group)


def _is_cie_o3(p: Path) -> bool:
    """Named so (``cie_o3``, ``cie-o``, ``cieo3``), or a JSONL file whose first record has
    ``definition`` and ``canonical_name``."""
    name = p.name.lower()
    if not p.is_file():
        return False
    if "cie_o3" in name or "cie-o" in name or "cieo3" in name:
        return True
    if not name.endswith(".jsonl"):
        return False
    for _, line in _lines(p):
        if line.strip():
            try:
                obj = json_loads(line)
            except ValueError:
                return False  # read_jsonl reports the bad line
            return isinstance(obj, dict) and "definition" in obj and "canonical_name" in obj
    return False


FORMAT = register(KBFormat(
    "cie_o3", rank=40, detect=_is_cie_o3,
    read=lambda p, group, languages: read_cie_o3(p, **group_kw(group))))
