"""Document-level bootstrap of Recall@1, as the SynCABEL reference computes it.

The reference (``error_analysis.compute_metrics_simple`` with ``bootstrap=True``):

* the unit is the document: the distinct document ids of the scored mentions, sorted;
* each of the ``n`` resamples draws as many documents as there are, with replacement
  (multinomial counts per document, ``numpy.random.default_rng(seed)``, seed 42 by default);
* a resample's Recall@1 is its hits over its mentions (a resample without mentions of a label
  counts 0 for that label); overall and per label use the same resamples;
* the interval is the percentile one: ``numpy.quantile`` at 2.5% and 97.5% (linear).

:func:`paired_difference` draws the same resamples for two systems scored on the same gold
mentions and gives the two-sided p-value of their Recall@1 difference.
"""
from __future__ import annotations

from typing import Dict, Protocol, Sequence, Tuple

import numpy as np

from ..errors import Errors


class LinkResult(Protocol):
    """What the bootstrap reads of a :class:`~.metrics.LinkResult`: its document, its label
    and whether it hits at k."""

    doc: str
    label: str

    def hits(self, k: int) -> bool: ...

CI = 0.95
OVERALL = "overall"


def _check(n: int) -> None:
    if int(n) < 1:
        raise ValueError(Errors.E360.format(n=n))


def _per_doc(results: Sequence[LinkResult], docs: np.ndarray, labels: Sequence[str]
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Hits and mentions per (document, column): column 0 is overall, then one per label of
    ``labels``."""
    index = {d: i for i, d in enumerate(docs.tolist())}
    column = {lab: j + 1 for j, lab in enumerate(labels)}
    hits = np.zeros((len(docs), len(labels) + 1))
    total = np.zeros_like(hits)
    for r in results:
        i = index[r.doc]
        h = float(r.hits(1))
        for j in (0, column[r.label]) if r.label in column else (0,):
            hits[i, j] += h
            total[i, j] += 1
    return hits, total


def _weights(n_docs: int, n: int, seed: int) -> np.ndarray:
    """``n`` x ``n_docs`` multinomial counts: each row is one resample of the documents."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_docs, [1.0 / n_docs] * n_docs, size=int(n))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(num / den, nan=0.0)


def recall_cis(results: Sequence[LinkResult], n: int = 1000, seed: int = 42, ci: float = CI,
               ) -> Dict[str, Tuple[float, float]]:
    """Percentile ``ci`` intervals of Recall@1, ``{"overall": (low, high), label: ...}``, from
    ``n`` document resamples (see the module docstring)."""
    _check(n)
    if not results:
        return {}
    docs = np.unique(np.array([r.doc for r in results], dtype=object))
    labels = sorted({r.label for r in results})
    hits, total = _per_doc(results, docs, labels)
    w = _weights(len(docs), n, seed)
    boot = _ratio(w @ hits, w @ total)
    alpha = (1 - ci) / 2
    low = np.quantile(boot, alpha, axis=0)
    high = np.quantile(boot, 1 - alpha, axis=0)
    names = [OVERALL] + labels
    return {name: (float(low[j]), float(high[j])) for j, name in enumerate(names)}


def add_recall_cis(report: Dict[str, object], results: Sequence[LinkResult], n: int,
                   seed: int = 42, ci: float = CI) -> Dict[str, object]:
    """Add ``recall@1_ci`` (``[low, high]``) overall and per label to a
    :func:`~.metrics.recall_report`, and ``bootstrap`` (how they were drawn)."""
    cis = recall_cis(results, n, seed, ci)
    if OVERALL in cis:
        report["recall@1_ci"] = list(cis[OVERALL])
    per_label = report.get("per_label") or {}
    for label, block in per_label.items():  # type: ignore[union-attr]
        if label in cis:
            block["recall@1_ci"] = list(cis[label])
    report["bootstrap"] = {"resamples": int(n), "seed": int(seed), "confidence": ci,
                           "unit": "document",
                           "n_documents": len({r.doc for r in results})}
    return report


def paired_difference(a: Sequence[LinkResult], b: Sequence[LinkResult], n: int = 1000,
                      seed: int = 42, ci: float = CI) -> Dict[str, object]:
    """Recall@1 of ``a`` minus that of ``b`` (the same gold mentions, in the same order), its
    percentile interval and two-sided paired bootstrap p-value: both systems are scored on the
    same ``n`` document resamples; p = 2 x the smaller share of resampled differences on either
    side of 0 (at most 1)."""
    _check(n)
    if len(a) != len(b) or any(x.doc != y.doc or x.gold != y.gold for x, y in zip(a, b)):
        raise ValueError(Errors.E361)
    if not a:
        raise ValueError(Errors.E362)
    docs = np.unique(np.array([r.doc for r in a], dtype=object))
    hits_a, total = _per_doc(a, docs, [])
    hits_b, _ = _per_doc(b, docs, [])
    w = _weights(len(docs), n, seed)
    den = w @ total[:, 0]
    diff = _ratio(w @ hits_a[:, 0], den) - _ratio(w @ hits_b[:, 0], den)
    r_a = hits_a[:, 0].sum() / total[:, 0].sum()
    r_b = hits_b[:, 0].sum() / total[:, 0].sum()
    alpha = (1 - ci) / 2
    p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return {"recall@1_a": float(r_a), "recall@1_b": float(r_b),
            "difference": float(r_a - r_b),
            "difference_ci": [float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))],
            "p_value": p, "n_mentions": len(a), "n_documents": len(docs),
            "bootstrap": {"resamples": int(n), "seed": int(seed), "confidence": ci,
                          "unit": "document"}}


__all__ = ["recall_cis", "add_recall_cis", "paired_difference"]
