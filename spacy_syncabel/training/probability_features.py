"""Fitting the pooled feature model of the probabilities, and choosing it over the per-path
maps by cross-validation on dev.

:func:`fit_feature_model`: scikit-learn's L2 logistic regression on the columns of
:class:`~..linking.probability_features.FeatureModel` (each feature standardised on its path's
dev mentions); a path with fewer than 30 dev mentions (SPACCC's LM path: 22) gets its
indicator only, a base rate shrunk toward all paths' by the penalty (with its three features,
fitted on 22 mentions, its test ECE was 0.168 against 0.119 for the shrunk constant).

:func:`choose_rule`: the dev mentions split into folds by document (a mention's document id
without a trailing ``.N`` row number), each rule fitted on the other folds and scored on the
held-out one: the L2 strength with the lowest out-of-fold log loss, then per
path the model or the maps, the lower out-of-fold log loss on the path's mentions
(:func:`choose_paths`; the ECE is recorded beside it). Never test: only dev mentions are seen.
On CANTEMIST dev2 the model wins on the retriever path (0.552 against 0.687) and loses on the
LM path (0.667 against 0.655) and the dictionary's (0.0475 against 0.0464).
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..evaluation.reliability import ScoredMention, ece
from ..linking.probability import ProbabilityCalibrator
from ..linking.probability_features import PATH_FEATURES, FeatureModel

#: the L2 strengths tried (scikit-learn's C, on standardised features)
DEFAULT_CS = (0.1, 1.0, 10.0)
#: the L2 strength of ``rule="features"`` (no cross-validation)
FEATURE_C = 1.0
#: folds of the dev cross-validation
DEFAULT_FOLDS = 5
#: ``auto`` compares the rules on at least this many linked dev mentions (else: the maps)
MIN_CV_MENTIONS = 100
MIN_SCALE = 1e-6
#: a path's features need this many dev mentions (as its own map does)
MIN_PATH_MENTIONS = 30


def fit_feature_model(mentions: Sequence[ScoredMention], prior_weight: Optional[float] = None,
                      c: float = 1.0, min_mentions: int = MIN_PATH_MENTIONS,
                      ) -> Optional[FeatureModel]:
    """The pooled logistic regression on the linked ``mentions`` (None when they are all
    right or all wrong: nothing to separate). A path with fewer than ``min_mentions`` dev
    mentions gets its indicator only: its base rate, shrunk toward all paths'."""
    from sklearn.linear_model import LogisticRegression

    linked = [m for m in mentions if m.nbest and m.path in PATH_FEATURES]
    y = np.array([m.correct for m in linked], dtype=float)
    if not linked or y.min() == y.max():
        return None
    weight = float(prior_weight or 0.0)
    paths = tuple(p for p in PATH_FEATURES if any(m.path == p for m in linked))
    featured = [p for p in paths if sum(m.path == p for m in linked) >= min_mentions]
    columns = FeatureModel.column_names(paths, featured)
    raw = np.array([FeatureModel.raw_row(m.nbest, columns, weight) for m in linked])
    owner = np.array([m.path for m in linked])
    mean, scale = np.zeros(len(columns)), np.ones(len(columns))
    x = raw.copy()
    for j, col in enumerate(columns):
        path, _, name = col.partition(":")
        if not name:
            continue
        rows = owner == path
        mean[j] = raw[rows, j].mean()
        sd = raw[rows, j].std()
        scale[j] = sd if sd > MIN_SCALE else 1.0
        x[rows, j] = (raw[rows, j] - mean[j]) / scale[j]
    lr = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    return FeatureModel(tuple(columns), tuple(mean.tolist()), tuple(scale.tolist()),
                        tuple(float(v) for v in lr.coef_[0]), float(lr.intercept_[0]),
                        paths, weight)


def document_of(doc: str) -> str:
    """The document a mention's row belongs to (``case-1.10`` -> ``case-1``)."""
    return re.sub(r"\.\d+$", "", doc)


def _log_loss(p: Sequence[float], y: Sequence[bool]) -> float:
    eps = 1e-6
    return float(np.mean([-math.log(min(1 - eps, max(eps, q)) if t else
                                    max(eps, 1 - min(1 - eps, q))) for q, t in zip(p, y)]))


def cross_validate(mentions: Sequence[ScoredMention],
                   fitters: Dict[str, Callable[[Sequence[ScoredMention]], ProbabilityCalibrator]],
                   folds: int = DEFAULT_FOLDS) -> Dict[str, Dict[str, Any]]:
    """Out-of-fold log loss and ECE of each rule (``fitters``: name -> fit on mentions) over
    the linked ``mentions``, folds by document (by mention when there are too few)."""
    from sklearn.model_selection import GroupKFold, KFold

    linked = [m for m in mentions if m.nbest]
    groups = [document_of(m.doc) or str(i) for i, m in enumerate(linked)]
    k = min(folds, len(set(groups)))
    if k >= 2:
        splits = list(GroupKFold(n_splits=k).split(linked, groups=groups))
    else:
        splits = list(KFold(n_splits=min(folds, len(linked))).split(linked))
    out: Dict[str, Dict[str, Any]] = {}
    for name, fit in fitters.items():
        probs = np.zeros(len(linked))
        for train, held in splits:
            cal = fit([linked[i] for i in train])
            for i in held:
                probs[i] = cal.probabilities(linked[i].nbest)[0]
        y = [m.correct for m in linked]
        out[name] = {"log_loss": _log_loss(probs.tolist(), y), "ece": ece(probs.tolist(), y),
                     "folds": len(splits), "per_path": {}}
        for path in sorted({m.path for m in linked}):
            rows = [i for i, m in enumerate(linked) if m.path == path]
            out[name]["per_path"][path] = {
                "n": len(rows), "log_loss": _log_loss(probs[rows].tolist(), [y[i] for i in rows]),
                "ece": ece(probs[rows].tolist(), [y[i] for i in rows])}
    return out


def choose_paths(maps: Dict[str, Any], model: Dict[str, Any]) -> List[str]:
    """The paths whose out-of-fold log loss (:func:`cross_validate`'s ``per_path``) is lower
    with the feature model than with the maps."""
    return [p for p, row in model["per_path"].items() if p in maps["per_path"]
            and row["log_loss"] < maps["per_path"][p]["log_loss"] - 1e-9]


def choose_rule(scores: Dict[str, Dict[str, Any]]) -> str:
    """The rule with the lowest out-of-fold log loss (of equals, the first)."""
    return min(scores, key=lambda k: (round(scores[k]["log_loss"], 9),
                                      list(scores).index(k)))


__all__ = ["DEFAULT_CS", "DEFAULT_FOLDS", "FEATURE_C", "MIN_CV_MENTIONS", "choose_paths",
           "choose_rule", "cross_validate", "document_of", "fit_feature_model"]
