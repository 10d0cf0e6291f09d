"""Benchmark: composite candidates in calibrated ``rerank`` mode, on and off, on a trained
pipeline's gold mentions.

    python benchmarks/bench_composite_rerank.py training/spaccc/model-best \
        ../shared/data/spaccc/test_half.tsv --dev corpus/spaccc/dev.jsonl --name spaccc

1. **Dev (calibration).** The dev mentions' candidates are scored once with composite
   candidates (``composite_pairs``); the prior-weight grid of ``calibrate`` is then scored
   offline without them ("off", what calibration did before) and with them ("on"), and, to
   choose the composite prior, with two other priors for composites: the mean of the parts'
   scores, a conjunct's name against its conjunct ("on_parts_mean_prior"), and the mean
   similarity of the whole mention to the parts ("on_whole_mention_prior", beam search's).
2. **Test.** The pipeline links every gold mention through ``linker.pipe`` (as ``evaluate``
   does) in three views, interleaved slice by slice in one process: composite off with the
   saved weight (the pipeline as saved), composite candidates on with the saved weight, and on with
   the weight calibrated with them. Each is scored by ``evaluation/metrics.py`` (the paper's
   exact Recall@k, overall and on the composite golds).
3. **Ceiling.** How often the composite candidates hold the gold code set of a composite
   mention, per bound on their number and per source (conjuncts, pairs of retrieved names).

Writes ``benchmarks/results/composite_rerank_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch

from bench_cascade import gold_inputs  # noqa: E402 (a sibling script, as bench_scoring does)
from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import find_linker
from spacy_syncabel.evaluation.metrics import code_set, doc_link_items, hit, score_links
from spacy_syncabel.linking.candidates import Retrieved
from spacy_syncabel.linking.composite import (_retrieve_conjuncts, composite_candidates,
                                              conjunct_candidates, conjuncts, pair_candidates)
from spacy_syncabel.prompting import SEP_TOKEN
from spacy_syncabel.training.calibration import DEFAULT_WEIGHTS, best_weight
from spacy_syncabel.training.examples import build_dev_set
from spacy_syncabel.training.pipeline_io import load_pipeline

OUT = Path(__file__).resolve().parent / "results"


def interleaved(views: Dict[str, Any], inputs: Sequence, slices: int, batch_size: int):
    """Each view links every slice (copies of the docs); the order flips slice by slice, so
    every view sees the same machine load."""
    out: Dict[str, list] = {k: [] for k in views}
    seconds = {k: 0.0 for k in views}
    bounds = [round(i * len(inputs) / slices) for i in range(slices + 1)]
    names = list(views)
    for s in range(slices):
        part = inputs[bounds[s]:bounds[s + 1]]
        for name in (names if s % 2 == 0 else names[::-1]):
            copies = [d.copy() for d in part]
            t0 = time.perf_counter()
            out[name] += list(views[name].pipe(copies, batch_size=batch_size))
            seconds[name] += time.perf_counter() - t0
        print(f"slice {s + 1}/{slices}: " + ", ".join(f"{k} {v:.1f}s" for k, v in
                                                      seconds.items()), flush=True)
    return out, seconds


# -- dev: one scoring pass, every table offline ------------------------------------------------
def score_dev(engine, dev) -> List[list]:
    out: List[list] = [None] * len(dev)  # type: ignore[list-item]
    for chunk in engine.batches(dev.prompt_ids):
        part = engine.score_candidates([dev.prompt_ids[i] for i in chunk],
                                       [dev.groups[i] for i in chunk],
                                       [dev.mentions[i] for i in chunk])
        for i, scored in zip(chunk, part):
            out[i] = scored
    return out


def whole_mention_prior(engine, dev, scored) -> List[list]:
    """The same scores, a composite's prior replaced by ``engine.prior`` (the mean cosine of
    the whole mention and each part), as beam search's prior has it."""
    out = []
    for mention, group, rows in zip(dev.mentions, dev.groups, scored):
        comp = [r[0] for r in rows if SEP_TOKEN in r[0]]
        sims = dict(zip(comp, engine.prior(mention, comp, group))) if comp else {}
        out.append([(n, sims.get(n, s), lp, k) for n, s, lp, k in rows])
    return out


