"""Benchmark: composite candidates from coordination-ellipsis expansion and composite aliases
(``composite_expand``), and the split gate (``composite_split``), of a trained rerank pipeline:
chosen on dev, measured on a test split (gold mentions).

    python benchmarks/bench_composite_expand.py training/spaccc/model-best \\
        corpus/spaccc/test.jsonl --dev corpus/spaccc/dev.jsonl \\
        --train corpus/spaccc/train.jsonl --name spaccc

1. **Composite aliases.** When the pipeline was saved without them, they are built from the
   training split (``training.examples.composite_aliases``) and added in memory (the folder is
   not written).
2. **Candidates (no LM).** For dev and test, the composite golds whose gold code set is among
   the composite candidates, and in first place, with the former candidates (expansion off, no
   composite alias) and the new ones, per label.
3. **Offline grid.** The mentions the cascade does not settle are scored once by the LM
   (``bench_composite_gate.score_split``) with the new candidates and no gate; then every split
   gate (a composite candidate kept only when its split evidence reaches it) × every LM gate
   (``composite_margin``) is ranked at the saved prior weight, as ``engine.link`` does:
   Recall@1, composite Recall@1, composite answers, right, precision; "off": composites off.
4. **Choice on dev**: ``calibration.choose_composite_split``, as ``calibrate`` chooses
   (composite answers at least half right, Recall@1 not below composites off, then the best
   Recall@1, over all (split, margin) pairs; of equals the highest split, then the lowest
   margin).
5. **Evaluate.** ``evaluate``'s path on test at the chosen setting, composites off, and as
   saved, each once; the test grid row at the choice, per label.

Writes ``benchmarks/results/composite_expand_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_composite_gate import score_split  # noqa: E402

from spacy_syncabel.corpus import read_corpus  # noqa: E402
from spacy_syncabel.evaluation.evaluate import evaluate_linker, find_linker  # noqa: E402
from spacy_syncabel.evaluation.metrics import code_set  # noqa: E402
from spacy_syncabel.linking.settings import MODE_RERANK  # noqa: E402
from spacy_syncabel.prompting import SEP_TOKEN  # noqa: E402
from spacy_syncabel.training.calibration import (  # noqa: E402
    DEFAULT_COMPOSITE_MARGINS, DEFAULT_COMPOSITE_SPLITS, OFF, choose_composite_split,
    composite_split_table)
from spacy_syncabel.training.examples import (DevSet, build_dev_set,  # noqa: E402
                                              composite_aliases)
from spacy_syncabel.training.pipeline_io import load_pipeline  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
SPLITS = DEFAULT_COMPOSITE_SPLITS
MARGINS = DEFAULT_COMPOSITE_MARGINS


def coverage(engine, split) -> Dict[str, Any]:
    """Composite golds whose code set is among the composite candidates / first, per label."""
    kb = engine.kb
    top = engine.retrieve_in_batches(split.mentions, split.groups, engine.settings.candidates)
    comp = engine.composite_proposals(split.mentions, split.groups, top, split=None)
    out: Dict[str, Dict[str, int]] = {}
    for gold, group, rows in zip(split.codes, split.groups, comp):
        want = code_set(gold, kb)
        if len(want) < 2:
            continue
        keys = [frozenset(kb.canonical_code(kb.lookup(p, group) or "?")
                          for p in r.name.split(SEP_TOKEN)) for r, _ in rows]
        for label in (str(group), "all"):
            row = out.setdefault(label, {"composite_golds": 0, "gold_among": 0, "gold_first": 0})
            row["composite_golds"] += 1
            row["gold_among"] += want in keys
            row["gold_first"] += bool(keys) and keys[0] == want
    return out


def table(engine, split, state) -> List[Dict[str, Any]]:
    s = engine.settings
    return composite_split_table(engine, split, state["scored"], s.prior_weight, SPLITS,
                                 MARGINS, s.cascade_margin if s.cascade else OFF,
                                 state["retrieved"])


def per_label(engine, split, state, t, gate) -> Dict[str, Any]:
    """The grid row at (t, gate), and composites off, for each label's mentions."""
    s = engine.settings
    out = {}
    for label in sorted({str(g) for g in split.groups}):
        idx = [i for i, g in enumerate(split.groups) if str(g) == label]
        sub = DevSet([split.prompt_ids[i] for i in idx], [split.groups[i] for i in idx],
                     [split.codes[i] for i in idx], [split.mentions[i] for i in idx])
        rows = composite_split_table(engine, sub, [state["scored"][i] for i in idx],
                                     s.prior_weight, [t],
                                     [gate] if gate not in (None, OFF) else [],
                                     s.cascade_margin if s.cascade else OFF,
                                     [state["retrieved"][i] for i in idx])
        out[label] = {"at_choice": next(r for r in rows if r["gate"] == gate),
                      "composites_off": next(r for r in rows if r["gate"] == OFF)}
    return out


