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
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import Errors, Warnings
from ..evaluation.metrics import code_set, hit
from ..linking import MODE_RERANK, LinkingEngine
from ..linking.candidates import Retrieved
from ..linking.engine import ScoredName
from ..prompting import SEP_TOKEN
from ..pipes import find_linker
from .examples import build_dev_set
from .pipeline_io import save_pipeline

# 0: the LM alone; large: the retriever's order, the LM breaking ties
DEFAULT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 1000.0)
# the cascade's cut-offs, most aggressive first (0: the retriever settles every mention but
# ambiguous exact matches; None: exact/alias matches only)
DEFAULT_MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                   0.75, 1.0, None)
# the composite gate's grid (``composite_margin``: log P(<SEP>) - log P(EOS) after a name);
# 0.0 is the reference's rule, <SEP> ranked above stopping
DEFAULT_COMPOSITE_MARGINS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
#: the split gate's grid (``composite_split``: mean part score against its conjunct minus the
#: whole mention's best single score); None: no split gate
DEFAULT_COMPOSITE_SPLITS = (None, -0.1, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
#: a gate row with no composite candidate at all (composite off)
OFF = "off"
# the share of the dev composite answers that must be right at the chosen gate
DEFAULT_COMPOSITE_PRECISION = 0.5
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
    retrieved = [[Retrieved(row[0], row[1]) for row in cands if SEP_TOKEN not in row[0]]
                 for cands in scored]
    plan = view.settle(dev.mentions, dev.groups, retrieved)
    full = [_top1(engine, cands, group, weight) for cands, group in zip(scored, dev.groups)]
    table = []
    for margin in margins:
        hits = skipped = 0
        for gold, p, lm_top in zip(dev.codes, plan, full):
            skipped += p.settled(margin) and not p.composite_open
            hits += hit(gold, cascade_answer(p, margin, lm_top), 1, kb=engine.kb)
        table.append({"margin": margin, "recall@1": hits / max(1, len(dev)),
                      "skipped": skipped / max(1, len(dev))})
    return table


def cascade_answer(settlement: Any, margin: Optional[float],
                   lm_top: Sequence[str]) -> List[str]:
    """A mention's top-1 under the cascade (``engine.link``'s rule): the retriever's when it
    settles the mention (a coordinated mention under the composite gate: unless the LM's
    answer is a composite), else the LM's ``lm_top``."""
    if settlement is None or not settlement.settled(margin):
        return list(lm_top)
    if settlement.composite_open and lm_top and len(code_set(lm_top[0])) > 1:
        return list(lm_top)
    return [settlement.ranked[0].code]


def composite_gate_row(engine: LinkingEngine, dev: Any,
                       scored: Sequence[Optional[Sequence[ScoredName]]], weight: float,
                       gate: Any, plan: Optional[Sequence[Any]] = None,
                       cascade_margin: Optional[float] = None) -> Dict[str, Any]:
    """Dev Recall@1 and the composite answers' counts at one composite gate (a margin, None:
    no gate, :data:`OFF`: no composite candidate), from :func:`score_dev`'s scores (a
    mention scored None has no LM answer). ``plan``: the cascade's settlements (of an engine
    with this gate) at ``cascade_margin``; None: the LM answers every mention."""
    tops: List[str] = []
    for i, (cands, group) in enumerate(zip(scored, dev.groups)):
        rows = [r for r in cands or () if gate != OFF or r[4] is None]
        ranked = engine.rank_scored(rows, group, weight, None if gate == OFF else gate) \
            if rows else []
        lm_top = [ranked[0].code] if ranked else []
        top = cascade_answer(plan[i] if plan is not None else None, cascade_margin, lm_top)
        tops.append(top[0] if top else "")
    hits = [hit(gold, [top] if top else [], 1, kb=engine.kb)
            for gold, top in zip(dev.codes, tops)]
    composite = [len(code_set(g)) > 1 for g in dev.codes]
    answers = [len(code_set(t)) > 1 for t in tops]
    n_comp, n_ans = sum(composite), sum(answers)
    right = sum(h for h, a in zip(hits, answers) if a)
    return {"gate": gate, "recall@1": sum(hits) / max(1, len(dev)),
            "composite_golds": n_comp,
            "composite_recall@1": sum(h for h, c in zip(hits, composite) if c) / max(1, n_comp),
            "composite_answers": n_ans, "composite_right": right,
            "composite_precision": right / n_ans if n_ans else 0.0,
            "composite_answers_to_single_golds": sum(a and not c
                                                     for a, c in zip(answers, composite))}


def composite_gate_table(engine: LinkingEngine, dev: Any,
                         scored: Sequence[Sequence[ScoredName]], weight: float,
                         gates: Sequence[Any] = DEFAULT_COMPOSITE_MARGINS,
                         cascade_margin: Any = OFF,
                         retrieved: Optional[Sequence[Sequence[Retrieved]]] = None,
                         ) -> List[Dict[str, Any]]:
    """:func:`composite_gate_row` for no gate (None), every gate of ``gates`` and composite
    off (:data:`OFF`), at prior weight ``weight``; with the cascade at ``cascade_margin``
    (:data:`OFF`: without it), each gate with its own settlements (``engine.settle`` of
    ``retrieved``, default the scored single names)."""
    plans: Dict[Any, Any] = {}
    if cascade_margin != OFF:
        if retrieved is None:
            retrieved = [[Retrieved(row[0], row[1]) for row in cands
                          if SEP_TOKEN not in row[0]] for cands in scored]
        for key, changes in ((None, {"composite_margin": None}),
                             ("gated", {"composite_margin": 0.0}),
                             (OFF, {"composite": False})):
            view = engine.with_settings(mode=MODE_RERANK, cascade=True, **changes)
            plans[key] = view.settle(dev.mentions, dev.groups, retrieved)
    rows = []
    for g in (None, *gates, OFF):
        plan = plans.get(g if g in (None, OFF) else "gated")
        rows.append(composite_gate_row(engine, dev, scored, weight, g, plan,
                                       None if cascade_margin == OFF else cascade_margin))
    return rows


def below_split(scored: Sequence[Optional[Sequence[ScoredName]]],
                proposals: Sequence[Sequence[Tuple[Retrieved, float]]],
                split: Optional[float]) -> List[Optional[List[ScoredName]]]:
    """Scored candidates without the composite ones whose split evidence (``proposals``,
    :meth:`LinkingEngine.composite_proposals`) is below ``split`` (None: all kept)."""
    if split is None:
        return [None if rows is None else list(rows) for rows in scored]
    out: List[Optional[List[ScoredName]]] = []
    for rows, props in zip(scored, proposals):
        keep = {r.name for r, evidence in props if evidence >= split}
        out.append(None if rows is None else
                   [r for r in rows if SEP_TOKEN not in r[0] or r[0] in keep])
    return out


def composite_split_table(engine: LinkingEngine, dev: Any,
                          scored: Sequence[Optional[Sequence[ScoredName]]], weight: float,
                          splits: Sequence[Optional[float]] = DEFAULT_COMPOSITE_SPLITS,
                          gates: Sequence[Any] = DEFAULT_COMPOSITE_MARGINS,
                          cascade_margin: Any = OFF,
                          retrieved: Optional[Sequence[Sequence[Retrieved]]] = None,
                          ) -> List[Dict[str, Any]]:
    """:func:`composite_gate_table` at every split gate of ``splits`` (rows gain ``split``;
    the composite-off row once, split None). ``scored`` must hold every composite candidate
    (scored with no split gate); their evidence comes from the candidates of ``retrieved``
    (default: the scored single names)."""
    if retrieved is None:
        retrieved = [[Retrieved(row[0], row[1]) for row in cands or ()
                      if SEP_TOKEN not in row[0]] for cands in scored]
    top = [list(r)[:engine.settings.candidates] for r in retrieved]
    proposals = engine.composite_proposals(dev.mentions, dev.groups, top, split=None)
    rows: List[Dict[str, Any]] = []
    for split in splits:
        table = composite_gate_table(engine, dev, below_split(scored, proposals, split),
                                     weight, gates, cascade_margin, retrieved)
        rows += [{"split": None if r["gate"] == OFF else split, **r} for r in table
                 if r["gate"] != OFF or split == splits[-1]]
    return rows


def choose_composite_split(table: Sequence[Dict[str, Any]],
                           min_precision: float = DEFAULT_COMPOSITE_PRECISION,
                           ) -> Dict[str, Any]:
    """:func:`choose_composite_margin` over the (split, margin) rows of
    :func:`composite_split_table`: the best dev Recall@1 among the rows whose composite
    answers are at least ``min_precision`` right (none counts) and whose Recall@1 is not below
    composite off's; of equals, the highest split, then the lowest margin. No gate at all
    (both None) only when no row qualifies."""
    off = next((r["recall@1"] for r in table if r["gate"] == OFF), float("-inf"))
    ok = [r for r in table if r["gate"] != OFF and r["recall@1"] >= off - 1e-12
          and (r["composite_answers"] == 0 or r["composite_precision"] >= min_precision)]
    if not ok:
        return next((r for r in table if r["gate"] is None and r["split"] is None), table[0])

    def key(r: Dict[str, Any]) -> Tuple[float, float, float]:
        split = float("-inf") if r["split"] is None else r["split"]
        gate = float("inf") if r["gate"] is None else r["gate"]
        return (round(r["recall@1"], 12), split, -gate)

    return max(ok, key=key)


def choose_composite_margin(table: Sequence[Dict[str, Any]],
                            min_precision: float = DEFAULT_COMPOSITE_PRECISION,
                            ) -> Dict[str, Any]:
    """The gate, among the margins, with the best dev Recall@1 of those whose composite
    answers are at least ``min_precision`` right (none counts: a coordinated single-code
    mention stays single) and whose Recall@1 is not below composite off's (:data:`OFF`);
    of equals, the lowest margin. No gate (None) only when no margin qualifies."""
    off = next((r["recall@1"] for r in table if r["gate"] == OFF), float("-inf"))
    rows = [r for r in table if r["gate"] not in (None, OFF)
            and r["recall@1"] >= off - 1e-12
            and (r["composite_answers"] == 0 or r["composite_precision"] >= min_precision)]
    if not rows:
        rows = [r for r in table if r["gate"] is None] or list(table)
        return rows[0]
    return max(rows, key=lambda r: (round(r["recall@1"], 12), -r["gate"]))


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
                       cascade_tolerance: float = DEFAULT_CASCADE_TOLERANCE,
                       composite_margins: Sequence[float] = DEFAULT_COMPOSITE_MARGINS,
                       train_docs: Optional[Sequence[Any]] = None,
                       ) -> Dict[str, Any]:
    """Pick the prior weight of the pipeline at ``path`` on ``dev_docs``, then (``cascade``)
    the cascade's cut-off, and save the pipeline again in rerank mode with them (and with
    ``candidates`` when given). With composite candidates on, the composite gate
    (``composite_margin``, :func:`choose_composite_margin` over ``composite_margins``) is
    chosen at the chosen weight, and again under the chosen cascade. ``cascade_tolerance``:
    dev Recall@1 (a fraction) the cascade may lose against the full model. Returns
    ``{"prior_weight", "recall@1", "candidates", "table", "dev_mentions", "cascade",
    "composite_gate"}``; ``cascade`` holds ``{"on", "margin", "recall@1",
    "skipped", "tolerance", "table"}``. ``train_docs`` (the linker's training corpus), with
    ``composite_expand`` on: the learned composite gate is fitted on them first
    (``training/composite_gate_fit.py``, saved as ``composite_gate.json`` with
    ``composite_gate`` on, in place of the split gate) and the LM's gate chosen with it;
    ``"learned_gate"`` then holds its threshold and counts."""
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
    learned = None
    if engine.settings.composite_candidates > 0 and engine.settings.composite_expand \
            and train_docs:
        learned = _fit_learned_gate(linker, engine, train_docs, dev_docs)
    if learned is not None:
        engine = engine.with_settings(composite_gate=True, composite_split=None)
        engine.composite_gate = linker.engine.composite_gate = learned
    elif engine.settings.composite_expand:  # every composite candidate: the split gate's grid
        engine = engine.with_settings(composite_split=None, composite_gate=False)
    scored = score_dev(engine, dev)
    table = prior_weight_table(engine, dev, weights, scored)
    best = best_weight(table)
    settings = engine.settings.replace(mode=MODE_RERANK, prior_weight=best["prior_weight"],
                                       cascade=False)
    result = {"prior_weight": best["prior_weight"], "recall@1": best["recall@1"],
              "candidates": settings.candidates, "dev_mentions": len(dev), "table": table}
    if learned is not None:
        result["learned_gate"] = {"threshold": learned.threshold, **learned.stats}
    gated = settings.composite_candidates > 0
    if gated:  # the gate on the LM's answers, then again under the chosen cascade
        gate = _calibrate_gate(engine, dev, scored, best["prior_weight"], composite_margins,
                               path)
        engine = engine.with_settings(composite_margin=gate["margin"],
                                      composite_split=gate["split"])
        best = {**best, "recall@1": gate["recall@1"]}
    if cascade:
        result["cascade"] = _calibrate_cascade(engine, dev, scored, best, margins,
                                               cascade_tolerance, path)
        settings = settings.replace(cascade=result["cascade"]["on"],
                                    cascade_margin=result["cascade"]["margin"])
        if gated and result["cascade"]["on"]:
            gate = _calibrate_gate(engine, dev, scored, best["prior_weight"],
                                   composite_margins, path, result["cascade"]["margin"])
    if gated:
        result["composite_gate"] = gate
        settings = settings.replace(composite_margin=gate["margin"],
                                    composite_split=gate["split"])
    save_pipeline(nlp, path, settings=settings, extra_files={"calibration.json": result},
                  meta=_read_meta(path))
    return result