def parts_mean_prior(engine, dev, scored) -> List[list]:
    """The same scores, a conjunct candidate's prior replaced by the mean of its parts' scores
    against their conjuncts (pairs already have the mean of their parts' scores)."""
    per_conj = _retrieve_conjuncts(dev.mentions, dev.groups, engine.generator.top)
    out = []
    for group, rows, pc in zip(dev.groups, scored, per_conj):
        means = {SEP_TOKEN.join(p.name for p in parts): m for parts, m in
                 (conjunct_candidates(pc, group, engine.kb.lookup) if pc else [])}
        out.append([(n, means.get(n, s), lp, k) for n, s, lp, k in rows])
    return out


def table(engine, dev, scored, weights=DEFAULT_WEIGHTS) -> List[Dict[str, float]]:
    rows = []
    composite = [i for i, c in enumerate(dev.codes) if len(code_set(c)) > 1]
    for w in weights:
        top = [engine.rank_scored(s, g, w)[0].code if s else "" for s, g in
               zip(scored, dev.groups)]
        hits = [hit(gold, [p], 1, kb=engine.kb) for gold, p in zip(dev.codes, top)]
        rows.append({"prior_weight": w, "recall@1": sum(hits) / len(dev),
                     "composite_recall@1": sum(hits[i] for i in composite) / max(1, len(composite)),
                     "composite_top1": sum("+" in p for p in top)})
    return rows


def calibrate(engine, dev) -> Dict[str, Any]:
    t0 = time.perf_counter()
    scored = score_dev(engine, dev)
    seconds = time.perf_counter() - t0
    singles = [[r for r in rows if SEP_TOKEN not in r[0]] for rows in scored]
    tables = {"off": table(engine, dev, singles), "on": table(engine, dev, scored),
              "on_parts_mean_prior": table(engine, dev, parts_mean_prior(engine, dev, scored)),
              "on_whole_mention_prior": table(engine, dev, whole_mention_prior(engine, dev,
                                                                                  scored))}
    n_composite = sum(len(code_set(c)) > 1 for c in dev.codes)
    return {"dev_mentions": len(dev), "dev_composite": n_composite,
            "scoring_seconds": round(seconds, 1),
            "best": {k: best_weight(t) for k, t in tables.items()}, "tables": tables}


# -- test ----------------------------------------------------------------------------------------
def score(linked, gold, kb) -> Dict[str, Any]:
    m = score_links(doc_link_items(zip(linked, gold)), (1, 5), kb)
    out = {k: m[k] for k in ("recall@1", "recall@5", "recall@1_lenient", "n_mentions",
                             "n_excluded")}
    out["composite"] = m["composite"]
    top = [e.kb_id_ for d in linked for e in d.ents]
    golds = [e.kb_id_ for d in gold for e in d.ents]
    out["composite_top1"] = sum("+" in t for t in top)
    out["composite_top1_on_single_gold"] = sum("+" in t and "+" not in g
                                               for t, g in zip(top, golds))
    return out


