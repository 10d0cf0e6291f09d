"""Where end-to-end linking loses: the NER's spans against the gold mentions, and how well the
linker links the spans that match a gold mention exactly and those that only overlap one.

Every predicted entity of a type the document was annotated for is one of: ``exact`` (a gold
mention's span and type), ``exact_other_type`` (its span, another type), ``overlap`` (overlaps
a gold mention, other boundaries) or ``spurious``; every gold mention is ``found`` (exactly),
``overlapped`` (only by entities with other boundaries) or ``missed``. Linking accuracy is
counted on ``exact`` spans (the code is the gold one) and on ``overlap`` spans (the code is
that of the gold mention it overlaps most), so the end-to-end loss splits into recognition
(missed, overlapped, spurious) and linking given a right span.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..types import CorpusDoc
from .end_to_end import entity_type
from .metrics import canonical, is_linkable


KEYS = ("exact", "exact_linked", "exact_nil", "exact_other_type", "exact_other_type_linked",
        "exact_other_type_nil", "overlap", "overlap_linked", "overlap_nil", "spurious", "gold",
        "gold_found", "gold_overlapped", "gold_missed")


def _code(code: Optional[str], kb) -> Optional[str]:
    return canonical(code, kb) if code and is_linkable(code) else None


def span_errors(docs: Sequence[Doc], corpus: Sequence[CorpusDoc], kb,
                label_map: Mapping[str, Optional[str]]) -> Dict[str, Any]:
    """Counts of the categories above over ``docs`` (the pipeline's output for the texts of
    ``corpus``), with ``exact_link_accuracy`` and ``overlap_link_accuracy``."""
    c: Counter = Counter({k: 0 for k in KEYS})
    for cd, doc in zip(corpus, docs):
        scored = None if cd.annotated_labels is None else {
            entity_type(lab, label_map) for lab in cd.annotated_labels}
        gold: Dict[Tuple[int, int], Tuple[str, Optional[str]]] = {
            (m.start, m.end): (entity_type(m.label, label_map), _code(m.code, kb))
            for m in cd.mentions}
        found, touched = set(), set()
        for e in doc.ents:
            t = entity_type(e.label_, label_map)
            if scored is not None and t not in scored:
                continue
            code = _code(e.kb_id_, kb)
            span = (e.start_char, e.end_char)
            if span in gold:
                g_type, g_code = gold[span]
                kind = "exact" if g_type == t else "exact_other_type"
                c[kind] += 1
                c[f"{kind}_linked"] += code == g_code and code is not None
                c[f"{kind}_nil"] += code is None
                found.add(span)
                continue
            over = [g for g in gold if g[0] < e.end_char and e.start_char < g[1]]
            if not over:
                c["spurious"] += 1
                continue
            best = max(over, key=lambda g: min(g[1], e.end_char) - max(g[0], e.start_char))
            touched.update(over)
            c["overlap"] += 1
            c["overlap_linked"] += code == gold[best][1] and code is not None
            c["overlap_nil"] += code is None
        c["gold"] += len(gold)
        c["gold_found"] += len(found)
        c["gold_overlapped"] += len(touched - found)
        c["gold_missed"] += len(set(gold) - found - touched)
    out: Dict[str, Any] = dict(c)
    for kind in ("exact", "overlap"):
        out[f"{kind}_link_accuracy"] = c[f"{kind}_linked"] / c[kind] if c[kind] else 0.0
    return out


__all__ = ["span_errors"]
