"""Readers that build a :class:`ConceptKB` from common KB formats, and their
registered, lazy spaCy loaders. Each format is a module of :mod:`.formats`; this module
reads a file in any of them (:func:`read_file`) and keeps every reader importable from here.

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

import warnings
from pathlib import Path
from typing import Callable, List, Optional

import spacy

from ..errors import Errors, Warnings
from .concept_kb import ConceptKB
from .formats import FORMATS, detect_format, get_format
from .formats._common import PathLike
from .formats._languages import iso_languages, umls_languages
# every format's reader and registered loader, importable from here
from .formats.cie_o3 import kb_from_cie_o3, read_cie_o3
from .formats.jsonl import kb_from_jsonl, read_jsonl
from .formats.medic import kb_from_medic, medic_code, read_medic
from .formats.obo import default_hpo_path, kb_from_obo, read_obo
from .formats.snomed_rf2 import (SNOMED_FSN, SNOMED_PREFERRED, SNOMED_SYNONYM, kb_from_snomed_rf2,
                                 read_snomed_rf2)
from .formats.tsv import kb_from_tsv, read_tsv
from .formats.umls import UMLS_DEFAULT_LANGUAGES, kb_from_umls, load_semantic_groups, read_umls

__all__ = [
    "read_tsv", "read_jsonl", "read_medic", "read_cie_o3", "read_obo", "read_umls",
    "read_snomed_rf2", "read_file", "load_semantic_groups",
    "kb_from_tsv", "kb_from_jsonl", "kb_from_medic", "kb_from_cie_o3", "kb_from_obo",
    "kb_from_umls", "kb_from_snomed_rf2", "kb_from_file", "FORMATS", "umls_languages",
    "iso_languages", "UMLS_DEFAULT_LANGUAGES", "medic_code", "default_hpo_path",
    "SNOMED_FSN", "SNOMED_SYNONYM", "SNOMED_PREFERRED", "detect_format",
]


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
    fmt = get_format(detect_format(p) if format == "auto" else format)
    if fmt is None:
        raise ValueError(Errors.E004.format(path=p, formats=FORMATS))
    if languages is not None and not fmt.multilingual:
        warnings.warn(Warnings.W400.format(path=p, format=fmt.name, languages=list(languages)))
    return fmt.read(p, group, languages)


@spacy.registry.misc("spacy_syncabel.KBFromFile.v1")
def kb_from_file(path: str, format: str = "auto", group: Optional[str] = None,
                 languages: Optional[List[str]] = None) -> Callable[[], ConceptKB]:
    """Lazy :func:`read_file` (``languages``: UMLS/SNOMED CT languages, None: English UMLS
    atoms, every SNOMED CT description file)."""
    langs = list(languages) if languages is not None else None
    return lambda: read_file(path, format=format, group=group, languages=langs)
