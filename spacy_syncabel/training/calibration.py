"""Choosing the retrieval prior's weight on the dev set, after training.

In rerank mode the linker ranks a mention's top-N retrieved names by
``length-normalised log-prob + prior_weight × retrieval score``. How much the LM should be
trusted against the retriever depends on the model and on how long it trained: a model that
memorised its training mentions is over-confident on forms it has seen. The candidates'
log-probs do not depend on the weight, so they are computed once on the dev mentions and every
weight of a grid is scored on them (Recall@1); the pipeline is then written again, through the
one pipeline writer, with the chosen weight and the rerank mode in its config.

The cascade's cut-off is chosen next on the same scores: for every margin of a grid (and
"exact matches only"), a dev mention the cascade settles takes the retriever's answer, the
others the full model's at the chosen weight. The most aggressive margin whose dev Recall@1 is
not lower than the full model's minus ``cascade_tolerance`` (default 0.2 points) is saved with
``cascade`` on; when even exact matches only lose more, the cascade is saved off (W220).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..errors import Errors, Warnings
from ..evaluation.metrics import hit
from ..linking import MODE_RERANK, LinkingEngine
from ..linking.candidates import Retrieved
from ..linking.engine import ScoredName
from ..pipes import find_linker
from .examples import build_dev_set
from .pipeline_io import save_pipeline

# 0: the LM alone; large: the retriever's order, the LM breaking ties
DEFAULT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 1000.0)
# the cascade's cut-offs, most aggressive first (0: the retriever settles every mention but
# ambiguous exact matches; None: exact/alias matches only)
DEFAULT_MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                   0.75, 1.0, None)
# dev Recall@1 the cascade may lose against the full model: 0.2 points, the bound the cascade's
# issue sets on test (on a dev set of ~1,000 mentions, one or two mentions)
DEFAULT_CASCADE_TOLERANCE = 0.002


def score_dev(engine: LinkingEngine, dev: Any) -> List[List[ScoredName]]:
    """Each dev mention's retrieved candidates scored once by the LM (in dev order)."""
    if not engine.settings.uses_candidates:
        raise ValueError(Errors.E066.format(candidates=engine.settings.mode))
    by_index: Dict[int, List[ScoredName]] = {}
    for chunk in engine.batches(dev.prompt_ids):
        part = engine.score_candidates([dev.prompt_ids[i] for i in chunk],
                                       [dev.groups[i] for i in chunk],
                                       [dev.mentions[i] for i in chunk])
        by_index.update(zip(chunk, part))
    return [by_index.get(i, []) for i in range(len(dev))]


def _top1(engine: LinkingEngine, scored: Sequence[ScoredName], group: Optional[str],
          weight: float) -> List[str]:
    return [engine.rank_scored(scored, group, weight)[0].code] if scored else []


def prior_weight_table(engine: LinkingEngine, dev: Any,
                       weights: Sequence[float] = DEFAULT_WEIGHTS,
                       scored: Optional[Sequence[Sequence[ScoredName]]] = None,
                       ) -> List[Dict[str, float]]:
    """Dev Recall@1 of candidate reranking for every prior weight in ``weights``
    (``scored``: :func:`score_dev`'s output, computed here when None)."""
    if scored is None:
        scored = score_dev(engine, dev)
    table = []
    for w in weights:
        hits = sum(hit(gold, _top1(engine, cands, group, w), 1, kb=engine.kb)
                   for gold, group, cands in zip(dev.codes, dev.groups, scored))
        table.append({"prior_weight": float(w), "recall@1": hits / max(1, len(dev))})
    return table


def cascade_table(engine: LinkingEngine, dev: Any, scored: Sequence[Sequence[ScoredName]],
                  weight: float, margins: Sequence[Optional[float]] = DEFAULT_MARGINS,
                  ) -> List[Dict[str, Any]]:
    """Dev Recall@1 and share of mentions skipping the LM for every cascade cut-off in
    ``margins``, from the candidates :func:`score_dev` scored (no LM call): a settled mention
    takes the retriever's answer, the others the full model's at ``weight``."""
    view = engine.with_settings(mode=MODE_RERANK, cascade=True)
    retrieved = [[Retrieved(name, sim) for name, sim, _, _ in cands] for cands in scored]
    plan = view.settle(dev.mentions, dev.groups, retrieved)
    full = [_top1(engine, cands, group, weight) for cands, group in zip(scored, dev.groups)]
    table = []
    for margin in margins:
        hits = skipped = 0
        for gold, p, lm_top in zip(dev.codes, plan, full):
            settled = p.settled(margin)
            skipped += settled
            hits += hit(gold, [p.ranked[0].code] if settled else lm_top, 1, kb=engine.kb)
        table.append({"margin": margin, "recall@1": hits / max(1, len(dev)),
                      "skipped": skipped / max(1, len(dev))})
    return table


