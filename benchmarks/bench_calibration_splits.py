"""Benchmark: how much test ECE a map fitted on dev gets when dev and test are exchangeable.

    python benchmarks/bench_calibration_splits.py training/spaccc/model-best \
        corpus/spaccc/dev.jsonl corpus/spaccc/test.jsonl --train corpus/spaccc/train.jsonl \
        --name spaccc [--draws 200]

The pipeline is copied. Dev is linked by its dev-masked view (with ``--train``), test as
saved, both with raw scores. The calibrator of ``calibrate`` (Platt per path, the LM's map on
its ranking value) is fitted on dev and measured on test: the measured per-path ECE. Then the
two splits' mentions are pooled and split again at random by document (a clinical case: an
id's trailing ``.N`` row number is dropped, as in SPACCC's one-row-per-mention test file),
with as many documents on each side as before, ``--draws`` times: fitted on one side, measured
on the other. A measured ECE inside that distribution is what splits of this size give
anyway; one far above it is a shift between the splits that no map fitted on dev can see.
``--rule``: the probability rule fitted (default ``maps``: Platt per path; ``auto``: what
``calibrate`` now chooses); ``--cache``: the records ``bench_calibration_features.py --cache``
wrote, instead of linking again. Writes ``benchmarks/results/calibration_splits_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import find_linker, scored_gold_mentions
from spacy_syncabel.evaluation.reliability import ScoredMention, ece
from spacy_syncabel.training.pipeline_io import copy_pipeline, load_pipeline
from spacy_syncabel.training.probability import (calibrate_probabilities, masked_dev_mentions,
                                                 with_probabilities)

OUT = Path(__file__).resolve().parent / "results"
PATH_NAMES = ("lm", "dictionary", "retriever")


def cluster(doc: str) -> str:
    """The document a mention's row belongs to (``case-1.10`` -> ``case-1``)."""
    return re.sub(r"\.\d+$", "", doc)


def per_path_ece(fit: Sequence[ScoredMention], measure: Sequence[ScoredMention],
                 prior_weight: Optional[float], rule: str = "maps") -> Dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate_probabilities(fit, "platt", prior_weight=prior_weight, rule=rule)
    scored = with_probabilities(cal, measure)
    out = {"all": ece([m.probability() or 0.0 for m in scored], [m.correct for m in scored])}
    for path in PATH_NAMES:
        rows = [m for m in scored if m.path == path]
        out[path] = ece([m.probability() or 0.0 for m in rows],
                        [m.correct for m in rows]) if rows else float("nan")
    return out


def _mentions(rows: Sequence[Dict]) -> List[ScoredMention]:
    return [ScoredMention(r["label"], r["nbest"], r["correct"], r["text"], r["gold"], r["doc"])
            for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("dev")
    ap.add_argument("test")
    ap.add_argument("--train", action="append", default=[])
    ap.add_argument("--name", required=True)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rule", default="maps", choices=("maps", "features", "auto"),
                    help="the probability rule fitted (calibrate's --probability-rule)")
    ap.add_argument("--cache", default=None,
                    help="the linked records bench_calibration_features.py --cache wrote")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=r".*W(100|103|450)")
    dev_docs, test_docs = read_corpus(args.dev), read_corpus(args.test)
    train_docs = [d for p in args.train for d in read_corpus(p)] or None
    if args.cache:
        cached = json.loads(Path(args.cache).read_text(encoding="utf8"))
        dev, test = (_mentions(cached[k]) for k in ("dev", "test"))
        prior_weight = cached["prior_weight"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            nlp = load_pipeline(copy_pipeline(args.pipeline, Path(tmp) / "pipeline"))
            linker = find_linker(nlp)
            linker.calibrator = None
            dev, _ = masked_dev_mentions(nlp, linker, dev_docs, train_docs)
            test = scored_gold_mentions(nlp, test_docs, linker=linker)
            prior_weight = linker.settings.prior_weight
    measured = per_path_ece(dev, test, prior_weight, args.rule)
    groups: Dict[str, List[ScoredMention]] = {}
    for side, rows in (("dev", dev), ("test", test)):
        for m in rows:
            groups.setdefault(f"{side}:{cluster(m.doc)}", []).append(m)
    keys = sorted(groups)
    n_dev = sum(k.startswith("dev:") for k in keys)
    rng = np.random.default_rng(args.seed)
    draws: Dict[str, List[float]] = {k: [] for k in measured}
    for _ in range(args.draws):
        order = rng.permutation(len(keys))
        fit = [m for i in order[:n_dev] for m in groups[keys[i]]]
        meas = [m for i in order[n_dev:] for m in groups[keys[i]]]
        for k, v in per_path_ece(fit, meas, prior_weight, args.rule).items():
            draws[k].append(v)
    result = {
        "name": args.name, "pipeline": args.pipeline, "dev": args.dev, "test": args.test,
        "train": args.train, "rule": args.rule, "draws": args.draws, "dev_documents": n_dev,
        "test_documents": len(keys) - n_dev,
        "mentions": {"dev": {p: sum(m.path == p for m in dev) for p in PATH_NAMES},
                     "test": {p: sum(m.path == p for m in test) for p in PATH_NAMES}},
        "measured": measured,
        "exchangeable": {k: {"mean": float(np.nanmean(v)), "p95": float(np.nanpercentile(v, 95)),
                             "share_at_least_measured": float(np.mean(np.array(v)
                                                                      >= measured[k]))}
                         for k, v in draws.items()},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"calibration_splits_{args.name}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    for k in measured:
        e = result["exchangeable"][k]
        print(f"{k:10s} measured {measured[k]:.3f}  exchangeable splits mean {e['mean']:.3f} "
              f"p95 {e['p95']:.3f}  share >= measured {e['share_at_least_measured']:.3f}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
