"""JSONL corpora: one document a line, ``{"id", "text", "entities": [...], "sentences"?,
"annotated_labels"?}``."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List

import srsly

from ..errors import Errors
from ..textio import as_str, iter_lines, json_loads
from ..types import CorpusDoc, GoldMention
from ._util import PathLike, check_offsets, sort_mentions, to_int


def read_jsonl(path: PathLike) -> List[CorpusDoc]:
    """Read a UTF-8 JSONL corpus. Entities: ``{"start", "end", "label", "code"}`` (code
    optional and kept as written: composite codes are expected ``+``-joined already). Codes
    and labels must be JSON strings (integers are taken as their digits; a float or NaN is
    E194, never a code like ``"nan"``)."""
    path = Path(path)
    docs: List[CorpusDoc] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            obj = json_loads(line)
        except ValueError as err:
            raise ValueError(Errors.E042.format(
                path=path, where=where, problem=f"invalid JSON ({err}).")) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise ValueError(Errors.E042.format(
                path=path, where=where,
                problem="expected an object with a string field 'text'."))
        docs.append(_doc(path, lineno, obj))
    return docs


def _doc(path: Path, lineno: int, obj: dict) -> CorpusDoc:
    where = f"line {lineno}"
    text = obj["text"]
    mentions = []
    ents = obj.get("entities", obj.get("mentions", [])) or []
    if not isinstance(ents, list):
        raise ValueError(Errors.E042.format(path=path, where=where,
                                            problem="'entities' must be a list of objects."))
    for ent in ents:
        try:
            start, end = ent["start"], ent["end"]
        except (KeyError, TypeError, IndexError):
            raise ValueError(Errors.E042.format(
                path=path, where=where,
                problem=f"entity {ent!r} needs 'start' and 'end'.")) from None
        start = to_int(path, where, start, "start")
        end = to_int(path, where, end, "end")
        check_offsets(path, where, start, end, text)
        code = as_str(ent.get("code"), "entity 'code'", path, lineno, allow_none=True)
        label = as_str(ent.get("label", ""), "entity 'label'", path, lineno)
        mentions.append(GoldMention(start, end, label, code))
    sentences = obj.get("sentences")
    if sentences is not None:
        if not isinstance(sentences, list) or not all(
                isinstance(x, list) and len(x) == 2 for x in sentences):
            raise ValueError(Errors.E042.format(
                path=path, where=where,
                problem="'sentences' must be a list of [start, end] pairs."))
        sentences = [(to_int(path, where, s, "sentence start"),
                      to_int(path, where, e, "sentence end")) for s, e in sentences]
        for s, e in sentences:
            if not 0 <= s <= e <= len(text):
                raise ValueError(Errors.E041.format(path=path, where=where + " (sentence)",
                                                    start=s, end=e, length=len(text)))
    layers = obj.get("annotated_labels")
    if layers is not None:
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ValueError(Errors.E042.format(
                path=path, where=where,
                problem="'annotated_labels' must be a list of label strings (or absent)."))
        layers = sorted(set(layers))
    doc_id = as_str(obj.get("id"), "'id'", path, lineno, allow_none=True)
    return CorpusDoc(id=doc_id if doc_id is not None else f"{path.stem}-{lineno}",
                     text=text, mentions=sort_mentions(mentions), sentences=sentences,
                     annotated_labels=layers)


def doc_to_dict(doc: CorpusDoc) -> dict:
    obj = {
        "id": doc.id,
        "text": doc.text,
        "entities": [{"start": m.start, "end": m.end, "label": m.label, "code": m.code}
                     for m in doc.mentions],
    }
    if doc.sentences is not None:
        obj["sentences"] = [[int(s), int(e)] for s, e in doc.sentences]
    if doc.annotated_labels is not None:
        obj["annotated_labels"] = sorted(doc.annotated_labels)
    return obj


def write_jsonl(docs: Iterable[CorpusDoc], path: PathLike) -> None:
    """Write documents in the format :func:`read_jsonl` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(path, (doc_to_dict(d) for d in docs))
