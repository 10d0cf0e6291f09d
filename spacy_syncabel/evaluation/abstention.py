"""Each gold mention's top linker score and whether it is right: what the NIL threshold is
chosen on (:func:`spacy_syncabel.linking.abstention.choose_threshold`)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from ..types import CorpusDoc


def gold_mention_scores(nlp, corpus: Sequence[CorpusDoc], *, limit: int = 0,
                        batch_size: int = 64,
                        key: str = "score") -> Tuple[List[float], List[bool]]:
    """Link the gold mentions of ``corpus`` (their texts through the pipeline's sentence
    segmenters, the mentions set as entities) and return each linked mention's top ``key``
    (``score``, or ``probability`` with a fitted calibrator) and whether its code is the gold
    one. ``limit``: at most this many mentions (0: all)."""
    from spacy.util import filter_spans

    from ..pipes import find_linker, sentence_segmenters
    from .metrics import canonical, is_linkable

    linker = find_linker(nlp)
    kb = linker.kb
    docs, golds, n = [], [], 0
    for cd in corpus:
        doc = nlp.make_doc(cd.text)
        spans = {}
        for m in cd.mentions:
            span = doc.char_span(m.start, m.end, label=m.label, alignment_mode="expand")
            if span is not None and is_linkable(m.code):
                spans[(span.start, span.end)] = (span, canonical(m.code, kb))
        doc.ents = filter_spans([s for s, _ in spans.values()])
        golds.append({(e.start, e.end): spans[(e.start, e.end)][1] for e in doc.ents})
        docs.append(doc)
        n += len(doc.ents)
        if limit and n >= limit:
            break
    for proc in sentence_segmenters(nlp):
        docs = [proc(d) for d in docs]
    scores: List[float] = []
    correct: List[bool] = []
    for doc, gold in zip(linker.pipe(docs, batch_size=batch_size), golds):
        for e in doc.ents:
            cands: List[Dict[str, Any]] = e._.syncabel or []
            if not cands:
                continue
            if cands[0].get(key) is None:
                continue
            scores.append(float(cands[0][key]))
            correct.append(canonical(cands[0]["code"], kb) == gold[(e.start, e.end)])
    return scores, correct


__all__ = ["gold_mention_scores"]
