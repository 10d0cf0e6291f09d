"""brat standoff folders: ``name.txt`` + ``name.ann`` (CANTEMIST, QUAERO).

Codes come from ``#N\\tAnnotatorNotes Tn\\tCODE`` lines (several codes in one note, or
several notes for one entity, are joined with ``+``) or from normalization lines
``Nn\\tReference Tn DB:ID``. Discontinuous entities (``start end;start end``) get the
covering span (min start .. max end) because spaCy entities must be contiguous; their
fragments are checked against the entity text joined with single spaces.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import Errors
from ..textio import iter_lines
from ..types import CorpusDoc, GoldMention
from ._util import (MismatchLog, PathLike, check_offsets, normalize_code, read_text,
                    same_text, sort_mentions, to_int)


def _parse_ann(ann_path: Path, text: str, log: MismatchLog, stats: Dict[str, int]
               ) -> List[GoldMention]:
    ents: Dict[str, Tuple[int, int, str]] = {}
    codes: Dict[str, List[str]] = {}
    for lineno, line in iter_lines(ann_path):
        if not line.strip():
            continue
        where = f"{ann_path.name} line {lineno}"
        cols = line.split("\t")
        kind = cols[0][:1]
        if kind == "T":
            if len(cols) < 2:
                raise ValueError(Errors.E042.format(path=ann_path, where=where,
                                                    problem="a T line needs 'Tn\\tLABEL start end\\ttext'."))
            label, _, span_str = cols[1].partition(" ")
            ann_text = cols[2] if len(cols) > 2 else ""
            frags = []
            for frag in span_str.split(";"):
                bounds = frag.split()
                if len(bounds) != 2:
                    raise ValueError(Errors.E042.format(
                        path=ann_path, where=where, problem=f"bad offsets '{span_str}'."))
                s, e = (to_int(ann_path, where, b, "offset") for b in bounds)
                check_offsets(ann_path, where, s, e, text)
                frags.append((s, e))
            found = " ".join(text[s:e] for s, e in frags)
            if found != ann_text and not same_text(found, ann_text):
                log.add(f"{ann_path.name} {cols[0]}", ann_text, found)
                continue
            if len(frags) > 1:
                stats["discontinuous"] += 1
            ents[cols[0]] = (min(s for s, _ in frags), max(e for _, e in frags), label)
        elif kind == "#":
            parts = cols[1].split() if len(cols) > 1 else []
            if len(parts) >= 2 and parts[0] == "AnnotatorNotes" and len(cols) > 2:
                codes.setdefault(parts[1], []).append(cols[2])
        elif kind == "N":
            parts = cols[1].split() if len(cols) > 1 else []
            if len(parts) >= 3 and parts[0] == "Reference":
                codes.setdefault(parts[1], []).append(parts[2])
        # R (relations), E (events), A/M (attributes) are ignored
    mentions = []
    for tid, (s, e, label) in ents.items():
        code: Optional[str] = None
        if tid in codes:
            code = normalize_code(" ".join(codes[tid]))
            if code is not None and "+" in code:
                stats["composite"] += 1
        mentions.append(GoldMention(s, e, label, code))
    return mentions


def read_brat(path: PathLike, recursive: bool = True) -> List[CorpusDoc]:
    """Read every ``.ann`` file (with its ``.txt``) under ``path``; doc ids are the file paths
    relative to ``path`` without suffix. Entities whose text does not match the ``.txt``
    file are skipped and reported (W004)."""
    path = Path(path)
    anns = sorted(path.rglob("*.ann") if recursive else path.glob("*.ann"))
    log = MismatchLog(path)
    stats = {"discontinuous": 0, "composite": 0}
    docs = []
    for ann in anns:
        txt = ann.with_suffix(".txt")
        if not txt.exists():
            raise ValueError(Errors.E042.format(
                path=path, where=ann.name,
                problem=f"no text file {txt.name} beside it. Put the .txt next to the .ann."))
        text = read_text(txt)
        mentions = _parse_ann(ann, text, log, stats)
        doc_id = ann.relative_to(path).with_suffix("").as_posix()
        docs.append(CorpusDoc(id=doc_id, text=text, mentions=sort_mentions(mentions)))
    log.warn()
    return docs
