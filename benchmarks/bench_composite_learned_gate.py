"""Benchmark: the learned composite gate (``composite_gate``) of a trained rerank pipeline with
``composite_expand``, fitted on the training split, measured on dev and a test split (gold
mentions).

    python benchmarks/bench_composite_learned_gate.py training/spaccc/model-best \\
        corpus/spaccc/test.jsonl --dev corpus/spaccc/dev.jsonl \\
        --train corpus/spaccc/train.jsonl --name spaccc

1. **Fit.** ``training.composite_gate_fit``: the training split's coordinated mentions, each
   under the masked view of its fold, their composite candidates labelled (the gold code set
   or not); a logistic regression; the threshold at which the cross-validated best candidate
   per mention is right at least half the time. Counts per label: coordinated mentions,
   composite golds, gold among the candidates, passing and right in cross-validation.
2. **Where wrong composite answers come from** (dev, no gate of any kind): composite answers
   to single-code golds and to composite golds with wrong parts, per label.
3. **Offline grid.** The mentions the cascade does not settle are scored once by the LM
   (``bench_composite_gate.score_split``) with every composite candidate; then, at the saved
   prior weight and cascade: composites off, no gate, the split gate as saved, and the
   learned gate with each LM margin (``composite_margin``), on dev and test, per label.
4. **Choice on dev** among the learned-gate rows: ``calibration.choose_composite_margin``.
5. **Evaluate.** ``evaluate``'s path on test: composites off, as saved, and the learned gate
   at the dev choice.

Writes ``benchmarks/results/composite_learned_gate_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_composite_expand import evaluate  # noqa: E402
from bench_composite_gate import score_split  # noqa: E402

from spacy_syncabel.corpus import read_corpus  # noqa: E402
from spacy_syncabel.evaluation.evaluate import find_linker  # noqa: E402
from spacy_syncabel.evaluation.metrics import code_set, hit  # noqa: E402
from spacy_syncabel.linking.settings import MODE_RERANK  # noqa: E402
from spacy_syncabel.prompting import SEP_TOKEN  # noqa: E402
from spacy_syncabel.training.calibration import (  # noqa: E402
    DEFAULT_COMPOSITE_MARGINS, OFF, below_split, choose_composite_margin,
    composite_gate_table)
from spacy_syncabel.training.composite_gate_fit import (  # noqa: E402
    fit_gate, masked_training_rows)
from spacy_syncabel.training.examples import DevSet, build_dev_set  # noqa: E402
from spacy_syncabel.training.pipeline_io import load_pipeline  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
MARGINS = (None, *DEFAULT_COMPOSITE_MARGINS)


def fit_report(rows: Sequence[Dict[str, Any]], gate) -> Dict[str, Any]:
    """Per label: coordinated training mentions, composite golds, gold among candidates."""
    out: Dict[str, Dict[str, int]] = {}
    for r in rows:
        for label in (str(r["group"]), "all"):
            row = out.setdefault(label, {"coordinated": 0, "composite_golds": 0,
                                         "gold_among_candidates": 0})
            row["coordinated"] += 1
            row["composite_golds"] += r["composite"]
            row["gold_among_candidates"] += any(ok for _, ok in r["candidates"])
    return {"threshold": gate.threshold, "stats": gate.stats, "per_label": out,
            "features": dict(zip(gate.features, [round(c, 3) for c in gate.coef]))}


def gate_filter(scored, probs) -> List[Optional[list]]:
    """Scored candidates without the composite ones the learned gate does not pass."""
    return [None if rows is None else [r for r in rows if SEP_TOKEN not in r[0]
                                       or p.get(r[0], 0.0) >= t]
            for rows, (p, t) in zip(scored, probs)]


def learned_probs(engine, gate, split, retrieved) -> List[Any]:
    top = [list(r)[:engine.settings.candidates] for r in retrieved]
    props = engine.composite_proposals(split.mentions, split.groups, top, split=None)
    view = engine.with_settings()
    view.composite_gate = gate
    probs = view.composite_gate_probabilities(split.mentions, split.groups, top, props)
    return [({r.name: p for (r, _), p in zip(rs, ps)}, gate.threshold)
            for rs, ps in zip(props, probs)], props


def rows_for(engine, split, scored, retrieved, gates, learned: bool) -> List[Dict[str, Any]]:
    """Grid rows at the saved prior weight and cascade; ``learned``: the plan of an engine
    under the learned gate (a coordinated mention the retriever settles keeps its answer
    unless the LM's is a composite)."""
    s = engine.settings
    view = engine.with_settings(composite_gate=learned)
    view.composite_gate = engine.composite_gate
    cascade = s.cascade_margin if s.cascade else OFF
    return composite_gate_table(view, split, scored, s.prior_weight, gates, cascade, retrieved)


def subset(split, idx):
    return DevSet([split.prompt_ids[i] for i in idx], [split.groups[i] for i in idx],
                  [split.codes[i] for i in idx], [split.mentions[i] for i in idx])


def wrong_sources(engine, split, state) -> Dict[str, Dict[str, int]]:
    """Composite answers with no gate at all: right, to single-code golds, wrong parts."""
    s = engine.settings
    out: Dict[str, Dict[str, int]] = {}
    kb = engine.kb
    for gold, group, rows in zip(split.codes, split.groups, state["scored"]):
        if not rows:
            continue
        ranked = engine.rank_scored(rows, group, s.prior_weight, None)
        if not ranked or len(code_set(ranked[0].code)) < 2:
            continue
        kind = ("right" if hit(gold, [ranked[0].code], 1, kb=kb) else
                "single_code_gold" if len(code_set(gold)) < 2 else "wrong_parts")
        for label in (str(group), "all"):
            row = out.setdefault(label, {"right": 0, "single_code_gold": 0, "wrong_parts": 0})
            row[kind] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("corpus", type=Path, help="The test split (JSONL, the project's corpus)")
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(args.pipeline)
        docs = {k: read_corpus(p) for k, p in (("train", args.train), ("dev", args.dev),
                                                ("test", args.corpus))}
        linker = find_linker(nlp)
        sets = {k: build_dev_set(docs[k], linker, size=0, nlp=nlp) for k in ("dev", "test")}
    saved = linker.engine
    if saved.settings.mode != MODE_RERANK or not saved.settings.composite \
            or not saved.settings.composite_expand:
        raise SystemExit("needs a rerank pipeline with composite and composite_expand on")
    engine = saved.with_settings(composite_split=None, composite_margin=None,
                                 composite_gate=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = masked_training_rows(engine, linker.group_for, docs["train"], docs["dev"])
    gate = fit_gate(rows)
    engine.composite_gate = gate
    result: Dict[str, Any] = {"pipeline": str(args.pipeline), "dev": str(args.dev),
                              "test": str(args.corpus), "train": str(args.train),
                              "settings_as_saved": saved.settings.to_dict(),
                              "fit": {**fit_report(rows, gate),
                                      "seconds": round(time.perf_counter() - t0, 1)},
                              "splits": {}}
    print("fit", json.dumps(result["fit"]["stats"]), flush=True)
    saved_split = saved.settings.composite_split
    for name in ("dev", "test"):
        split = sets[name]
        t0 = time.perf_counter()
        state = score_split(engine, split)
        probs, props = learned_probs(engine, gate, split, state["retrieved"])
        learned = gate_filter(state["scored"], probs)
        as_saved = below_split(state["scored"], props, saved_split)
        grid = {"learned_gate": rows_for(engine, split, learned, state["retrieved"],
                                         MARGINS[1:], True),
                "split_gate_as_saved": rows_for(engine, split, as_saved, state["retrieved"],
                                                [saved.settings.composite_margin]
                                                if saved.settings.composite_margin is not None
                                                else [], False)}
        per_label = {}
        for label in sorted({str(g) for g in split.groups}):
            idx = [i for i, g in enumerate(split.groups) if str(g) == label]
            sub = subset(split, idx)
            per_label[label] = rows_for(engine, sub, [learned[i] for i in idx],
                                        [state["retrieved"][i] for i in idx],
                                        MARGINS[1:], True)
        result["splits"][name] = {
            "mentions": len(split), "scored_by_lm": sum(r is not None for r in state["scored"]),
            "seconds": round(time.perf_counter() - t0, 1),
            "wrong_composite_answers_no_gate": wrong_sources(engine, split, state),
            "grid": grid, "learned_gate_per_label": per_label}
        print(name, json.dumps(grid["learned_gate"]), flush=True)
    chosen = choose_composite_margin(result["splits"]["dev"]["grid"]["learned_gate"])
    result["chosen_on_dev"] = {"composite_gate": True, "composite_margin": chosen["gate"],
                               "threshold": gate.threshold}
    result["test_at_chosen"] = next(r for r in result["splits"]["test"]["grid"]["learned_gate"]
                                    if r["gate"] == chosen["gate"])
    print("chosen on dev:", result["chosen_on_dev"], json.dumps(result["test_at_chosen"]),
          flush=True)
    views = {"composites_off": {"composite": False}, "as_saved": {},
             "learned_gate_chosen_on_dev": {"composite_gate": True, "composite_split": None,
                                            "composite_margin": chosen["gate"]}}
    result["evaluate_test"] = {}
    for key, changes in views.items():
        linker.engine = saved.with_settings(**changes)
        linker.engine.composite_gate = gate
        linker.settings = linker.engine.settings
        result["evaluate_test"][key] = {"settings": changes,
                                        **evaluate(nlp, docs["test"], str(args.corpus))}
        print(key, json.dumps(result["evaluate_test"][key]), flush=True)
    linker.engine, linker.settings = saved, saved.settings
    path = OUT / f"composite_learned_gate_{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print("->", path)


if __name__ == "__main__":
    main()