def ceiling(linker, engine, docs_gold, limits: Sequence[int]) -> Dict[str, Any]:
    """Composite golds (parts in the KB) whose code set is among the composite candidates."""
    kb = engine.kb
    items = [(linker.mention_text(e), linker.group_for(e.label_), code_set(e.kb_id_, kb))
             for d in docs_gold for e in d.ents if len(code_set(e.kb_id_)) > 1]
    items = [it for it in items if all(p in kb for p in it[2])]
    mentions, groups, golds = ([it[k] for it in items] for k in range(3))
    top = engine.retrieve(mentions, groups)

    def holds(cands, gold, group):
        return any(frozenset(kb.lookup(n, group) for n in r.name.split(SEP_TOKEN)) == gold
                   for r in cands)

    out: Dict[str, Any] = {"composite_golds_in_kb": len(items),
                           "with_a_coordinator": sum(bool(conjuncts(m)) for m in mentions)}
    for limit in limits:
        t0 = time.perf_counter()
        cands = composite_candidates(mentions, groups, top, engine.generator.top,
                                     engine.generator.similarity, kb.lookup, limit)
        sec = time.perf_counter() - t0
        out[f"pairs={limit}"] = {"gold_among_candidates": sum(
            holds(c, g, grp) for c, g, grp in zip(cands, golds, groups)),
            "candidates_per_mention": sum(map(len, cands)) / max(1, len(items)),
            "ms_per_mention": round(1000 * sec / max(1, len(items)), 2)}
    per_conj = _retrieve_conjuncts(mentions, groups, engine.generator.top)

    def as_cands(props):
        return [Retrieved(SEP_TOKEN.join(p.name for p in parts), s) for parts, s in props]
    out["by_source"] = {
        "conjuncts": sum(holds(as_cands(conjunct_candidates(pc, grp, kb.lookup)), g, grp)
                         for pc, g, grp in zip(per_conj, golds, groups) if pc),
        "pairs_of_top4": sum(holds(as_cands(pair_candidates(t, grp, kb.lookup)), g, grp)
                             for t, g, grp in zip(top, golds, groups)),
        "by_parts": {}}
    for n in sorted({len(g) for g in golds}):
        out["by_source"]["by_parts"][str(n)] = sum(len(g) == n for g in golds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("corpus")
    ap.add_argument("--dev", required=True, help="Dev corpus for the prior weight (calibrate's)")
    ap.add_argument("--dev-size", type=int, default=1000)
    ap.add_argument("--name", required=True)
    ap.add_argument("--pairs", type=int, default=None, help="composite_pairs (default: setting)")
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="First N documents (0: all; plumbing)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(args.pipeline)
        docs = read_corpus(args.corpus)
        dev_docs = read_corpus(args.dev)
    if args.limit:
        docs, dev_docs = docs[:args.limit], dev_docs[:args.limit]
    linker = find_linker(nlp)
    saved = linker.settings
    pairs = saved.composite_pairs if args.pairs is None else args.pairs
    on_engine = linker.engine.with_settings(mode="rerank", composite=True, composite_pairs=pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = build_dev_set(dev_docs, linker, size=args.dev_size, seed=0, nlp=nlp)
    cal = calibrate(on_engine, dev)
    print(json.dumps(cal["best"]), flush=True)
    w_on = cal["best"]["on"]["prior_weight"]
    views = {"off": linker.with_settings(mode="rerank", composite=False),
             "on_saved_weight": linker.with_settings(mode="rerank", composite=True,
                                                     composite_pairs=pairs),
             "on_calibrated": linker.with_settings(mode="rerank", composite=True,
                                                   composite_pairs=pairs, prior_weight=w_on)}
    if w_on == saved.prior_weight:
        del views["on_saved_weight"]
    gold, inputs = gold_inputs(nlp, docs)
    linked, seconds = interleaved(views, inputs, args.slices, args.batch_size)
    n = sum(len(d.ents) for d in inputs)
    results = {}
    for name, view in views.items():
        results[name] = dict(score(linked[name], gold, linker.kb),
                             prior_weight=view.settings.prior_weight,
                             composite_pairs=view.settings.composite_candidates,
                             seconds=round(seconds[name], 1),
                             mentions_per_second=round(n / seconds[name], 2))
        print(name, json.dumps(results[name]), flush=True)
    report = {
        "pipeline": str(args.pipeline), "corpus": str(args.corpus), "dev": str(args.dev),
        "saved_settings": {k: getattr(saved, k) for k in ("mode", "candidates", "prior_weight",
                                                          "composite", "length_penalty")},
        "composite_pairs": pairs, "threads": args.threads, "slices": args.slices,
        "mentions": n, "calibration": cal, "test": results,
        "ceiling": ceiling(linker, on_engine, gold, [1, 2, 4, 8, 16]),
        "speed_ratio_on_vs_off": {k: round(seconds["off"] / seconds[k], 3) for k in views},
    }
    print(json.dumps(report["ceiling"]), flush=True)
    path = OUT / f"composite_rerank_{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print("->", path)


if __name__ == "__main__":
    main()
