"""Fitting the learned composite gate (``linking/composite_gate.py``) on the training split.

The training split holds far more coordinated mentions than dev (SPACCC: about 740 composite
ones against dev's 62), but a KB built from the corpus holds every training surface as a name
of its gold code: looked up as it is, a training mention always matches itself. Its features
are therefore computed under a masked view (``linking/masking.py``): the training documents
are cut into ``folds`` parts, and each part's mentions are linked against the KB and aliases
without what only that part contributed (single-code surfaces, and composite aliases whose
surface no other part has). Each composite candidate is labelled by whether it is the gold
code set; the gate's probability is a logistic regression (scikit-learn) over the features;
its threshold is the lowest at which, cross-validated by mention, the training mentions whose
best candidate passes have it right at least ``min_precision`` of the time (as a mention's
composite answer is at most one candidate).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..evaluation.metrics import code_set
from ..linking.composite_gate import NUMERIC_FEATURES, CompositeGate, feature_names
from ..linking.masking import masked_engine, plan_masking
from ..prompting import SEP_TOKEN
from ..types import CorpusDoc

#: the share of the gate's positive predictions (cross-validated) that must be right
DEFAULT_GATE_PRECISION = 0.5
DEFAULT_FOLDS = 5


def gold_among(props: Sequence[Tuple[Any, float]], gold: str, group: Optional[str],
               kb: Any) -> bool:
    """Whether a composite gold's code set is among the composite proposals."""
    want = code_set(gold, kb)
    if len(want) < 2:
        return False
    for r, _ in props:
        key = frozenset(kb.canonical_code(kb.lookup(p, group) or "?")
                        for p in r.name.split(SEP_TOKEN))
        if key == want:
            return True
    return False


def masked_training_rows(engine: Any, group_for: Any, train_docs: Sequence[CorpusDoc],
                         other_docs: Sequence[CorpusDoc] = (), folds: int = DEFAULT_FOLDS,
                         ) -> List[Dict[str, Any]]:
    """The coordinated mentions of ``train_docs``, each with its composite candidates'
    features under the masked view of its fold (module docstring): ``{"mention", "group",
    "code", "composite", "candidates": [(features, is the gold code set)]}``;
    ``other_docs``: documents whose surfaces the KB holds and no fold hides (dev)."""
    engine = engine.with_settings(composite_gate=False, composite_split=None)
    folds = max(2, folds)
    parts = [list(train_docs[i::folds]) for i in range(folds)]
    rows: List[Dict[str, Any]] = []
    for k, part in enumerate(parts):
        rest = [d for j, p in enumerate(parts) if j != k for d in p] + list(other_docs)
        view = masked_engine(engine, plan_masking(engine.kb, engine.aliases, part, rest))
        items = [(d.text[m.start:m.end], group_for(m.label), str(m.code or ""))
                 for d in part for m in d.mentions if m.code]
        items = [it for it in items if view.coordinated(it[0])]
        if not items:
            continue
        mentions, groups = [it[0] for it in items], [it[1] for it in items]
        top = view.retrieve_in_batches(mentions, groups, view.settings.candidates)
        proposals = view.composite_proposals(mentions, groups, top, split=None)
        feats = view.composite_gate_features(mentions, groups, top, proposals)
        for (m, g, code), props, fs in zip(items, proposals, feats):
            rows.append({"mention": m, "group": g, "code": code,
                         "composite": len(code_set(code)) > 1,
                         "candidates": [(f, gold_among(props[i:i + 1], code, g, view.kb))
                                        for i, f in enumerate(fs)]})
    return rows


def fit_gate(rows: Sequence[Dict[str, Any]], *,
             min_precision: float = DEFAULT_GATE_PRECISION, folds: int = DEFAULT_FOLDS,
             c: float = 1.0) -> CompositeGate:
    """A :class:`CompositeGate` fitted on :func:`masked_training_rows`: P(a composite
    candidate is the gold code set). Its threshold: the lowest at which, in ``folds``-fold
    cross-validation by mention, the mentions whose best candidate reaches it have that
    candidate right at least ``min_precision`` of the time (1.0, nothing passes, when no
    threshold does). ``stats`` records the counts."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = [(f, ok, i) for i, r in enumerate(rows) for f, ok in r["candidates"]]
    names = feature_names([f for f, _, _ in flat]) if flat else list(NUMERIC_FEATURES)
    x = np.array([[f.get(n, 0.0) for n in names] for f, _, _ in flat], dtype=float)
    y = np.array([int(ok) for _, ok, _ in flat], dtype=int)
    owner = np.array([i for _, _, i in flat], dtype=int)

    def model() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    n_pos = int(y.sum())
    k = min(folds, len(set(owner[y == 1].tolist())) if n_pos else 0)
    threshold, chosen = 1.0, {"cv_passed": 0, "cv_right": 0}
    if k >= 2 and n_pos < len(y):
        probs = cross_val_predict(model(), x, y, cv=GroupKFold(n_splits=k), groups=owner,
                                  method="predict_proba")[:, 1]
        best: Dict[int, Tuple[float, int]] = {}
        for p, ok, i in zip(probs, y, owner):
            if i not in best or p > best[i][0]:
                best[i] = (float(p), int(ok))
        threshold, chosen = choose_threshold([b[0] for b in best.values()],
                                             [b[1] for b in best.values()], min_precision)
    if 0 < n_pos < len(y):
        fitted = model().fit(x, y)
        scaler, lr = fitted[0], fitted[1]
        coef, intercept = [float(v) for v in lr.coef_[0]], float(lr.intercept_[0])
        mean = [float(v) for v in scaler.mean_]
        scale = [float(v) if v > 0 else 1.0 for v in scaler.scale_]
    else:  # one class only: a constant gate
        coef, intercept = [0.0] * len(names), (8.0 if n_pos else -8.0)
        mean, scale = [0.0] * len(names), [1.0] * len(names)
    stats = {"mentions": len(rows), "composite_mentions": sum(r["composite"] for r in rows),
             "candidates": len(y), "gold_candidates": n_pos, "cv_folds": k,
             "min_precision": min_precision, **chosen}
    return CompositeGate(tuple(names), tuple(coef), intercept, tuple(mean), tuple(scale),
                         threshold, stats)


def choose_threshold(probs: Sequence[float], labels: Sequence[int],
                     min_precision: float) -> Tuple[float, Dict[str, Any]]:
    """The lowest threshold (one of ``probs``) whose predictions at or above it are at least
    ``min_precision`` right; 1.0 when none is. With the counts there."""
    pairs = sorted(zip(probs, labels), key=lambda p: -p[0])
    best: Tuple[float, Dict[str, Any]] = (1.0, {"cv_passed": 0, "cv_right": 0})
    right = 0
    for i, (p, y) in enumerate(pairs, 1):
        right += int(y)
        if i < len(pairs) and pairs[i][0] == p:
            continue  # ties open together
        if right / i >= min_precision:
            best = (float(p), {"cv_passed": i, "cv_right": right})
    return best


__all__ = ["DEFAULT_GATE_PRECISION", "DEFAULT_FOLDS", "fit_gate",
           "choose_threshold", "masked_training_rows", "gold_among"]
