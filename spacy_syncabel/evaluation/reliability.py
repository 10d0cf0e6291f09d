"""How far a linker's probabilities can be trusted: calibration error and precision/coverage.

The mentions are those Recall@1 counts (:func:`~.metrics.link_results`' rule: the first of each
``(doc, label, start, end)``, gold NO_CODE dropped, gold codes outside the KB kept as misses).
Each has its n-best (``ent._.syncabel``) and whether the top candidate hits by the paper's
exact rule, whatever the NIL threshold made of ``kb_id_``: the tables say what a threshold
*would* do.

* **ECE**: 10 equal-width bins of the top candidate's probability; the mean of
  ``|accuracy - mean probability|`` weighted by the bin's share of the mentions. Reported
  overall and per path (what ranked the n-best: ``lm``, ``dictionary``, ``retriever``).
* **Precision / coverage**: linking only the mentions whose probability is at least a
  threshold, precision = correct / linked and coverage = linked / all mentions (a mention
  without any candidate is never linked, but counts in "all").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .metrics import exclusion, hit, is_linkable

#: coverage levels of the precision/coverage table
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
NO_PATH = "none"  # a mention the linker gave no candidate


@dataclass
class ScoredMention:
    """One counted gold mention: its label, its n-best (``ent._.syncabel``) and whether the
    top candidate is right."""

    label: str
    nbest: List[Dict[str, Any]] = field(default_factory=list)
    correct: bool = False
    text: str = ""  # the mention's text as the linker saw it ("" when unknown)
    gold: str = ""  # its gold code
    doc: str = ""  # the document it is in ("" when unknown)

    @property
    def path(self) -> str:
        return str(self.nbest[0].get("path") or NO_PATH) if self.nbest else NO_PATH

    @property
    def score(self) -> float:
        return float(self.nbest[0]["score"]) if self.nbest else 0.0

    def probability(self) -> Optional[float]:
        """The top candidate's calibrated probability (None when it has none)."""
        if not self.nbest:
            return 0.0
        p = self.nbest[0].get("probability")
        return None if p is None else float(p)


def scored_mentions(items: Iterable[Tuple], nbests: Iterable[Optional[Sequence[Mapping]]],
                    kb: Any = None, texts: Optional[Sequence[str]] = None,
                    ) -> List[ScoredMention]:
    """The counted mentions of ``items`` (``(gold, predicted, label, doc, start, end)`` as
    ``evaluate`` builds them) with each one's n-best (``nbests``, in the same order) and
    (``texts``, in the same order) its text."""
    out: List[ScoredMention] = []
    seen: Set[Tuple] = set()
    items = list(items)
    texts = list(texts) if texts is not None else [""] * len(items)
    for item, nbest, text in zip(items, nbests, texts):
        gold, label = item[0], item[2]
        if len(item) >= 6:
            key = (str(item[3]), label, int(item[4]), int(item[5]))
            if key in seen:
                continue
            seen.add(key)
        if not is_linkable(gold) or exclusion(str(gold), kb) is not None:
            continue
        cands = [dict(c) for c in (nbest or [])]
        out.append(ScoredMention(label, cands, bool(cands) and hit(
            str(gold), [cands[0]["code"]], 1, kb=kb), str(text), str(gold),
            str(item[3]) if len(item) >= 6 else ""))
    return out


def ece(probs: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1] (0.0 when empty)."""
    n = len(probs)
    if not n:
        return 0.0
    total: List[float] = [0.0] * bins
    hits: List[float] = [0.0] * bins
    count: List[int] = [0] * bins
    for p, c in zip(probs, correct):
        b = min(bins - 1, max(0, int(float(p) * bins)))
        total[b] += float(p)
        hits[b] += bool(c)
        count[b] += 1
    return sum(abs(hits[b] - total[b]) for b in range(bins) if count[b]) / n


def ece_noise_floor(probs: Sequence[float], bins: int = 10, draws: int = 1000,
                    seed: int = 0) -> Dict[str, float]:
    """The ECE a perfectly calibrated probability scores on this many mentions: labels drawn
    ``draws`` times as Bernoulli(p) from ``probs`` themselves, their ECE's mean and 95th
    percentile, and the share of draws at most 0.05. An ECE near the mean is noise, not
    miscalibration (a few dozen mentions score 0.05-0.10 however well calibrated)."""
    import numpy as np

    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if not len(p):
        return {"mean": 0.0, "p95": 0.0, "share_at_most_0.05": 1.0}
    rng = np.random.default_rng(seed)
    labels = rng.random((draws, len(p))) < p
    which = np.minimum(bins - 1, (p * bins).astype(int))
    gaps = np.zeros(draws)
    for b in np.unique(which):
        cols = which == b
        gaps += np.abs(labels[:, cols].sum(axis=1) - p[cols].sum())
    sims = gaps / len(p)
    return {"mean": float(sims.mean()), "p95": float(np.percentile(sims, 95)),
            "share_at_most_0.05": float((sims <= 0.05).mean())}


def _curve(probs: Sequence[float], correct: Sequence[bool], n_all: int
           ) -> List[Tuple[float, int, int]]:
    """``(threshold, linked, correct)`` for every distinct probability, highest first."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    rows: List[Tuple[float, int, int]] = []
    good = 0
    for rank, i in enumerate(order, start=1):
        good += bool(correct[i])
        if rank == len(order) or probs[order[rank]] != probs[i]:
            rows.append((float(probs[i]), rank, good))
    return rows


