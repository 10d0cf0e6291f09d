"""Benchmark: the composite gate (``composite_margin``) of a trained rerank pipeline, chosen on
dev, measured on a test split.

    python benchmarks/bench_composite_gate.py training/spaccc/model-best \\
        corpus/spaccc/test.jsonl --dev corpus/spaccc/dev.jsonl --name spaccc

1. **Offline grid.** Every coded mention of dev and test is retrieved and settled as the
   pipeline's cascade settles it; the others' candidates (retrieved names and composite
   candidates) are scored once by the LM, with each composite's gate value: the smallest
   ``log P(<SEP>) - log P(EOS)`` after its names but the last. Each gate of the grid then
   ranks them at the saved prior weight, the cascade as ``engine.link`` applies it (under a
   gate, a coordinated mention the retriever settles takes the LM's answer only when it is a
   composite): Recall@1, composite Recall@1 (composite golds right / composite golds),
   composite precision (composite answers right / composite answers), and single-code golds
   answered with a composite. "off": composite off; "none": no gate (the pipeline as saved).
2. **Choice.** On dev, ``calibration.choose_composite_margin``: the best Recall@1 among the
   margins whose composite answers are at least half right (none counts) and whose Recall@1
   is not below composite off's; of equals, the lowest margin.
3. **Limits.** Of the test composite golds: how many have their code set among the composite
   candidates, and how many of those the model ranks ``<SEP>`` above stopping for (margin >= 0).
4. **Evaluate.** The pipeline's linker links test's gold mentions through ``evaluate``'s path
   (the reference's rule: NO_CODE golds out, out-of-KB golds in as misses, duplicates once)
   with composites off, as saved, and with the chosen gate.

Writes ``benchmarks/results/composite_gate_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import evaluate_linker, find_linker
from spacy_syncabel.evaluation.metrics import code_set, hit
from spacy_syncabel.linking.settings import MODE_RERANK
from spacy_syncabel.prompting import SEP_TOKEN
from spacy_syncabel.training.calibration import (DEFAULT_COMPOSITE_MARGINS, OFF,
                                                 choose_composite_margin, composite_gate_table)
from spacy_syncabel.training.examples import build_dev_set
from spacy_syncabel.training.pipeline_io import load_pipeline

OUT = Path(__file__).resolve().parent / "results"


def score_split(engine, split) -> Dict[str, Any]:
    """Every mention's retrieved names, and the LM's scores of those the cascade does not
    settle without the LM (under no gate: coordinated mentions too)."""
    retrieved = engine.retrieve_in_batches(split.mentions, split.groups, engine.cascade_depth)
    plan = engine.with_settings(composite_margin=None).settle(split.mentions, split.groups,
                                                              retrieved)
    margin = engine.settings.cascade_margin
    rest = [i for i, p in enumerate(plan) if not (engine.settings.cascade and p.settled(margin))]
    scored: List[Optional[list]] = [None] * len(split)
    t0 = time.perf_counter()
    for chunk in engine.batches([split.prompt_ids[i] for i in rest]):
        ids = [rest[j] for j in chunk]
        part = engine.score_candidates([split.prompt_ids[i] for i in ids],
                                       [split.groups[i] for i in ids],
                                       [split.mentions[i] for i in ids],
                                       [retrieved[i] for i in ids])
        for i, rows in zip(ids, part):
            scored[i] = rows
    return {"retrieved": retrieved, "scored": scored, "seconds": time.perf_counter() - t0}


def grid(engine, split, state, gates: Sequence[float]) -> List[Dict[str, Any]]:
    s = engine.settings
    return composite_gate_table(engine, split, state["scored"], s.prior_weight, gates,
                                s.cascade_margin if s.cascade else OFF, state["retrieved"])


def limits(engine, split, state) -> Dict[str, Any]:
    """Composite golds: code set among the scored composite candidates, and with margin >= 0."""
    kb = engine.kb
    out = {"composite_golds": 0, "scored_by_lm": 0, "gold_among_candidates": 0,
           "gold_candidate_margin_ge_0": 0, "gold_candidate_margins": [],
           "best_single_margin_ge_0": 0}
    for gold, group, rows in zip(split.codes, split.groups, state["scored"]):
        if len(code_set(gold)) < 2:
            continue
        out["composite_golds"] += 1
        if rows is None:
            continue
        out["scored_by_lm"] += 1
        want = code_set(gold, kb)
        for name, _, _, _, margin in rows:
            if SEP_TOKEN in name and frozenset(
                    kb.lookup(p, group) for p in name.split(SEP_TOKEN)) == want:
                out["gold_among_candidates"] += 1
                out["gold_candidate_margin_ge_0"] += margin >= 0
                out["gold_candidate_margins"].append(round(margin, 3))
                break
        margins = [r[4] for r in rows if r[4] is not None]
        out["best_single_margin_ge_0"] += bool(margins) and max(margins) >= 0
    out["gold_candidate_margins"].sort()
    return out


def evaluate(path: Path, corpus, source: str, changes: Dict[str, Any]) -> Dict[str, Any]:
    """``evaluate``'s metrics of the pipeline at ``path`` loaded with ``changes`` to its
    linker's settings (the folder is not written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(path, **changes)
    m = evaluate_linker(nlp, corpus, baseline=False, end_to_end=False, source=source)
    comp, answers = m["composite"], m["composite_answers"]
    return {"settings": changes, "recall@1": m["recall@1"], "recall@5": m["recall@5"],
            "n_mentions": m["n_mentions"], "composite_golds": comp["n_mentions"],
            "composite_recall@1": comp["recall@1"], "composite_answers": answers["n"],
            "composite_right": answers["right"],
            "composite_precision": answers["precision@1"], "seconds": round(m["seconds"], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("corpus", type=Path, help="The test split (JSONL, the project's corpus)")
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-evaluate", action="store_true", help="The offline grid only.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(args.pipeline)
        dev_docs, test_docs = read_corpus(args.dev), read_corpus(args.corpus)
    linker = find_linker(nlp)
    engine = linker.engine
    if engine.settings.mode != MODE_RERANK or not engine.settings.composite:
        raise SystemExit("needs a rerank pipeline with composite on (calibrate's output)")
    engine = engine.with_settings(composite_margin=None)
    result: Dict[str, Any] = {"pipeline": str(args.pipeline), "dev": str(args.dev),
                              "test": str(args.corpus), "settings": engine.settings.to_dict(),
                              "splits": {}}
    gates = sorted({-4.0, -3.0, -2.5, -1.5, *DEFAULT_COMPOSITE_MARGINS})
    for split_name, docs in (("dev", dev_docs), ("test", test_docs)):
        split = build_dev_set(docs, linker, size=0, nlp=nlp)
        state = score_split(engine, split)
        rows = grid(engine, split, state, gates)
        result["splits"][split_name] = {
            "mentions": len(split), "scored_by_lm": sum(r is not None for r in state["scored"]),
            "scoring_seconds": round(state["seconds"], 1), "grid": rows,
            "limits": limits(engine, split, state)}
        print(split_name, json.dumps(rows, indent=None), flush=True)
    chosen = choose_composite_margin(result["splits"]["dev"]["grid"])
    result["chosen_on_dev"] = chosen["gate"]
    result["test_at_chosen"] = next(r for r in result["splits"]["test"]["grid"]
                                    if r["gate"] == chosen["gate"])
    if not args.no_evaluate:
        views = {"composites_off": {"composite": False}, "as_saved": {},
                 "gate_chosen_on_dev": {"composite_margin": chosen["gate"]}}
        result["evaluate_test"] = {k: evaluate(args.pipeline, test_docs, str(args.corpus), v)
                                   for k, v in views.items()}
        print(json.dumps(result["evaluate_test"], indent=1))
    path = OUT / f"composite_gate_{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print("chosen on dev:", chosen, "->", path)


if __name__ == "__main__":
    main()
