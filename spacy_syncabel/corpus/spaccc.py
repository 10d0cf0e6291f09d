"""SPACCC training TSV: ``filename, label, start_span, end_span, span, code[, semantic_rel]``
with the texts in ``texts/{filename}.txt`` beside it. One :class:`CorpusDoc` per file.

``semantic_rel`` is not used. SPACCC joins three annotation layers (DisTEMIST diseases,
SympTEMIST symptoms, MedProcNER procedures) that not every document has: in the public
training split procedures are annotated in 250 of the 750 documents. A document's
``annotated_labels`` are the labels it has mentions of, so an NER is never taught that an
unannotated layer's mentions are not mentions, and scoring ignores predictions there. Rows whose text at the offsets is not ``span`` (22 rows of the
public train.tsv) are skipped and reported with W004: they are not trusted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from ..errors import Errors
from ..types import CorpusDoc, GoldMention
from ..tsv import iter_tsv, tsv_header
from ._util import (MismatchLog, PathLike, check_offsets, normalize_code, read_text,
                    sort_mentions, to_int)

SPACCC_COLUMNS = ("filename", "label", "start_span", "end_span", "span", "code")


def read_spaccc(path: PathLike, texts_dir: Optional[PathLike] = None) -> List[CorpusDoc]:
    """Read a SPACCC train-style TSV; ``texts_dir`` defaults to ``texts/`` beside it."""
    path = Path(path)
    texts_dir = Path(texts_dir) if texts_dir is not None else path.parent / "texts"
    cols = tsv_header(path)
    missing = [c for c in SPACCC_COLUMNS if c not in cols]
    if missing:
        raise ValueError(Errors.E042.format(path=path, where="header",
                                            problem=f"missing column(s) {missing}."))
    if not texts_dir.is_dir():
        raise FileNotFoundError(Errors.E043.format(path=texts_dir))
    log = MismatchLog(path)
    texts: Dict[str, str] = {}
    mentions: Dict[str, List[GoldMention]] = {}
    for lineno, row in iter_tsv(path):
        where = f"line {lineno}"
        name = row["filename"].strip()
        if name.endswith(".txt"):
            name = name[:-4]
        if name not in texts:
            txt = texts_dir / f"{name}.txt"
            if not txt.exists():
                raise ValueError(Errors.E042.format(
                    path=path, where=where,
                    problem=f"text file {txt} not found. Pass `texts_dir=`."))
            texts[name] = read_text(txt)
            mentions[name] = []
        text = texts[name]
        start = to_int(path, where, row["start_span"], "start_span")
        end = to_int(path, where, row["end_span"], "end_span")
        check_offsets(path, where, start, end, text)
        if text[start:end] != row["span"]:
            log.add(f"{where} ({name} {start}-{end})", row["span"], text[start:end])
            continue
        mentions[name].append(GoldMention(start, end, row["label"].strip(),
                                          normalize_code(row["code"])))
    log.warn()
    return [CorpusDoc(id=name, text=texts[name], mentions=sort_mentions(mentions[name]),
                      annotated_labels=sorted({m.label for m in mentions[name]}))
            for name in texts]