def choose_margin(table: Sequence[Dict[str, Any]], full_recall: float,
                  tolerance: float = 0.0) -> Optional[Dict[str, Any]]:
    """The first row (the most aggressive cut-off) whose Recall@1 is at least
    ``full_recall - tolerance``; None when no row is."""
    for row in table:
        if row["recall@1"] >= full_recall - tolerance - 1e-12:
            return row
    return None


def best_weight(table: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The row with the best Recall@1 (the first of equals: the grid runs from LM-only up)."""
    return max(table, key=lambda r: r["recall@1"])


def calibrate_pipeline(path: Union[str, Path], dev_docs: Sequence[Any], *,
                       dev_size: int = 0, seed: int = 0, candidates: Optional[int] = None,
                       weights: Sequence[float] = DEFAULT_WEIGHTS, cascade: bool = True,
                       margins: Sequence[Optional[float]] = DEFAULT_MARGINS,
                       cascade_tolerance: float = DEFAULT_CASCADE_TOLERANCE) -> Dict[str, Any]:
    """Pick the prior weight of the pipeline at ``path`` on ``dev_docs``, then (``cascade``)
    the cascade's cut-off, and save the pipeline again in rerank mode with them (and with
    ``candidates`` when given). ``cascade_tolerance``: dev Recall@1 (a fraction) the cascade
    may lose against the full model. Returns ``{"prior_weight", "recall@1", "candidates",
    "table", "dev_mentions", "cascade"}``; ``cascade`` holds ``{"on", "margin", "recall@1",
    "skipped", "tolerance", "table"}``."""
    import spacy

    path = Path(path)
    nlp = spacy.load(path)
    linker = find_linker(nlp)
    engine = linker.engine
    if candidates is not None:
        engine = engine.with_settings(candidates=candidates)
    dev = build_dev_set(dev_docs, linker, size=dev_size, seed=seed, nlp=nlp)
    if not len(dev):
        raise ValueError(Errors.E067.format(path=path))
    scored = score_dev(engine, dev)
    table = prior_weight_table(engine, dev, weights, scored)
    best = best_weight(table)
    settings = engine.settings.replace(mode=MODE_RERANK, prior_weight=best["prior_weight"],
                                       cascade=False)
    result = {"prior_weight": best["prior_weight"], "recall@1": best["recall@1"],
              "candidates": settings.candidates, "dev_mentions": len(dev), "table": table}
    if cascade:
        result["cascade"] = _calibrate_cascade(engine, dev, scored, best, margins,
                                               cascade_tolerance, path)
        settings = settings.replace(cascade=result["cascade"]["on"],
                                    cascade_margin=result["cascade"]["margin"])
    save_pipeline(nlp, path, settings=settings, extra_files={"calibration.json": result},
                  meta=_read_meta(path))
    return result


def _calibrate_cascade(engine: LinkingEngine, dev: Any, scored, best: Dict[str, float],
                       margins: Sequence[Optional[float]], tolerance: float,
                       path: Path) -> Dict[str, Any]:
    """The cascade's part of the calibration result (W220 when it is left off)."""
    table = cascade_table(engine, dev, scored, best["prior_weight"], margins)
    row = choose_margin(table, best["recall@1"], tolerance)
    if row is None:
        exact = [r for r in table if r["margin"] is None]
        warnings.warn(Warnings.W220.format(
            path=path, exact=100 * (exact[0]["recall@1"] if exact else 0.0),
            full=100 * best["recall@1"], tol=100 * tolerance))
    return {"on": row is not None, "margin": row["margin"] if row else None,
            "recall@1": row["recall@1"] if row else best["recall@1"],
            "skipped": row["skipped"] if row else 0.0, "tolerance": tolerance, "table": table}


def _read_meta(path: Path) -> Optional[Dict[str, Any]]:
    from ..textio import read_json

    try:
        return read_json(path / "training.json", root=path, kind="json")
    except (OSError, ValueError):
        return None


__all__ = ["DEFAULT_WEIGHTS", "DEFAULT_MARGINS", "DEFAULT_CASCADE_TOLERANCE", "score_dev", "prior_weight_table", "best_weight",
           "cascade_table", "choose_margin", "calibrate_pipeline"]
