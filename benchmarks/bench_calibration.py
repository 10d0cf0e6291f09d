"""Benchmark: calibrated probabilities and the NIL threshold, fitted on dev, measured on test.

    python benchmarks/bench_calibration.py training/spaccc/model-best \
        corpus/spaccc/dev.jsonl corpus/spaccc/test.jsonl --name spaccc [--method platt] \
        [--target-precision 0.9]

The pipeline is copied (the original is never written). The dev and test gold mentions are
linked once by the copy as saved (no calibrator: raw scores), counted by the Recall@1 rule
(gold NO_CODE dropped, out-of-KB golds kept as misses). On those scores every variant is
fitted on dev and measured on test: Platt and isotonic, one joint map and one map per path
(lm, dictionary, retriever), the LM's on its score or on its ranking value; ECE (10 equal-width bins) overall and per path. Then the chosen
variant goes the way a user takes: ``calibrate --no-prior --method M --target-precision P`` on
the copy (``calibrate_pipeline_probability``), and the saved pipeline links test again through
``evaluate_linker``: ECE per path, mention counts per path, and precision / coverage at the
dev-chosen NIL threshold. Writes ``benchmarks/results/calibration_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import (evaluate_linker, find_linker,
                                                scored_gold_mentions)
from spacy_syncabel.evaluation.reliability import ScoredMention, at_threshold, ece
from spacy_syncabel.training.pipeline_io import copy_pipeline, load_pipeline
from spacy_syncabel.training.probability import (calibrate_pipeline_probability,
                                                 calibrate_probabilities, with_probabilities)
from spacy_syncabel.types import PATHS

OUT = Path(__file__).resolve().parent / "results"


def ece_by_path(mentions: Sequence[ScoredMention], raw: bool = False) -> Dict[str, Any]:
    """ECE overall and per path, with the mention counts."""
    def prob(m: ScoredMention) -> float:
        return min(1.0, max(0.0, m.score)) if raw else (m.probability() or 0.0)

    out: Dict[str, Any] = {"all": {"n_mentions": len(mentions), "ece": ece(
        [prob(m) for m in mentions], [m.correct for m in mentions])}}
    for path in sorted({m.path for m in mentions}):
        rows = [m for m in mentions if m.path == path]
        out[path] = {"n_mentions": len(rows),
                     "ece": ece([prob(m) for m in rows], [m.correct for m in rows]),
                     "accuracy": sum(m.correct for m in rows) / len(rows)}
    return out


def variants(dev: Sequence[ScoredMention], test: Sequence[ScoredMention],
             target: float, prior_weight: float) -> List[Dict[str, Any]]:
    """Every method × (joint, per path on the score, per path with the LM's map on its
    ranking value), fitted on dev, measured on test."""
    rows = []
    for method in ("platt", "isotonic"):
        for per_path, weight in ((False, None), (True, None), (True, prior_weight)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cal = calibrate_probabilities(dev, method, target, per_path=per_path,
                                              prior_weight=weight)
            scored = with_probabilities(cal, test)
            probs = [m.probability() or 0.0 for m in scored]
            point = (at_threshold(probs, [m.correct for m in scored], len(scored),
                                  cal.nil_threshold) if cal.nil_threshold is not None else None)
            rows.append({"method": method, "per_path": per_path,
                         "lm_feature": cal.fit["lm_feature"],
                         "test": ece_by_path(scored), "nil_threshold": cal.nil_threshold,
                         "test_at_threshold": point})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("dev")
    ap.add_argument("test")
    ap.add_argument("--name", required=True)
    ap.add_argument("--method", default="platt", choices=("platt", "isotonic"))
    ap.add_argument("--target-precision", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=r".*W(103|450)")
    dev_docs, test_docs = read_corpus(args.dev), read_corpus(args.test)
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_pipeline(args.pipeline, Path(tmp) / "pipeline")
        t0 = time.perf_counter()
        nlp = load_pipeline(copy)
        dev = scored_gold_mentions(nlp, dev_docs, args.batch_size)
        test = scored_gold_mentions(nlp, test_docs, args.batch_size)
        t_raw = time.perf_counter() - t0
        prior_weight = find_linker(nlp).settings.prior_weight
        table = variants(dev, test, args.target_precision, prior_weight)
        t0 = time.perf_counter()
        cal = calibrate_pipeline_probability(copy, dev_docs, method=args.method,
                                             target_precision=args.target_precision,
                                             batch_size=args.batch_size)
        t_fit = time.perf_counter() - t0
        saved = load_pipeline(copy)
        metrics = evaluate_linker(saved, test_docs, batch_size=args.batch_size,
                                  baseline=False, end_to_end=False, source=args.test)
    report = metrics["calibration"]
    op = report.get("operating_point")
    after = {"all": {"n_mentions": report["n_mentions"], "ece": report["ece"]},
             **{p: dict(s) for p, s in report["per_path"].items()}}
    result = {
        "name": args.name, "pipeline": args.pipeline, "dev": args.dev, "test": args.test,
        "method": args.method, "per_path": True, "lm_feature": cal.fit.get("lm_feature"),
        "prior_weight": prior_weight, "target_precision": args.target_precision,
        "dev_mentions": len(dev), "test_mentions": len(test),
        "dev_mentions_per_path": {p: sum(m.path == p for m in dev) for p in PATHS},
        "test_recall@1": metrics["recall@1"],
        "before": ece_by_path(test, raw=True),
        "after": after,
        "dev_fit": cal.fit,
        "nil_threshold": cal.nil_threshold,
        "dev_operating_point": cal.fit.get("dev_operating_point"),
        "test_operating_point": op,
        "precision_within_0.03": (abs(op["precision"] - args.target_precision) <= 0.03
                                  if op else False),
        "ece_at_most_0.05": {k: v["ece"] <= 0.05 for k, v in after.items()},
        "test_precision_coverage": report["precision_coverage"],
        "variants": table,
        "seconds": {"link_dev_and_test_raw": t_raw, "calibrate": t_fit},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"calibration_{args.name}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    print(json.dumps({k: result[k] for k in ("before", "after", "nil_threshold",
                                             "dev_operating_point", "test_operating_point")},
                     indent=1))
    for row in table:
        t = row["test"]
        print(f"{row['method']:9s} per_path={row['per_path']!s:5s} lm {row['lm_feature']:5s} "
              f"test ECE "
              f"{t['all']['ece']:.3f} " + " ".join(f"{p} {t[p]['ece']:.3f}" for p in t
                                                   if p != "all")
              + (f"  P {row['test_at_threshold']['precision']:.3f} cov "
                 f"{row['test_at_threshold']['coverage']:.3f}"
                 if row["test_at_threshold"] else ""))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