def _calibrate_gate(engine: LinkingEngine, dev: Any, scored, weight: float,
                    gates: Sequence[float], path: Path, cascade_margin: Any = OFF,
                    ) -> Dict[str, Any]:
    """The composite gate's part of the calibration result (W530 when no margin
    qualifies)."""
    if engine.settings.composite_expand and not engine.settings.composite_gate:
        # the split gate and the LM's gate together (the learned gate replaces the split's)
        table = composite_split_table(engine, dev, scored, weight, DEFAULT_COMPOSITE_SPLITS,
                                      gates, cascade_margin)
        row = choose_composite_split(table)
    else:
        table = composite_gate_table(engine, dev, scored, weight, gates, cascade_margin)
        row = choose_composite_margin(table)
    if row["gate"] is None and row.get("split") is None and gates:
        warnings.warn(Warnings.W530.format(path=path, top=max(gates),
                                           precision=DEFAULT_COMPOSITE_PRECISION))
    return {"margin": row["gate"], "split": row.get("split"), "recall@1": row["recall@1"],
            "cascade_margin": None if cascade_margin == OFF else cascade_margin,
            "table": table}


def _fit_learned_gate(linker: Any, engine: LinkingEngine, train_docs: Sequence[Any],
                      dev_docs: Sequence[Any]) -> Optional[Any]:
    """The learned composite gate fitted on the training documents' coordinated mentions
    (None, with W630, when none of their composite candidates is ever the gold: nothing to
    learn)."""
    from .composite_gate_fit import fit_gate, masked_training_rows

    rows = masked_training_rows(engine, linker.group_for, train_docs, dev_docs)
    gate = fit_gate(rows)
    if not gate.stats["gold_candidates"]:
        warnings.warn(Warnings.W630.format(mentions=gate.stats["mentions"],
                                           composite=gate.stats["composite_mentions"]))
        return None
    return gate


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


__all__ = ["DEFAULT_WEIGHTS", "DEFAULT_MARGINS", "DEFAULT_CASCADE_TOLERANCE",
           "DEFAULT_COMPOSITE_MARGINS", "DEFAULT_COMPOSITE_PRECISION", "OFF", "score_dev",
           "prior_weight_table", "best_weight", "cascade_answer", "cascade_table",
           "choose_margin", "composite_gate_row", "composite_gate_table",
           "choose_composite_margin", "below_split", "composite_split_table",
           "choose_composite_split", "DEFAULT_COMPOSITE_SPLITS", "calibrate_pipeline"]
