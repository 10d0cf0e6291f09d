"""One output record per linked note, and its brat standoff rendering."""
from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, List, Optional, Sequence

from spacy.tokens import Doc, Span

from ..types import COMPOSITE_SEP, NIL, NO_CODE
from .extensions import extension_values

DIGITS = 6  # scores are rounded: batches of other sizes pad differently (last-digit noise)


def _round(value: Any) -> Any:
    return round(float(value), DIGITS) if isinstance(value, (int, float)) else value


def _candidate(cand: Dict[str, Any]) -> Dict[str, Any]:
    return {key: _round(value) if key in ("score", "logprob", "similarity", "probability")
            else value
            for key, value in cand.items()}


def doc_to_record(doc: Doc, note_id: str, kb: Any = None, *, span_attrs: Sequence[str] = (),
                  doc_attrs: Sequence[str] = (), spans_key: Optional[str] = None,
                  ) -> Dict[str, Any]:
    """``{"id", "entities": [{"start", "end", "label", "text", "code", "name", "score",
    "probability", "n_best"}]}`` for a processed doc. ``code`` is ``ent.kb_id_`` (NIL when
    unlinked), ``name`` those of the best candidate when it gave the code (else the KB's
    preferred name), ``score`` and ``probability`` the best candidate's (``probability`` is
    None unless the linker is calibrated), ``n_best`` is ``ent._.syncabel``; ``reason`` (only when set) says why a
    decoded mention is NIL (``ent._.syncabel_nil_reason``). With ``span_attrs`` each entity
    gets ``"attrs": {name: ent._.name}``, with ``doc_attrs`` the record gets
    ``"attrs": {name: doc._.name}`` (as JSON: :mod:`~spacy_syncabel.notes.extensions`).
    ``spans_key``: the entities are the spans of ``doc.spans[spans_key]`` (a linker that links
    a span group, nested spans included), not ``doc.ents``."""
    entities: List[Dict[str, Any]] = []
    has_ext = Span.has_extension("syncabel")
    has_reason = Span.has_extension("syncabel_nil_reason")
    spans = doc.ents if spans_key is None else (
        doc.spans[spans_key] if spans_key in doc.spans else [])
    for ent in spans:
        nbest = (ent._.syncabel if has_ext else None) or []
        code = ent.kb_id_ or NIL
        top = nbest[0] if nbest else None
        name: Optional[str] = None
        if top is not None and top.get("code") == code:
            name = top.get("name")
        elif kb is not None and code in kb:
            name = kb.preferred_name(code)
        entities.append({
            "start": ent.start_char, "end": ent.end_char, "label": ent.label_,
            "text": ent.text, "code": code, "name": name,
            "score": _round(top["score"]) if top is not None else None,
            "probability": _round(top.get("probability")) if top is not None else None,
            "n_best": [_candidate(c) for c in nbest],
        })
        reason = ent._.syncabel_nil_reason if has_reason else None
        if reason:  # NIL although decoded, e.g. "non-finite model scores"
            entities[-1]["reason"] = reason
        if span_attrs:
            entities[-1]["attrs"] = extension_values(ent, span_attrs)
    record: Dict[str, Any] = {"id": note_id, "entities": entities}
    if doc_attrs:
        record["attrs"] = extension_values(doc, doc_attrs)
    return record


def is_linked(code: Optional[str]) -> bool:
    return bool(code) and code not in (NIL, NO_CODE)


_SAFE = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


def safe_stem(note_id: str) -> str:
    """A relative file path (without suffix) for a note id: the id itself when it is a plain
    relative path, else a sanitized form with a short hash (ids stay distinct)."""
    parts = note_id.split("/")
    if _SAFE.fullmatch(note_id) and not any(p in (".", "..") for p in parts):
        return note_id
    digest = hashlib.sha1(note_id.encode("utf8", "surrogatepass")).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", note_id)[:80].lstrip(".") + "-" + digest


def _one_line(text: str) -> str:
    return re.sub(r"\s", " ", text)


def _fragments(text: str, start: int, end: int) -> str:
    """brat offsets of an entity; an entity spanning line breaks becomes fragments."""
    frags, pos = [], start
    for piece in re.split(r"(\n)", text[start:end]):
        if piece and piece != "\n" and piece.strip():
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            frags.append(f"{pos + lead} {pos + len(piece) - trail}")
        pos += len(piece)
    return ";".join(frags) or f"{start} {end}"


def record_to_brat(record: Dict[str, Any], text: str, db: str = "KB") -> str:
    """The ``.ann`` standoff of a record: ``Tn`` entity lines, and for each linked code a
    normalization line ``Nn<TAB>Reference Tn DB:CODE<TAB>name`` (one per part of a
    composite code)."""
    lines: List[str] = []
    n = 0
    for i, ent in enumerate(record["entities"], start=1):
        frags = _fragments(text, ent["start"], ent["end"])
        shown = " ".join(text[int(s):int(e)] for s, e in (f.split() for f in frags.split(";")))
        label = re.sub(r"\s", "_", ent["label"]) or "ENTITY"
        lines.append(f"T{i}\t{label} {frags}\t{_one_line(shown)}")
        if not is_linked(ent.get("code")):
            continue
        names = (ent.get("name") or "").split("<SEP>")
        for j, code in enumerate(ent["code"].split(COMPOSITE_SEP)):
            n += 1
            name = names[j] if j < len(names) else ""
            lines.append(f"N{n}\tReference T{i} {db}:{code}\t{_one_line(name)}")
    return "".join(line + "\n" for line in lines)


def render_doc(doc: Doc, links: Any = None, kb: Any = None,
               spans_key: Optional[str] = None) -> str:
    """HTML (displaCy, a ``<div>``) of a doc processed by a pipeline with ``syncabel_linker``:
    each entity (``spans_key``: each span of that group) with its code and name, linked to
    ``links`` (a ``visualize.KBLinks``)."""
    from ..visualize import render_record

    record = doc_to_record(doc, doc.user_data.get("title", ""), kb, spans_key=spans_key)
    return render_record(record, doc.text, links)
