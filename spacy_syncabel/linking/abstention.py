"""When the linker should answer NIL: a score threshold chosen on gold mentions.

End to end, a wrong code on a found span costs precision, while NIL costs nothing (the span
still counts for the NER). The linker's top score is not a calibrated probability (with
``rerank`` most wrong answers score between 0.2 and 0.8), so a threshold under which the
linker answers NIL raises linking precision at a small cost in recall. It is chosen on the
gold mentions of a split the end-to-end scores are not measured on: the threshold with the
best F1 of the answers kept (precision: right among answered; recall: right among all).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from ..types import CorpusDoc

DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))


def abstention_curve(scores: Sequence[float], correct: Sequence[bool],
                     thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> List[Dict[str, float]]:
    """Per threshold: the share of mentions answered and the precision, recall and F1 of the
    answers (a mention scoring under the threshold is left NIL)."""
    n = len(scores)
    out = []
    for t in thresholds:
        kept = [ok for s, ok in zip(scores, correct) if s >= t]
        right = sum(kept)
        p = right / len(kept) if kept else 0.0
        r = right / n if n else 0.0
        out.append({"threshold": t, "answered": len(kept) / n if n else 0.0, "p": p, "r": r,
                    "f": 2 * p * r / (p + r) if p + r else 0.0})
    return out


def choose_threshold(scores: Sequence[float], correct: Sequence[bool],
                     thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Tuple[float, List[Dict[str, float]]]:
    """The threshold of the best F1 of :func:`abstention_curve` (the lowest on a tie), and
    the curve."""
    curve = abstention_curve(scores, correct, thresholds)
    best = max(curve, key=lambda row: (round(row["f"], 6), -row["threshold"]))
    return best["threshold"], curve


def gold_mention_scores(nlp, corpus: Sequence[CorpusDoc], *, limit: int = 0,
                        batch_size: int = 64) -> Tuple[List[float], List[bool]]:
    """Link the gold mentions of ``corpus`` (their texts through the pipeline's sentence
    segmenters, the mentions set as entities) and return each linked mention's top score and
    whether its code is the gold one. ``limit``: at most this many mentions (0: all)."""
    from spacy.util import filter_spans

    from ..evaluation.evaluate import find_linker, sentence_segmenters
    from ..evaluation.metrics import canonical, is_linkable

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
            scores.append(float(cands[0]["score"]))
            correct.append(canonical(cands[0]["code"], kb) == gold[(e.start, e.end)])
    return scores, correct


__all__ = ["DEFAULT_THRESHOLDS", "abstention_curve", "choose_threshold", "gold_mention_scores"]