def evaluate(nlp, corpus, source: str) -> Dict[str, Any]:
    m = evaluate_linker(nlp, corpus, baseline=False, end_to_end=False, source=source)
    comp, answers = m["composite"], m["composite_answers"]
    return {"recall@1": m["recall@1"], "recall@5": m["recall@5"],
            "n_mentions": m["n_mentions"], "composite_golds": comp["n_mentions"],
            "composite_recall@1": comp["recall@1"], "composite_answers": answers["n"],
            "composite_right": answers["right"], "composite_precision": answers["precision@1"],
            "seconds": round(m["seconds"], 1)}


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
        sets = {k: build_dev_set(d, linker, size=0, nlp=nlp) for k, d in docs.items()}
    engine = linker.engine
    if engine.settings.mode != MODE_RERANK or not engine.settings.composite:
        raise SystemExit("needs a rerank pipeline with composite on (calibrate's output)")
    added = []
    if not len(engine.composite_aliases):
        tr = sets["train"]
        added = composite_aliases(zip(tr.mentions, tr.codes, tr.groups), engine.kb)
        linker.set_aliases(list(engine.aliases) + added)
    before = engine.with_settings(composite_expand=False, composite_split=None)
    after = engine.with_settings(composite_expand=True, composite_split=None,
                                 composite_margin=None)
    result: Dict[str, Any] = {"pipeline": str(args.pipeline), "dev": str(args.dev),
                              "test": str(args.corpus), "train": str(args.train),
                              "composite_aliases_added": len(added),
                              "settings": after.settings.to_dict(), "splits": {}}
    for name in ("dev", "test"):
        split = sets[name]
        t0 = time.perf_counter()
        state = score_split(after, split)
        rows = table(after, split, state)
        result["splits"][name] = {
            "mentions": len(split), "scored_by_lm": sum(r is not None for r in state["scored"]),
            "seconds": round(time.perf_counter() - t0, 1),
            "candidates_before": coverage(before, split),
            "candidates_after": coverage(after, split), "grid": rows}
        result["splits"][name]["_state"] = state
        print(name, json.dumps(result["splits"][name]["candidates_after"]["all"]), flush=True)
    chosen = choose_composite_split(result["splits"]["dev"]["grid"])
    t, gate = chosen["split"], chosen["gate"]
    result["chosen_on_dev"] = {"composite_split": t, "composite_margin": gate}
    test = result["splits"]["test"]
    result["test_at_chosen"] = next(r for r in test["grid"]
                                    if r["split"] == t and r["gate"] == gate)
    result["test_per_label_at_chosen"] = per_label(after, sets["test"], test["_state"], t, gate)
    for name in ("dev", "test"):
        del result["splits"][name]["_state"]
    print("chosen on dev:", result["chosen_on_dev"], json.dumps(result["test_at_chosen"]),
          flush=True)
    views = {"composites_off": {"composite": False}, "as_saved": {},
             "chosen_on_dev": ({"composite": False} if gate == OFF else
                               {"composite_expand": True, "composite_split": t,
                                "composite_margin": gate})}
    result["evaluate_test"] = {}
    saved = linker.engine
    for key, changes in views.items():
        linker.engine = saved.with_settings(**changes)
        linker.settings = linker.engine.settings
        result["evaluate_test"][key] = {"settings": changes,
                                        **evaluate(nlp, docs["test"], str(args.corpus))}
        print(key, json.dumps(result["evaluate_test"][key]), flush=True)
    linker.engine, linker.settings = saved, saved.settings
    path = OUT / f"composite_expand_{args.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print("->", path)


if __name__ == "__main__":
    main()
