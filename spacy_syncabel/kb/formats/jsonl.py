"""JSONL knowledge bases: one concept or name a line."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import spacy

from ...errors import Errors
from ...textio import as_str
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish, group_kw,
                      json_lines as _json_lines, register, truthy as _truthy)


def read_jsonl(path: PathLike, group: Optional[str] = None) -> ConceptKB:
    """JSONL, one object a line: ``{"code", "name", "group"[, "preferred"]}`` or
    ``{"code", "names": [...], "group"[, "preferred_name", "definition"]}``.
    ``group`` is the default for objects without one. Codes, names and groups must be
    JSON strings (integers are taken as their digits; floats, NaN and the rest are E194)."""
    p = _check(path)
    entries: List[Entry] = []
    preferred: Dict[str, str] = {}
    definitions: Dict[str, str] = {}
    for lineno, obj in _json_lines(p):
        code = (as_str(obj.get("code"), "'code'", p, lineno, allow_none=True) or "").strip()
        grp = (as_str(obj.get("group"), "'group'", p, lineno, allow_none=True)
               or group or "").strip()
        if not code:
            raise ValueError(Errors.E007.format(path=p, line=lineno, problem="no 'code'"))
        if not grp:
            raise ValueError(Errors.E007.format(
                path=p, line=lineno, problem="no 'group' (and no default group given)"))
        if "names" in obj:
            names = obj["names"]
            if isinstance(names, str) or not isinstance(names, list):
                raise ValueError(Errors.E007.format(
                    path=p, line=lineno, problem="'names' must be a list of strings"))
        elif "name" in obj:
            names = [obj["name"]]
        else:
            raise ValueError(Errors.E007.format(
                path=p, line=lineno, problem="no 'name' or 'names'"))
        for name in names:
            name = as_str(name, "a name", p, lineno)
            if not name.strip():
                raise ValueError(Errors.E002.format(path=p, line=lineno, code=code))
            entries.append((code, name, grp))
        if "name" in obj and _truthy(obj.get("preferred", False)):
            preferred.setdefault(code, str(obj["name"]))
        pref = as_str(obj.get("preferred_name"), "'preferred_name'", p, lineno, allow_none=True)
        if pref:
            preferred.setdefault(code, pref)
            entries.append((code, pref, grp))
        definition = as_str(obj.get("definition"), "'definition'", p, lineno, allow_none=True)
        if definition:
            definitions.setdefault(code, definition)
    kb = ConceptKB(entries, preferred=preferred, definitions=definitions, source=str(p))
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromJSONL.v1")
def kb_from_jsonl(path: str, group: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_jsonl`."""
    return lambda: read_jsonl(path, group=group)


FORMAT = register(KBFormat(
    "jsonl", rank=70, detect=lambda p: p.is_file() and p.name.lower().endswith(".jsonl"),
    read=lambda p, group, languages: read_jsonl(p, **group_kw(group))))
