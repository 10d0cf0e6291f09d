"""Choosing the retrieval prior's weight on the dev set, after training.

In rerank mode the linker ranks a mention's top-N retrieved names by
``length-normalised log-prob + prior_weight × retrieval score``. How much the LM should be
trusted against the retriever depends on the model and on how long it trained: a model that
memorised its training mentions is over-confident on forms it has seen. The candidates'
log-probs do not depend on the weight, so they are computed once on the dev mentions and every
weight of a grid is scored on them (Recall@1); the pipeline is then written again, through the
one pipeline writer, with the chosen weight and the rerank mode in its config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..errors import Errors
from ..evaluation.metrics import hit
from ..linking import MODE_RERANK, LinkingEngine

# 0: the LM alone; large: the retriever's order, the LM breaking ties
DEFAULT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 1000.0)


def prior_weight_table(engine: LinkingEngine, dev: Any,
                       weights: Sequence[float] = DEFAULT_WEIGHTS) -> List[Dict[str, float]]:
    """Dev Recall@1 of candidate reranking for every prior weight in ``weights``."""
    if not engine.settings.uses_candidates:
        raise ValueError(Errors.E066.format(candidates=engine.settings.mode))
    scored: List[List[tuple]] = []
    for chunk in engine.batches(dev.prompt_ids):
        part = engine.score_candidates([dev.prompt_ids[i] for i in chunk],
                                       [dev.groups[i] for i in chunk],
                                       [dev.mentions[i] for i in chunk])
        scored.extend(zip(chunk, part))
    by_index = dict(scored)
    table = []
    for w in weights:
        hits = 0
        for i, (gold, group) in enumerate(zip(dev.codes, dev.groups)):
            cands = by_index.get(i)
            if cands:
                hits += hit(gold, [engine.rank_scored(cands, group, w)[0].code], 1,
                            kb=engine.kb)
        table.append({"prior_weight": float(w), "recall@1": hits / max(1, len(dev))})
    return table


def best_weight(table: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The row with the best Recall@1 (the first of equals: the grid runs from LM-only up)."""
    return max(table, key=lambda r: r["recall@1"])


def calibrate_pipeline(path: Union[str, Path], dev_docs: Sequence[Any], *,
                       dev_size: int = 0, seed: int = 0, candidates: Optional[int] = None,
                       weights: Sequence[float] = DEFAULT_WEIGHTS) -> Dict[str, Any]:
    """Pick the prior weight of the pipeline at ``path`` on ``dev_docs`` and save the
    pipeline again in rerank mode with it (and with ``candidates`` when given).
    Returns ``{"prior_weight", "recall@1", "candidates", "table", "dev_mentions"}``."""
    import spacy

    from ..evaluation.evaluate import find_linker
    from .examples import build_dev_set
    from .pipeline_io import save_pipeline

    path = Path(path)
    nlp = spacy.load(path)
    linker = find_linker(nlp)
    engine = linker.engine
    if candidates is not None:
        engine = engine.with_settings(candidates=candidates)
    dev = build_dev_set(dev_docs, linker, size=dev_size, seed=seed, nlp=nlp)
    if not len(dev):
        raise ValueError(Errors.E067.format(path=path))
    table = prior_weight_table(engine, dev, weights)
    best = best_weight(table)
    settings = engine.settings.replace(mode=MODE_RERANK, prior_weight=best["prior_weight"])
    result = {"prior_weight": best["prior_weight"], "recall@1": best["recall@1"],
              "candidates": settings.candidates, "dev_mentions": len(dev), "table": table}
    save_pipeline(nlp, path, settings=settings, extra_files={"calibration.json": result},
                  meta=_read_meta(path))
    return result


def _read_meta(path: Path) -> Optional[Dict[str, Any]]:
    import json

    try:
        return json.loads((path / "training.json").read_text("utf8"))
    except (OSError, ValueError):
        return None


__all__ = ["DEFAULT_WEIGHTS", "prior_weight_table", "best_weight", "calibrate_pipeline"]
