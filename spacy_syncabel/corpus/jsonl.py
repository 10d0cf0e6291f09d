"""JSONL corpora: one document a line, ``{"id", "text", "entities": [...], "sentences"?}``."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List

import srsly

from ..errors import Errors
from ..types import CorpusDoc, GoldMention
from ._util import PathLike, check_offsets, sort_mentions, to_int


def read_jsonl(path: PathLike) -> List[CorpusDoc]:
    """Read a JSONL corpus. Entities: ``{"start", "end", "label", "code"}`` (code optional and
    kept as written: composite codes are expected ``+``-joined already)."""
    path = Path(path)
    docs: List[CorpusDoc] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"line {lineno}"
            try:
                obj = srsly.json_loads(line)
            except ValueError as err:
                raise ValueError(Errors.E042.format(
                    path=path, where=where, problem=f"invalid JSON ({err}).")) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError(Errors.E042.format(
                    path=path, where=where,
                    problem="expected an object with a string field 'text'."))
            text = obj["text"]
            mentions = []
            for ent in obj.get("entities", obj.get("mentions", [])) or []:
                try:
                    start, end = ent["start"], ent["end"]
                except (KeyError, TypeError):
                    raise ValueError(Errors.E042.format(
                        path=path, where=where,
                        problem=f"entity {ent!r} needs 'start' and 'end'.")) from None
                start = to_int(path, where, start, "start")
                end = to_int(path, where, end, "end")
                check_offsets(path, where, start, end, text)
                code = ent.get("code")
                mentions.append(GoldMention(start, end, str(ent.get("label", "")),
                                            str(code) if code is not None else None))
            sentences = obj.get("sentences")
            if sentences is not None:
                sentences = [(to_int(path, where, s, "sentence start"),
                              to_int(path, where, e, "sentence end")) for s, e in sentences]
                for s, e in sentences:
                    if not 0 <= s <= e <= len(text):
                        raise ValueError(Errors.E041.format(path=path, where=where + " (sentence)",
                                                            start=s, end=e, length=len(text)))
            doc_id = obj.get("id")
            docs.append(CorpusDoc(id=str(doc_id) if doc_id is not None else f"{path.stem}-{lineno}",
                                  text=text, mentions=sort_mentions(mentions), sentences=sentences))
    return docs


def doc_to_dict(doc: CorpusDoc) -> dict:
    obj = {
        "id": doc.id,
        "text": doc.text,
        "entities": [{"start": m.start, "end": m.end, "label": m.label, "code": m.code}
                     for m in doc.mentions],
    }
    if doc.sentences is not None:
        obj["sentences"] = [[int(s), int(e)] for s, e in doc.sentences]
    return obj


def write_jsonl(docs: Iterable[CorpusDoc], path: PathLike) -> None:
    """Write documents in the format :func:`read_jsonl` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(path, (doc_to_dict(d) for d in docs))
