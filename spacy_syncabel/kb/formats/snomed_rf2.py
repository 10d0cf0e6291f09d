"""SNOMED CT RF2 releases (description files, language refsets, concepts)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import spacy

from ...errors import Errors
from ..concept_kb import ConceptKB
from ._common import (Entry, KBFormat, PathLike, check_path as _check, finish as _finish,
                      group_kw, lines as _lines, register)
from ._languages import iso_languages

SNOMED_FSN = "900000000000003001"
SNOMED_SYNONYM = "900000000000013009"
SNOMED_PREFERRED = "900000000000548007"
_SEMTAG = re.compile(r"\s*\(([^()]+)\)\s*$")


def _rf2_rows(p: Path, needed: Iterable[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
    it = _lines(p)
    header: List[str] = []
    for lineno, line in it:
        header = line.split("\t")
        break
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(Errors.E001.format(
            path=p, line=1, problem=f"header lacks column(s) {', '.join(missing)}",
            expected=", ".join(needed)))
    n = len(header)
    for lineno, line in it:
        if not line:
            continue
        f = line.split("\t")
        if len(f) < n:
            raise ValueError(Errors.E001.format(
                path=p, line=lineno, problem=f"{len(f)} column(s) where {n} are needed",
                expected=", ".join(header)))
        if len(f) > n:
            raise ValueError(Errors.E195.format(path=p, line=lineno, n=len(f), n_header=n,
                                                header=", ".join(header)))
        yield lineno, dict(zip(header, f))


_RF2_KIND = re.compile(r"_(Snapshot|Full|Delta)(?=[-_.]|$)", re.IGNORECASE)
_RF2_KINDS = ("snapshot", "full", "delta")


def _rf2_kind(path: Path) -> Optional[str]:
    m = _RF2_KIND.search(path.name)
    return m.group(1).lower() if m else None


def _rf2_release(folder: Path) -> Tuple[List[Path], List[Path], List[Path], Optional[str]]:
    """(description files, concept files, language refset files, release kind) of a release
    folder, searched recursively: its Snapshot files when it has some, else Full, else Delta
    (files whose name tells no kind always count)."""
    def find(pattern: str) -> List[Path]:
        return sorted(f for f in folder.rglob(pattern) if f.is_file() and f.suffix == ".txt")

    desc = find("sct2_Description_*")
    if not desc:
        raise FileNotFoundError(Errors.E400.format(path=folder))
    kinds = {_rf2_kind(f) for f in desc}
    kind = next((k for k in _RF2_KINDS if k in kinds), None)

    def pick(files: List[Path]) -> List[Path]:
        return [f for f in files if _rf2_kind(f) in (kind, None)]

    return (pick(desc), pick(find("sct2_Concept_*")), pick(find("der2_cRefset_Language*")),
            kind)


def _rf2_latest(p: Path, needed: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """id -> ``(effectiveTime, line, *needed)`` of the id's latest row: the greatest
    ``effectiveTime`` (a Full release keeps every version of a component; a Snapshot one)."""
    latest: Dict[str, Tuple[str, ...]] = {}
    for lineno, row in _rf2_rows(p, ("id", "effectiveTime", *needed)):
        old = latest.get(row["id"])
        if old is None or row["effectiveTime"] >= old[0]:
            latest[row["id"]] = (row["effectiveTime"], str(lineno), *(row[c] for c in needed))
    return latest


def read_snomed_rf2(descriptions: PathLike, language_refset: Optional[PathLike] = None,
                    group: Optional[str] = None, languages: Optional[List[str]] = None,
                    concepts: Optional[PathLike] = None) -> ConceptKB:
    """SNOMED CT RF2, as released: ``descriptions`` is a release folder (the release root,
    its ``Snapshot`` or ``Full`` folder, or any folder holding the files; Snapshot files are
    read when there are both) or one description file (``sct2_Description_…txt``).

    Each component's latest row (greatest ``effectiveTime``: a Full release keeps every
    version) decides whether it is active. Descriptions of inactive concepts
    (``sct2_Concept_*``: found in the folder, beside a description file, or ``concepts``)
    are dropped. Every description file is read (one per language in national releases);
    ``languages`` keeps those ``languageCode``s (``es``, ``en``...; UMLS codes such as
    ``SPA`` are mapped; None: all). Language refsets (``der2_cRefset_Language*`` in the
    folder, or ``language_refset``): the descriptions of a language they cover are kept only
    if a refset accepts them, and a synonym a refset marks preferred (acceptabilityId
    900000000000548007) is the concept's preferred name, taken from the first language in
    ``languages`` that has one. Active synonyms are the names; a concept with no synonym
    gets its FSN without the semantic tag. Group: the FSN's semantic tag (``disorder``…)
    unless ``group`` is given (concepts without FSN: ``SNOMED``). ``kb.report["rf2"]`` says
    what was read and dropped."""
    p = _check(descriptions)
    kind: Optional[str] = None
    if p.is_dir():
        desc_files, concept_files, refset_files, kind = _rf2_release(p)
    else:
        desc_files = [p]
        kind = _rf2_kind(p)
        concept_files = sorted(f for f in p.parent.glob("sct2_Concept_*")
                               if f.is_file() and _rf2_kind(f) == kind)
        refset_files = []
    if concepts is not None:
        concept_files = [_check(concepts)]
    if language_refset is not None:
        refset_files = [_check(language_refset)]
    lang_list = iso_languages(languages)
    langs = set(lang_list) if lang_list else None
    rank = {lang: i for i, lang in enumerate(lang_list or [])}

    concept_active: Optional[Dict[str, bool]] = None
    if concept_files:
        concept_active = {}
        for cf in concept_files:
            for cid, row in _rf2_latest(cf, ("active",)).items():
                concept_active[cid] = row[2] == "1"
    accept: Dict[str, str] = {}  # description id -> acceptability (preferred wins)
    members: Set[str] = set()  # description ids any refset row names
    for rp in refset_files:
        latest = _rf2_latest(rp, ("active", "referencedComponentId", "acceptabilityId"))
        for _, _, active, did, acceptability in latest.values():
            members.add(did)
            if active == "1" and accept.get(did) != SNOMED_PREFERRED:
                accept[did] = acceptability

    rows: List[Tuple[str, str, str, str, str, Path]] = []  # id, concept, lang, type, term, file
    covered: Set[str] = set()  # languages the refsets cover
    stats = {"release": kind or "unknown", "description_files": [f.name for f in desc_files],
             "concept_files": len(concept_files), "language_refsets": len(refset_files),
             "inactive_descriptions": 0, "descriptions_of_inactive_concepts": 0,
             "not_accepted": 0, "other_languages": 0}
    for df in desc_files:
        latest = _rf2_latest(df, ("active", "conceptId", "languageCode", "typeId", "term"))
        for did, (_, line, active, code, lang, type_id, term) in latest.items():
            if did in members:
                covered.add(lang)
            if active != "1":
                stats["inactive_descriptions"] += 1
                continue
            if not term.strip():
                raise ValueError(Errors.E002.format(path=df, line=line, code=code))
            rows.append((did, code, lang, type_id, term, df))
    fsn: Dict[str, Tuple[int, str]] = {}  # concept -> (language rank, FSN)
    pref: Dict[str, Tuple[int, str]] = {}
    syns: List[Tuple[str, str]] = []
    for did, code, lang, type_id, term, df in rows:
        if concept_active is not None and not concept_active.get(code, False):
            stats["descriptions_of_inactive_concepts"] += 1
            continue
        if langs is not None and lang not in langs:
            stats["other_languages"] += 1
            continue
        if lang in covered and did not in accept:
            stats["not_accepted"] += 1
            continue
        r = rank.get(lang, 0)
        if type_id == SNOMED_FSN:
            if code not in fsn or r < fsn[code][0]:
                fsn[code] = (r, term)
        elif type_id == SNOMED_SYNONYM:
            syns.append((code, term))
            if accept.get(did) == SNOMED_PREFERRED and (code not in pref or r < pref[code][0]):
                pref[code] = (r, term)

    def group_of(code: str) -> str:
        if group:
            return group
        m = _SEMTAG.search(fsn[code][1]) if code in fsn else None
        return m.group(1) if m else "SNOMED"

    entries: List[Entry] = [(c, t, group_of(c)) for c, t in syns]
    with_syn = {c for c, _ in syns}
    for code, (_, term) in fsn.items():
        if code not in with_syn:
            entries.append((code, _SEMTAG.sub("", term) or term, group_of(code)))
    defs = {c: t for c, (_, t) in fsn.items()}  # FSN kept as a one-line definition
    kb = ConceptKB(entries, preferred={c: t for c, (_, t) in pref.items()}, definitions=defs,
                   source=str(p))
    kb.report["rf2"] = stats
    return _finish(kb, p)


@spacy.registry.misc("spacy_syncabel.KBFromSNOMEDRF2.v1")
def kb_from_snomed_rf2(descriptions: str, language_refset: Optional[str] = None,
                       group: Optional[str] = None, languages: Optional[List[str]] = None,
                       concepts: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_snomed_rf2` (``descriptions``: a release folder or a description
    file)."""
    return lambda: read_snomed_rf2(descriptions, language_refset=language_refset,
                                   group=group, languages=languages, concepts=concepts)


def _is_snomed_rf2(p: Path) -> bool:
    if p.is_dir():
        return any(p.rglob("sct2_Description*"))
    return "sct2_description" in p.name.lower()


FORMAT = register(KBFormat(
    "snomed_rf2", rank=20, detect=_is_snomed_rf2,
    read=lambda p, group, languages: read_snomed_rf2(p, languages=languages, **group_kw(group)),
    multilingual=True))
