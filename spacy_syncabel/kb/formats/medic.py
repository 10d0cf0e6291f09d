"""MEDIC (CTD diseases): MeSH and OMIM codes, NCBI-disease's KB."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import spacy

from ...errors import Errors
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish,
                      group_kw, lines as _lines, register)


def medic_code(raw: str) -> str:
    """MEDIC/CTD id -> NCBI-disease form: ``MESH:D012345`` -> ``D012345``,
    ``123456`` / ``OMIM:123456`` -> ``OMIM:123456``."""
    code = raw.strip()
    if code.upper().startswith("MESH:"):
        code = code[5:]
    if code.isdigit():
        code = "OMIM:" + code
    elif code.upper().startswith("OMIM:"):
        code = "OMIM:" + code[5:]
    return code


def read_medic(path: PathLike, group: str = "Disease") -> ConceptKB:
    """CTD MEDIC: either the pipe format ``ID|ALT_ID…||name|synonym…`` (as in
    ``medic_06Jul2012.txt``) or CTD's ``CTD_diseases.tsv`` (``DiseaseName, DiseaseID,
    AltDiseaseIDs, Definition, ParentIDs, TreeNumbers, ParentTreeNumbers, Synonyms``).
    ``#`` lines are comments. Preferred name = the disease name."""
    p = _check(path)
    entries: List[Entry] = []
    preferred: Dict[str, str] = {}
    definitions: Dict[str, str] = {}
    alt_pairs: List[Tuple[str, str]] = []
    ctd: Optional[bool] = None  # the first data line tells the format of the whole file
    for lineno, line in _lines(p):
        if not line.strip() or line.startswith("#"):
            continue
        if ctd is None:
            ctd = "\t" in line
        if ctd:  # CTD_diseases.tsv
            f = line.split("\t")
            if len(f) < 2:
                raise ValueError(Errors.E007.format(
                    path=p, line=lineno, problem="expected DiseaseName<TAB>DiseaseID…"))
            if len(f) > 9:
                raise ValueError(Errors.E007.format(
                    path=p, line=lineno, problem=f"{len(f)} tab-separated fields where CTD's "
                    "disease file has at most 9 (a tab inside a name?)"))
            name, code = f[0], medic_code(f[1])
            alts = f[2].split("|") if len(f) > 2 else []
            synonyms = f[7].split("|") if len(f) > 7 else []
            if len(f) > 3 and f[3].strip():
                definitions.setdefault(code, f[3].strip())
        else:
            if "||" not in line or "\t" in line:
                raise ValueError(Errors.E007.format(
                    path=p, line=lineno, problem="expected 'ID|ALT_IDS||name|synonym…' with no "
                    "tab, as on the file's first line"))
            left, _, right = line.partition("||")
            ids = left.split("|")
            code, alts = medic_code(ids[0]), ids[1:]
            name, *synonyms = right.split("|")
        if not code:
            raise ValueError(Errors.E007.format(path=p, line=lineno, problem="empty id"))
        if not name.strip():
            raise ValueError(Errors.E002.format(path=p, line=lineno, code=code))
        entries.append((code, name, group))
        preferred.setdefault(code, name)
        entries.extend((code, s, group) for s in synonyms if s.strip())
        alt_pairs.extend((medic_code(a), code) for a in alts if a.strip())
    main = {c for c, _, _ in entries}
    aliases: Dict[str, str] = {}
    for alt, code in alt_pairs:
        if alt not in main and alt != code:
            aliases.setdefault(alt, code)
    kb = ConceptKB(entries, preferred=preferred, definitions=definitions, source=str(p),
                   aliases=aliases)
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromMEDIC.v1")
def kb_from_medic(path: str, group: str = "Disease") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_medic`."""
    return lambda: read_medic(path, group=group)


def _is_medic(p: Path) -> bool:
    name = p.name.lower()
    return p.is_file() and ("medic" in name or "ctd_diseases" in name)


FORMAT = register(KBFormat(
    "medic", rank=30, detect=_is_medic,
    read=lambda p, group, languages: read_medic(p, **group_kw(group))))
