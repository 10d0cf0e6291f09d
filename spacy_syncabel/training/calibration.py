"""Choosing the TF-IDF prior's weight on the dev set, after training.

In candidate mode the linker ranks a mention's top-N TF-IDF names by
``mean token log-prob + prior_weight × cosine``. How much the LM should be trusted against the
retriever depends on the model and on how long it trained: a model that memorised its training
mentions is over-confident on forms it has seen. The candidates' log-probs do not depend on the
weight, so they are computed once on the dev mentions and every weight of a grid is scored on
them (Recall@1); the best weight is written into the pipeline.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import srsly

from ..errors import Errors
from ..evaluation.metrics import hit

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import SynCABELLinker
    from .examples import DevSet

# 0: the LM alone; large: the retriever's order, the LM breaking ties
DEFAULT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 1000.0)


def prior_weight_table(linker: "SynCABELLinker", dev: "DevSet",
                       weights: Sequence[float] = DEFAULT_WEIGHTS,
                       batch_size: Optional[int] = None) -> List[Dict[str, float]]:
    """Dev Recall@1 of candidate reranking for every prior weight in ``weights``."""
    if linker.cfg["candidates"] <= 0:
        raise ValueError(Errors.E066.format(candidates=linker.cfg["candidates"]))
    size = batch_size or linker.cfg["batch_size"]
    scored: List[List[tuple]] = []
    for start in range(0, len(dev), size):
        end = start + size
        scored += linker.candidate_scores(dev.prompt_ids[start:end], dev.groups[start:end],
                                          dev.mentions[start:end])
    table = []
    for w in weights:
        hits = 0
        for gold, group, cands in zip(dev.codes, dev.groups, scored):
            if cands:
                hits += hit(gold, [linker.rank_scored(cands, group, w)[0].code], 1)
        table.append({"prior_weight": float(w), "recall@1": hits / max(1, len(dev))})
    return table


def best_weight(table: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The row with the best Recall@1 (the first of equals: the grid runs from LM-only up)."""
    return max(table, key=lambda r: r["recall@1"])


def calibrate_pipeline(path: Union[str, Path], dev_docs: Sequence[Any], *,
                       dev_size: int = 0, seed: int = 0, candidates: Optional[int] = None,
                       weights: Sequence[float] = DEFAULT_WEIGHTS) -> Dict[str, Any]:
    """Pick the prior weight of the pipeline at ``path`` on ``dev_docs`` and save it there
    (the linker's ``cfg.json`` and ``config.cfg``), with the reranking mode switched on
    (and ``candidates`` changed first, when given).
    Returns ``{"prior_weight", "recall@1", "table", "dev_mentions"}``."""
    import spacy
    from spacy.util import load_config

    from ..evaluation.evaluate import find_linker
    from .examples import build_dev_set
    from .sft import LINKER

    path = Path(path)
    nlp = spacy.load(path)
    linker = find_linker(nlp)
    if candidates is not None:
        linker.cfg["candidates"] = candidates
    dev = build_dev_set(dev_docs, linker, size=dev_size, seed=seed)
    if not len(dev):
        raise ValueError(Errors.E067.format(path=path))
    table = prior_weight_table(linker, dev, weights)
    best = best_weight(table)
    cfg_path = path / LINKER / "cfg.json"
    cfg = srsly.read_json(cfg_path)
    settings = {"prior_weight": best["prior_weight"], "rerank": True,
                "candidates": linker.cfg["candidates"]}
    srsly.write_json(cfg_path, dict(cfg, **settings))
    config = load_config(path / "config.cfg", interpolate=False)
    config["components"][LINKER].update(settings)
    config.to_disk(path / "config.cfg")
    result = {"prior_weight": best["prior_weight"], "recall@1": best["recall@1"],
              "candidates": linker.cfg["candidates"],
              "dev_mentions": len(dev), "table": table}
    srsly.write_json(path / "calibration.json", result)
    return result


__all__ = ["DEFAULT_WEIGHTS", "prior_weight_table", "best_weight", "calibrate_pipeline"]
