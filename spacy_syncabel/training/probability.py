"""Fitting the linker's probability calibrator and NIL threshold on dev mentions.

The dev set's gold mentions are linked by the pipeline as saved (its prior weight and cascade
already chosen: the scores depend on them), each counted mention (the Recall@1 rule) giving its
top candidate's path, score and whether it is right. One monotone map per path is fitted
(``linking/probability.py``; the LM path's on the value the LM ranked by, log(score) +
prior_weight × similarity: on CANTEMIST dev1 its ECE is 0.12 against 0.19 on the score), with
scikit-learn: Platt scaling (a logistic regression on the
score, nearly unregularised; a negative slope or a single distinct score gives a constant) or
isotonic regression. A path with fewer than ``min_mentions`` dev mentions (but some) gets a
constant, its dev accuracy shrunk toward all paths' (W610): the joint map reads another
scale (SPACCC: 18 LM-ranked dev mentions, joint map test ECE 0.31, constant 0.10).

With the linker's training corpus, the dev mentions are linked by the dev-masked view
(``linking/masking.py``): KB names only the dev mentions gave are hidden, so dev meets the KB
as unseen text does (SPACCC-lite: 68% of dev mentions settled by the dictionary as saved, 50%
masked, 47% on test_half).

The LM path is the smallest and hardest (the mentions the cascade leaves over: 18 SPACCC and
168 CANTEMIST dev mentions). With ``lm_ranked`` (the default when the cascade is on) dev is
linked a second time with the LM ranking every mention, and the LM path is fitted on the
LM-ranked n-best of every dev mention the dictionary does not settle (483 and 716). On the
test sets (89 and 172 LM-ranked mentions) the LM path's ECE goes from 0.142 to 0.081 (SPACCC)
and from 0.117 to 0.112 (CANTEMIST), where perfectly calibrated labels would score 0.089 and
0.076 on average (``benchmarks/bench_calibration_lm_path.py``).

Then (``rule="auto"``, the default) the top entry's probability may come from the pooled feature
model instead (``training/probability_features.py``): on the paths whose out-of-fold dev log
loss it lowers (CANTEMIST: the retriever, test ECE 0.090 -> 0.046).

With ``target_precision`` the NIL threshold is the lowest probability whose dev precision over
the mentions at or above it (correct / linked) reaches the target (W500 when none does). The
calibrator is saved in the linker's folder (``probability.json``); ``calibration.json`` gets
the fit's summary under ``"probability"``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import Errors, Warnings
from ..evaluation.reliability import ScoredMention, ece, threshold_for_precision
from ..linking.probability import JOINT, METHODS, ProbabilityCalibrator, ScoreMap
from ..types import PATH_DICTIONARY, PATH_LM, PATHS
from .probability_features import (DEFAULT_CS, FEATURE_C, MIN_CV_MENTIONS, choose_paths,
                                   choose_rule, cross_validate, fit_feature_model)

#: a path's own map needs this many dev mentions (else the joint map serves it)
MIN_PATH_MENTIONS = 30
#: a smaller path's constant: its accuracy shrunk toward all paths' by this many mentions
SMALL_PATH_PRIOR = 2.0
SMALL_PATH_RULES = ("constant", "joint")
DEFAULT_METHOD = "platt"
RULE_AUTO, RULE_MAPS, RULE_FEATURES = "auto", "maps", "features"
#: how the top entry's probability is fitted (``calibrate_probabilities``)
RULES = (RULE_AUTO, RULE_MAPS, RULE_FEATURES)
DEFAULT_RULE = RULE_AUTO


def _constant(rate: float, method: str) -> ScoreMap:
    rate = min(1.0 - 1e-6, max(1e-6, rate))
    if method == "platt":
        return ScoreMap("platt", coef=0.0, intercept=math.log(rate / (1.0 - rate)))
    return ScoreMap("isotonic", x=(0.0,), y=(rate,))


def fit_map(scores: Sequence[float], correct: Sequence[bool], method: str = DEFAULT_METHOD,
            ) -> ScoreMap:
    """A monotone map from ``scores`` to the probability of ``correct`` (a constant, the
    smoothed accuracy, when the scores or the outcomes do not vary)."""
    if method not in METHODS:
        raise ValueError(Errors.E502.format(method=method))
    x = np.asarray(scores, dtype=float)
    y = np.asarray(correct, dtype=float)
    rate = (y.sum() + 0.5) / (len(y) + 1.0)
    if len(set(x.tolist())) < 2 or len(set(y.tolist())) < 2:
        return _constant(rate, method)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(x, y)
        return ScoreMap("isotonic", x=tuple(float(v) for v in iso.X_thresholds_),
                        y=tuple(float(v) for v in iso.y_thresholds_))
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4, max_iter=1000).fit(x[:, None], y)
    coef, intercept = float(lr.coef_[0][0]), float(lr.intercept_[0])
    if coef < 0:  # a higher score should never mean a lower probability
        return _constant(rate, method)
    return ScoreMap("platt", coef=coef, intercept=intercept)


def fit_calibrator(mentions: Sequence[ScoredMention], method: str = DEFAULT_METHOD, *,
                   per_path: bool = True, min_mentions: int = MIN_PATH_MENTIONS,
                   prior_weight: Optional[float] = None, small_paths: str = "constant",
                   ) -> ProbabilityCalibrator:
    """Maps fitted on the mentions that got a candidate: the joint one, and (``per_path``)
    one per path with at least ``min_mentions`` mentions (a constant for a smaller one,
    W610; ``small_paths="joint"``: the joint map, W501). With
    ``prior_weight`` (the linker's), the LM path's map reads the value the LM ranked by,
    log(score) + prior_weight × similarity, instead of the score."""
    if small_paths not in SMALL_PATH_RULES:
        raise ValueError(Errors.E610.format(value=small_paths))
    linked = [m for m in mentions if m.nbest]
    if not linked:
        raise ValueError(Errors.E504.format(path="the dev set"))
    maps = {JOINT: fit_map([m.score for m in linked], [m.correct for m in linked], method)}
    counts = {p: sum(m.path == p for m in linked) for p in PATHS}
    if per_path:
        for path in PATHS:
            rows = [m for m in linked if m.path == path]
            if len(rows) >= min_mentions:
                if path == PATH_LM and prior_weight is not None:
                    shape = ScoreMap(method, feature="rank", prior_weight=float(prior_weight))
                    fitted = fit_map([shape.value(m.nbest[0]) for m in rows],
                                     [m.correct for m in rows], method)
                    maps[path] = replace(fitted, feature="rank",
                                         prior_weight=float(prior_weight))
                else:
                    maps[path] = fit_map([m.score for m in rows], [m.correct for m in rows],
                                         method)
            elif rows and small_paths == "joint":  # the earlier rule, kept for comparison
                warnings.warn(Warnings.W501.format(n=len(rows), path=path, min=min_mentions))
            elif rows:
                # another path's scores are on another scale: the path's own accuracy,
                # shrunk toward all paths' by SMALL_PATH_PRIOR pseudo-mentions
                acc = sum(m.correct for m in linked) / len(linked)
                rate = ((sum(m.correct for m in rows) + SMALL_PATH_PRIOR * acc)
                        / (len(rows) + SMALL_PATH_PRIOR))
                maps[path] = _constant(rate, method)
                warnings.warn(Warnings.W610.format(n=len(rows), path=path, min=min_mentions,
                                                   rate=rate))
    fit = {"method": method, "per_path": per_path, "lm_feature": "score" if prior_weight is None
           else "rank", "small_paths": small_paths, "dev_mentions": len(mentions),
           "dev_mentions_per_path": counts}
    return ProbabilityCalibrator(maps, fit=fit)


def with_probabilities(calibrator: ProbabilityCalibrator,
                       mentions: Sequence[ScoredMention]) -> List[ScoredMention]:
    """Copies of ``mentions`` whose n-best entries carry the calibrator's probabilities."""
    out = []
    for m in mentions:
        nbest = [dict(c) for c in m.nbest]
        for c, p in zip(nbest, calibrator.probabilities(nbest)):
            c["probability"] = p
        out.append(replace(m, nbest=nbest))
    return out


def choose_nil_threshold(mentions: Sequence[ScoredMention], target: float,
                         ) -> Optional[Dict[str, float]]:
    """The lowest probability threshold whose precision over the mentions (carrying
    probabilities) at or above it reaches ``target`` (W500 and None when none does)."""
    if not 0.0 < target <= 1.0:
        raise ValueError(Errors.E503.format(value=target))
    probs = [m.probability() or 0.0 for m in mentions]
    correct = [m.correct for m in mentions]
    row = threshold_for_precision(probs, correct, len(mentions), target)
    if row is None:
        best = max((sum(correct[i] for i in range(len(probs)) if probs[i] >= t)
                    / max(1, sum(1 for p in probs if p >= t)) for t in set(probs)), default=0.0)
        warnings.warn(Warnings.W500.format(target=target, n=len(mentions), best=best))
    return row


def lm_ranked_rows(saved: Sequence[ScoredMention], ranked: Sequence[ScoredMention],
                   ) -> List[ScoredMention]:
    """The rows the probability is fitted on when the LM also ranked every dev mention
    (``ranked``, aligned with ``saved``): the dictionary's and the retriever's rows as linked,
    and the LM path's from the LM-ranked n-best of every mention the dictionary does not
    settle (the LM path's own mentions and the retriever's)."""
    if len(saved) != len(ranked):
        raise ValueError(Errors.E643.format(n_saved=len(saved), n_forced=len(ranked),
                                            where="the counts"))
    rows = [m for m in saved if m.nbest and m.path != PATH_LM]
    for s, r in zip(saved, ranked):
        if (s.doc, s.text, s.gold) != (r.doc, r.text, r.gold):
            raise ValueError(Errors.E643.format(n_saved=len(saved), n_forced=len(ranked),
                                                where=f"{s.doc} '{s.text}' / {r.doc} '{r.text}'"))
        if s.nbest and s.path != PATH_DICTIONARY and r.nbest and r.path == PATH_LM:
            rows.append(r)
    return rows


def calibrate_probabilities(mentions: Sequence[ScoredMention], method: str = DEFAULT_METHOD,
                            target_precision: Optional[float] = None, *,
                            per_path: bool = True, prior_weight: Optional[float] = None,
                            small_paths: str = "constant", rule: str = DEFAULT_RULE,
                            fit_rows: Optional[Sequence[ScoredMention]] = None,
                            ) -> ProbabilityCalibrator:
    """:func:`fit_calibrator` on the dev ``mentions``, then (``rule``) the top entry's
    probability: ``maps`` the per-path maps, ``features`` the pooled feature model
    (``training/probability_features.py``) for every path, ``auto`` the model's L2 strength
    with the lowest out-of-fold log loss on dev and, per path, the model or the maps, the one
    whose out-of-fold log loss on the path's dev mentions is lower; then
    (``target_precision``) the NIL threshold. ``fit`` records the rule, the cross-validation
    and the dev ECE before (raw score) and after, per path (fewer than ``MIN_CV_MENTIONS``
    linked dev mentions: ``auto`` keeps the maps). ``fit_rows`` (:func:`lm_ranked_rows`): fit
    on those rows instead; the dev ECE and the NIL threshold stay on ``mentions``."""
    if rule not in RULES:
        raise ValueError(Errors.E642.format(value=rule))
    cal = _fit_rule(mentions if fit_rows is None else fit_rows, rule, method, per_path,
                    prior_weight, small_paths)
    if fit_rows is not None:
        cal.fit["lm_ranked_rows"] = sum(m.path == PATH_LM for m in fit_rows)
    scored = with_probabilities(cal, mentions)
    cal.fit["dev_ece_raw"] = _ece(mentions, raw=True)
    cal.fit["dev_ece"] = _ece(scored)
    if target_precision is not None:
        row = choose_nil_threshold(scored, target_precision)
        cal.fit["target_precision"] = target_precision
        if row is not None:
            cal.nil_threshold = row["threshold"]
            cal.fit["dev_operating_point"] = row
    return cal


def _fit_rule(mentions: Sequence[ScoredMention], rule: str, method: str, per_path: bool,
              prior_weight: Optional[float], small_paths: str) -> ProbabilityCalibrator:
    """The calibrator of ``rule`` (``auto``: chosen by :func:`cross_validate` on dev)."""
    def maps(rows: Sequence[ScoredMention]) -> ProbabilityCalibrator:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_calibrator(rows, method, per_path=per_path, prior_weight=prior_weight,
                                  small_paths=small_paths)

    def features(c: float):
        def fit(rows: Sequence[ScoredMention]) -> ProbabilityCalibrator:
            return replace(maps(rows), model=fit_feature_model(rows, prior_weight, c))
        return fit

    cal = fit_calibrator(mentions, method, per_path=per_path, prior_weight=prior_weight,
                         small_paths=small_paths)
    if rule == RULE_MAPS:
        cal.fit["rule"] = RULE_MAPS
        return cal
    c, cv, paths = FEATURE_C, None, None
    if rule == RULE_AUTO and sum(bool(m.nbest) for m in mentions) < MIN_CV_MENTIONS:
        cal.fit["rule"] = RULE_MAPS  # too few dev mentions to compare the rules on
        cal.fit["rule_cv"] = None
        return cal
    if rule == RULE_AUTO:
        fitters = {RULE_MAPS: maps, **{f"{RULE_FEATURES}:C={c:g}": features(c)
                                       for c in DEFAULT_CS}}
        cv = cross_validate(mentions, fitters)
        best = choose_rule({k: v for k, v in cv.items() if k != RULE_MAPS})
        c = float(best.split("=")[1])
        paths = choose_paths(cv[RULE_MAPS], cv[best])
        cal.fit["rule_cv"] = cv
    model = fit_feature_model(mentions, prior_weight, c) if paths != [] else None
    if model is not None and paths is not None:
        model = replace(model, paths=tuple(p for p in model.paths if p in paths))
    if model is not None and not model.paths:
        model = None
    cal.model = model  # None: dev mentions all right or all wrong, or no path gains
    cal.fit["rule"] = RULE_MAPS if model is None else RULE_FEATURES
    if model is not None:
        cal.fit["feature_c"] = c
        cal.fit["feature_paths"] = list(model.paths)
    return cal


def _ece(mentions: Sequence[ScoredMention], raw: bool = False) -> Dict[str, float]:
    def prob(m: ScoredMention) -> float:
        return min(1.0, max(0.0, m.score)) if raw else (m.probability() or 0.0)

    out = {"all": ece([prob(m) for m in mentions], [m.correct for m in mentions])}
    for path in sorted({m.path for m in mentions}):
        rows = [m for m in mentions if m.path == path]
        out[path] = ece([prob(m) for m in rows], [m.correct for m in rows])
    return out


def masked_dev_mentions(nlp: Any, linker: Any, dev_docs: Sequence[Any],
                        train_docs: Optional[Sequence[Any]], batch_size: int = 64,
                        ) -> Tuple[List[ScoredMention], Optional[Dict[str, int]]]:
    """The dev gold mentions linked by ``linker`` as saved, or (``train_docs`` given) by its
    dev-masked view (``linking/masking.py``: KB names only the dev mentions contributed
    hidden); and what the masking hid (None without ``train_docs``)."""
    mentions, _, masking = dev_passes(nlp, linker, dev_docs, train_docs, batch_size)
    return mentions, masking


def dev_passes(nlp: Any, linker: Any, dev_docs: Sequence[Any],
               train_docs: Optional[Sequence[Any]], batch_size: int = 64,
               lm_ranked: bool = False,
               ) -> Tuple[List[ScoredMention], Optional[List[ScoredMention]],
                          Optional[Dict[str, int]]]:
    """:func:`masked_dev_mentions`, and (``lm_ranked``) the same dev mentions linked again by
    the same view with the LM ranking every mention (cascade off; None otherwise): one
    masking plan and one masked KB, retriever and tries for both passes."""
    from ..evaluation.evaluate import scored_gold_mentions
    from ..linking.masking import masked_engine, plan_masking

    engine = linker.engine
    masking = None if train_docs is None else plan_masking(engine.kb, engine.aliases,
                                                             dev_docs, train_docs)
    view = engine if masking is None else masked_engine(engine, masking)
    ranked = None
    try:
        linker.engine = view
        mentions = scored_gold_mentions(nlp, dev_docs, batch_size=batch_size, linker=linker)
        if lm_ranked:
            linker.engine = view.with_settings(cascade=False)
            ranked = scored_gold_mentions(nlp, dev_docs, batch_size=batch_size, linker=linker)
    finally:
        linker.engine = engine
    return mentions, ranked, None if masking is None else masking.summary()


def calibrate_pipeline_probability(path: Union[str, Path], dev_docs: Sequence[Any], *,
                                   method: str = DEFAULT_METHOD,
                                   target_precision: Optional[float] = None,
                                   batch_size: int = 64, per_path: bool = True,
                                   train_docs: Optional[Sequence[Any]] = None,
                                   rule: str = DEFAULT_RULE,
                                   lm_ranked: bool = True) -> ProbabilityCalibrator:
    """Link the dev gold mentions with the pipeline at ``path`` as saved (with ``train_docs``,
    the linker's training split: its dev-masked view, :func:`masked_dev_mentions`), fit its
    probability calibrator (``rule``: :func:`calibrate_probabilities`) and NIL threshold, and
    save the pipeline again with it. ``lm_ranked`` (with the cascade on): the LM path is fitted
    on every dev mention the dictionary does not settle, linked again with the LM ranking it
    (:func:`lm_ranked_rows`)."""
    import spacy

    from ..pipes import find_linker
    from .calibration import _read_meta
    from .pipeline_io import save_pipeline

    if rule not in RULES:  # before the dev set is linked
        raise ValueError(Errors.E642.format(value=rule))
    path = Path(path)
    nlp = spacy.load(path)
    linker = find_linker(nlp, path)
    linker.calibrator = None  # the raw scores, whatever an earlier fit saved
    mentions, ranked, masking = dev_passes(nlp, linker, dev_docs, train_docs, batch_size,
                                           lm_ranked=lm_ranked and linker.settings.cascade)
    if not any(m.nbest for m in mentions):
        raise ValueError(Errors.E504.format(path=path))
    fit_rows = None if ranked is None else lm_ranked_rows(mentions, ranked)
    cal = calibrate_probabilities(mentions, method, target_precision, per_path=per_path,
                                  prior_weight=linker.settings.prior_weight, rule=rule,
                                  fit_rows=fit_rows)
    cal.fit["dev_view"] = "plain" if masking is None else "masked"
    if masking is not None:
        cal.fit["dev_masking"] = masking
    linker.calibrator = cal
    records = _top_level_records(path)
    record = records.get("calibration.json")
    record = dict(record) if isinstance(record, dict) else {}
    record["probability"] = {"nil_threshold": cal.nil_threshold, **cal.fit}
    records["calibration.json"] = record
    save_pipeline(nlp, path, extra_files=records, meta=_read_meta(path))
    return cal


def _top_level_records(path: Path) -> Dict[str, Any]:
    """The folder's own JSON records (calibration.json, assemble.json...) that ``nlp.to_disk``
    does not write, to carry over when the pipeline is saved again."""
    from ..textio import read_json

    out: Dict[str, Any] = {}
    for item in sorted(path.glob("*.json")):
        if item.name in ("meta.json", "training.json") or not item.is_file() \
                or item.is_symlink():
            continue
        try:
            out[item.name] = read_json(item, root=path, kind="json")
        except (OSError, ValueError):
            continue
    return out


def probability_summary(cal: ProbabilityCalibrator) -> str:
    """The fit as ``calibrate`` prints it: dev ECE before/after per path, the threshold."""
    fit = cal.fit
    what = "rows" if "lm_ranked_rows" in fit else "dev mentions"
    lines = [f"probability: {fit.get('method')} per path, fitted on "
             f"{fit.get('dev_mentions')} {what} "
             f"({', '.join(f'{k} {v}' for k, v in fit.get('dev_mentions_per_path', {}).items())})"]
    if "lm_ranked_rows" in fit:
        lines.append(f"  the LM path's {fit['lm_ranked_rows']} rows: every dev mention the "
                     "dictionary does not settle, ranked by the LM")
    if fit.get("rule") == RULE_FEATURES:
        lines.append("  top probability: the pooled feature model (C "
                     f"{fit.get('feature_c', 0):g}) on {', '.join(fit.get('feature_paths', []))}"
                     "; the maps elsewhere and for the other n-best entries")
    cv = fit.get("rule_cv")
    if cv:
        lines.append("  chosen on dev by 5-fold cross-validation (log loss): " + ", ".join(
            f"{k} {v['log_loss']:.4f}" for k, v in cv.items()))
    masking = fit.get("dev_masking")
    if masking:
        lines.append(f"  dev-masked view: {masking.get('hidden_kb_names', 0)} KB names and "
                     f"{masking.get('hidden_aliases', 0)} aliases only dev mentions gave hidden "
                     f"({masking.get('codes_kept_whole', 0)} codes kept whole)")
    raw, after = fit.get("dev_ece_raw", {}), fit.get("dev_ece", {})
    for key in sorted(after):
        lines.append(f"  dev ECE {key:<10} raw score {raw.get(key, 0.0):.3f} -> "
                     f"probability {after[key]:.3f}")
    if "target_precision" in fit:
        point = fit.get("dev_operating_point")
        lines.append(f"NIL threshold for dev precision >= {fit['target_precision']:g}: " + (
            f"{cal.nil_threshold:.4f} (dev precision {point['precision']:.3f}, coverage "
            f"{point['coverage']:.3f})" if point else "none"))
    return "\n".join(lines)


__all__ = ["DEFAULT_METHOD", "DEFAULT_RULE", "RULES", "MIN_PATH_MENTIONS", "SMALL_PATH_PRIOR",
           "SMALL_PATH_RULES", "calibrate_pipeline_probability", "dev_passes",
           "lm_ranked_rows", "masked_dev_mentions",
           "calibrate_probabilities", "choose_nil_threshold", "probability_summary",
           "fit_calibrator", "fit_map", "with_probabilities"]
