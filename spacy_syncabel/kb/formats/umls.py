"""UMLS Metathesaurus (``MRCONSO.RRF``, ``MRSTY.RRF``, semantic groups)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Set, Tuple

import spacy

from ...errors import Errors
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish,
                      lines as _lines, register)
from ._languages import umls_languages


def load_semantic_groups(path: Optional[PathLike] = None) -> Dict[str, Tuple[str, str]]:
    """TUI -> (group abbreviation, group name) from a ``SemGroups.txt`` file
    (``ACTI|Activities & Behaviors|T052|Activity``); default: the copy shipped in ``kb/``."""
    p = Path(path) if path is not None else Path(__file__).parents[1] / "semgroups.txt"
    out: Dict[str, Tuple[str, str]] = {}
    for _, line in _lines(p):
        parts = line.split("|")
        if len(parts) >= 3:
            out[parts[2].strip()] = (parts[0].strip(), parts[1].strip())
    return out


def read_umls(mrconso: PathLike, mrsty: Optional[PathLike] = None,
              languages: Optional[List[str]] = ("ENG",), sabs: Optional[List[str]] = None,
              groups: Optional[List[str]] = None) -> ConceptKB:
    """UMLS ``MRCONSO.RRF`` (+ ``MRSTY.RRF``, default: next to MRCONSO). Groups are the
    UMLS semantic groups (``Disorders``, ``Chemicals & Drugs``…); ``groups`` filters them
    (full names or abbreviations like ``DISO``). Without MRSTY every CUI is in group
    ``UMLS``. ``languages``: the atoms' ``LAT`` kept (``ENG``, ``SPA``, ``FRE``...; ISO codes
    such as ``es`` are mapped; None, empty or ``all``: every language). Suppressed atoms
    (SUPPRESS != N) are skipped. Preferred name: the atom with TS=P, STT=PF, ISPREF=Y (else
    TS=P, ISPREF=Y), from the first language in ``languages`` that has one."""
    p = _check(mrconso)
    if mrsty is None:
        cand = p.with_name("MRSTY.RRF")
        mrsty = cand if cand.exists() else None
    lang_list = umls_languages(languages)
    langs = set(lang_list) if lang_list else None
    sab_set = set(sabs) if sabs else None
    cui_groups: Optional[Dict[str, List[str]]] = None
    if mrsty is not None:
        sty_path = _check(mrsty)
        semgroups = load_semantic_groups()
        wanted = set(groups) if groups else None
        tmp: Dict[str, Set[str]] = {}
        for lineno, line in _lines(sty_path):
            if not line:
                continue
            f = line.split("|")
            if len(f) < 2:
                raise ValueError(Errors.E007.format(
                    path=sty_path, line=lineno, problem="expected CUI|TUI|STN|STY|ATUI|CVF|"))
            sg = semgroups.get(f[1])
            if sg is None:
                continue
            if wanted is not None and sg[0] not in wanted and sg[1] not in wanted:
                continue
            tmp.setdefault(f[0], set()).add(sg[1])
        cui_groups = {c: sorted(g) for c, g in tmp.items()}
    entries: List[Entry] = []
    # (cui, language rank) -> name: TS=P, STT=PF, ISPREF=Y atoms, and TS=P, ISPREF=Y ones
    first: Dict[Tuple[str, int], str] = {}
    second: Dict[Tuple[str, int], str] = {}
    rank = {lat: i for i, lat in enumerate(lang_list or [])}
    for lineno, line in _lines(p):
        if not line:
            continue
        f = line.split("|")
        if len(f) < 17 or len(f) > 19 or (len(f) == 19 and f[18]):
            raise ValueError(Errors.E007.format(
                path=p, line=lineno, problem=f"{len(f)} '|'-separated fields, MRCONSO.RRF has 18 "
                "(a '|' inside a name?)"))
        cui, lat, ts, stt, ispref, sab, name, suppress = (
            f[0], f[1], f[2], f[4], f[6], f[11], f[14], f[16])
        if suppress != "N" or (langs is not None and lat not in langs):
            continue
        if sab_set is not None and sab not in sab_set:
            continue
        if cui_groups is None:
            grps = ["UMLS"]
        else:
            grps = cui_groups.get(cui)
            if not grps:
                continue
        if not name.strip():
            raise ValueError(Errors.E002.format(path=p, line=lineno, code=cui))
        for g in grps:
            entries.append((cui, name, g))
        if ts == "P" and ispref == "Y":
            (first if stt == "PF" else second).setdefault((cui, rank.get(lat, 0)), name)
    preferred: Dict[str, str] = {}
    ranked = [(r, 0, c, n) for (c, r), n in first.items()]
    ranked += [(r, 1, c, n) for (c, r), n in second.items()]
    for _, _, cui, name in sorted(ranked, key=lambda x: x[:2]):  # stable: file order within
        preferred.setdefault(cui, name)
    kb = ConceptKB(entries, preferred=preferred, source=str(p))
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromUMLS.v1")
def kb_from_umls(mrconso: str, mrsty: Optional[str] = None,
                 languages: List[str] = ["ENG"], sabs: Optional[List[str]] = None,
                 groups: Optional[List[str]] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_umls`."""
    langs = list(languages) if languages else None
    return lambda: read_umls(mrconso, mrsty=mrsty, languages=langs, sabs=sabs, groups=groups)


#: the languages read from UMLS when none are given
UMLS_DEFAULT_LANGUAGES = ["ENG"]


def mrconso_in(folder: Path) -> Optional[Path]:
    """MRCONSO.RRF of a UMLS folder (the ``META`` folder or the release folder above it)."""
    for cand in (folder / "MRCONSO.RRF", folder / "META" / "MRCONSO.RRF"):
        if cand.exists():
            return cand
    return None


def _is_umls(p: Path) -> bool:
    if p.is_dir():
        return mrconso_in(p) is not None
    return "mrconso" in p.name.lower()


def _read(p: Path, group: Optional[str], languages: Optional[List[str]]) -> ConceptKB:
    mrconso = (mrconso_in(p) or p / "MRCONSO.RRF") if p.is_dir() else p
    return read_umls(mrconso, languages=UMLS_DEFAULT_LANGUAGES if languages is None else languages)


FORMAT = register(KBFormat("umls", rank=10, detect=_is_umls, read=_read, multilingual=True))