def precision_coverage(probs: Sequence[float], correct: Sequence[bool], n_all: int,
                       coverages: Sequence[float] = COVERAGES) -> List[Dict[str, float]]:
    """For each coverage level, the highest threshold linking at least that share of the
    ``n_all`` mentions: ``{"coverage_target", "threshold", "coverage", "precision"}``."""
    curve = _curve(probs, correct, n_all)
    rows = []
    for target in coverages:
        row = next(((t, n, g) for t, n, g in curve if n >= target * n_all - 1e-9), None)
        if row is None:
            continue
        t, n, g = row
        rows.append({"coverage_target": float(target), "threshold": t,
                     "coverage": n / n_all if n_all else 0.0, "precision": g / n if n else 0.0})
    return rows


def curve_points(probs: Sequence[float], correct: Sequence[bool], n_all: int,
                 ) -> List[Dict[str, float]]:
    """Every point of the precision/coverage curve (threshold lowered step by step)."""
    return [{"threshold": t, "coverage": n / n_all if n_all else 0.0,
             "precision": g / n if n else 0.0} for t, n, g in _curve(probs, correct, n_all)]


def threshold_for_precision(probs: Sequence[float], correct: Sequence[bool], n_all: int,
                            target: float) -> Optional[Dict[str, float]]:
    """The lowest threshold whose precision over the mentions at or above it is at least
    ``target``: ``{"threshold", "precision", "coverage"}``; None when no threshold reaches it."""
    best = None
    for t, n, g in _curve(probs, correct, n_all):
        if n and g / n >= target - 1e-12:
            best = {"threshold": t, "precision": g / n, "coverage": n / n_all if n_all else 0.0}
    return best


def at_threshold(probs: Sequence[float], correct: Sequence[bool], n_all: int,
                 threshold: float) -> Dict[str, float]:
    """Precision and coverage when the mentions under ``threshold`` are NIL."""
    linked = [c for p, c in zip(probs, correct) if p >= threshold]
    n = len(linked)
    return {"threshold": float(threshold), "precision": sum(linked) / n if n else 0.0,
            "coverage": n / n_all if n_all else 0.0, "linked": n}


def reliability_report(mentions: Sequence[ScoredMention], *, bins: int = 10,
                       nil_threshold: Optional[float] = None) -> Dict[str, Any]:
    """ECE (overall and per path) of the probability the mentions carry (else of the raw
    score, ``"probability": "score"``), the mention counts per path, the precision/coverage
    table and curve and, with ``nil_threshold``, the operating point."""
    has_prob = any(m.nbest and m.nbest[0].get("probability") is not None for m in mentions)
    probs = [(m.probability() or 0.0) if has_prob else min(1.0, max(0.0, m.score))
             for m in mentions]
    correct = [m.correct for m in mentions]
    paths = [m.path for m in mentions]
    n_all = len(mentions)
    per_path: Dict[str, Dict[str, float]] = {}
    for path in sorted(set(paths)):
        idx = [i for i, p in enumerate(paths) if p == path]
        path_probs = [probs[i] for i in idx]
        per_path[path] = {"n_mentions": len(idx),
                          "ece": ece(path_probs, [correct[i] for i in idx], bins),
                          "ece_noise_floor": ece_noise_floor(path_probs, bins),
                          "accuracy": sum(correct[i] for i in idx) / len(idx),
                          "mean_probability": sum(path_probs) / len(idx)}
    report: Dict[str, Any] = {
        "probability": "probability" if has_prob else "score",
        "n_mentions": n_all, "ece": ece(probs, correct, bins),
        "ece_noise_floor": ece_noise_floor(probs, bins), "bins": bins,
        "per_path": per_path,
        "precision_coverage": precision_coverage(probs, correct, n_all),
        "curve": _thin(curve_points(probs, correct, n_all)),
    }
    if nil_threshold is not None:
        report["operating_point"] = at_threshold(probs, correct, n_all, nil_threshold)
    return report


def _thin(points: List[Dict[str, float]], keep: int = 200) -> List[Dict[str, float]]:
    """At most ``keep`` points of a curve, evenly spaced, the last one kept."""
    if len(points) <= keep:
        return points
    step = len(points) / keep
    return [points[int(i * step)] for i in range(keep)] + [points[-1]]


__all__ = ["COVERAGES", "ScoredMention", "at_threshold", "curve_points", "ece", "ece_noise_floor",
           "precision_coverage", "reliability_report", "scored_mentions",
           "threshold_for_precision"]
