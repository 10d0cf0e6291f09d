"""When the linker should answer NIL: a score threshold chosen on gold mentions.

End to end, a wrong code on a found span costs precision, while NIL costs nothing (the span
still counts for the NER). The linker's top score is not a calibrated probability (with
``rerank`` most wrong answers score between 0.2 and 0.8), so a threshold under which the
linker answers NIL raises linking precision at a small cost in recall. It is chosen on the
gold mentions of a split the end-to-end scores are not measured on: the threshold with the
best F1 of the answers kept (precision: right among answered; recall: right among all).
The scores come from :func:`spacy_syncabel.evaluation.abstention.gold_mention_scores`.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

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


__all__ = ["DEFAULT_THRESHOLDS", "abstention_curve", "choose_threshold"]
