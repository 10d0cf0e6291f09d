"""Benchmark: calibrated probabilities and the NIL threshold, fitted on dev, measured on test.

    python benchmarks/bench_calibration.py training/spaccc/model-best \
        corpus/spaccc/dev.jsonl corpus/spaccc/test.jsonl --train corpus/spaccc/train.jsonl \
        --name spaccc [--method platt]

The pipeline is copied (the original is never written). The dev gold mentions are linked by
the copy as saved (no calibrator: raw scores) and, with ``--train``, by its dev-masked view
(``linking/masking.py``: KB names and aliases only the dev mentions gave are hidden); the test
gold mentions once, as saved. Mentions are counted by the Recall@1 rule (gold NO_CODE dropped,
out-of-KB golds kept as misses). On those scores every variant is fitted on dev and measured
on test: dev view (plain, masked) × method (Platt, isotonic) × small-path rule (joint map, the
earlier rule; constant); ECE (10 equal-width bins) overall and per path, and at the NIL
threshold chosen on dev for precision 0.8, 0.9 and 0.95 the test precision and coverage.
``before`` is the earlier behaviour (plain dev, Platt per path, joint map for small paths),
``after`` the new one (masked dev, constant for small paths). Also: per split the share of
mentions whose folded surface is a KB name, each path's share and accuracy, and the noise
floor of each path's test ECE (the ECE of a perfectly calibrated predictor with the same
probabilities, 2,000 draws). Then the chosen variant goes the way a user takes:
``calibrate --no-prior --train ... --target-precision 0.9`` on the copy, and the saved
pipeline links test again through ``evaluate_linker`` (Recall@1 must not move). Writes
``benchmarks/results/calibration_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import (evaluate_linker, find_linker,
                                                scored_gold_mentions)
from spacy_syncabel.evaluation.reliability import (ScoredMention, at_threshold, ece,
                                                   ece_noise_floor)
from spacy_syncabel.linking.candidates import fold
from spacy_syncabel.training.pipeline_io import copy_pipeline, load_pipeline
from spacy_syncabel.training.probability import (calibrate_pipeline_probability,
                                                 calibrate_probabilities, masked_dev_mentions,
                                                 with_probabilities)

OUT = Path(__file__).resolve().parent / "results"
TARGETS = (0.8, 0.9, 0.95)


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
                     "accuracy": sum(m.correct for m in rows) / len(rows),
                     "mean_probability": float(np.mean([prob(m) for m in rows]))}
    return out


def split_profile(mentions: Sequence[ScoredMention], kb_names: set) -> Dict[str, Any]:
    """Accuracy, the share of mentions whose folded surface is a KB name, each path's share
    and accuracy."""
    n = len(mentions)
    out: Dict[str, Any] = {"n_mentions": n, "accuracy": sum(m.correct for m in mentions) / n,
                           "surface_is_kb_name": sum(fold(m.text) in kb_names
                                                     for m in mentions) / n}
    for path in sorted({m.path for m in mentions}):
        rows = [m for m in mentions if m.path == path]
        out[path] = {"share": len(rows) / n, "accuracy": sum(m.correct for m in rows) / len(rows)}
    return out


def noise_floor(mentions: Sequence[ScoredMention], draws: int = 2000, seed: int = 0,
                ) -> Dict[str, Any]:
    """Per path: the ECE a perfectly calibrated predictor with these probabilities gets on
    this many mentions (mean and 95th percentile over ``draws`` label draws) and the measured
    one."""
    out = {}
    for path in sorted({m.path for m in mentions}):
        rows = [m for m in mentions if m.path == path]
        p = [m.probability() or 0.0 for m in rows]
        floor = ece_noise_floor(p, draws=draws, seed=seed)
        out[path] = {"n_mentions": len(rows), "measured": ece(p, [m.correct for m in rows]),
                     "calibrated_mean": floor["mean"], "calibrated_p95": floor["p95"]}
    return out


def fit_and_measure(dev: Sequence[ScoredMention], test: Sequence[ScoredMention],
                    prior_weight: Optional[float], **fit: Any) -> Dict[str, Any]:
    """One variant fitted on ``dev`` (per target precision for the threshold), measured on
    ``test`` (``rule`` default ``maps``: the per-path maps this benchmark compares)."""
    fit.setdefault("rule", "maps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate_probabilities(dev, prior_weight=prior_weight, **fit)
    scored = with_probabilities(cal, test)
    probs = [m.probability() or 0.0 for m in scored]
    correct = [m.correct for m in scored]
    points = {}
    for target in TARGETS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            thr = calibrate_probabilities(dev, target_precision=target,
                                          prior_weight=prior_weight, **fit).nil_threshold
        point = at_threshold(probs, correct, len(scored), thr) if thr is not None else None
        points[str(target)] = {"nil_threshold": thr, "test": point,
                               "within_0.03": bool(point) and
                               abs(point["precision"] - target) <= 0.03}
    return {"test": ece_by_path(scored), "targets": points, "scored": scored}


def variants(devs: Dict[str, Sequence[ScoredMention]], test: Sequence[ScoredMention],
             prior_weight: float) -> List[Dict[str, Any]]:
    """dev view × method × small-path rule (per path, the LM's map on its ranking value)."""
    rows = []
    for view, dev in devs.items():
        for method in ("platt", "isotonic"):
            for small in ("joint", "constant"):
                res = fit_and_measure(dev, test, prior_weight, method=method,
                                      small_paths=small)
                res.pop("scored")
                rows.append({"dev_view": view, "method": method, "small_paths": small, **res})
    return rows


def _row(name: str, r: Dict[str, Any]) -> str:
    t = r["test"]
    paths = " ".join(f"{p} {t[p]['ece']:.3f}" for p in ("lm", "dictionary", "retriever")
                     if p in t)
    pts = " ".join(f"P{k} {v['test']['precision']:.3f}/{v['test']['coverage']:.3f}"
                   if v["test"] else f"P{k} -" for k, v in r["targets"].items())
    return f"{name:34s} ECE {t['all']['ece']:.3f} ({paths})  {pts}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("dev")
    ap.add_argument("test")
    ap.add_argument("--train", action="append", default=[],
                    help="the linker's training corpus (repeatable): the dev-masked view")
    ap.add_argument("--name", required=True)
    ap.add_argument("--method", default="platt", choices=("platt", "isotonic"))
    ap.add_argument("--target-precision", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=r".*W(103|450)")
    dev_docs, test_docs = read_corpus(args.dev), read_corpus(args.test)
    train_docs = [d for p in args.train for d in read_corpus(p)] or None
    seconds: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_pipeline(args.pipeline, Path(tmp) / "pipeline")
        nlp = load_pipeline(copy)
        linker = find_linker(nlp)
        linker.calibrator = None
        kb_names = {fold(n) for n in linker.kb.names()}
        t0 = time.perf_counter()
        devs = {"plain": scored_gold_mentions(nlp, dev_docs, args.batch_size, linker=linker)}
        seconds["link_dev"] = time.perf_counter() - t0
        masking = None
        if train_docs is not None:
            t0 = time.perf_counter()
            devs["masked"], masking = masked_dev_mentions(nlp, linker, dev_docs, train_docs,
                                                          args.batch_size)
            seconds["link_dev_masked"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        test = scored_gold_mentions(nlp, test_docs, args.batch_size, linker=linker)
        seconds["link_test"] = time.perf_counter() - t0
        prior_weight = linker.settings.prior_weight
        table = variants(devs, test, prior_weight)
        before = fit_and_measure(devs["plain"], test, prior_weight, method=args.method,
                                 small_paths="joint")
        view = "masked" if "masked" in devs else "plain"
        after = fit_and_measure(devs[view], test, prior_weight, method=args.method,
                                small_paths="constant")
        t0 = time.perf_counter()
        cal = calibrate_pipeline_probability(copy, dev_docs, method=args.method,
                                             target_precision=args.target_precision,
                                             batch_size=args.batch_size,
                                             train_docs=train_docs)
        seconds["calibrate"] = time.perf_counter() - t0
        saved = load_pipeline(copy)
        metrics = evaluate_linker(saved, test_docs, batch_size=args.batch_size,
                                  baseline=False, end_to_end=False, source=args.test)
    report = metrics["calibration"]
    op = report.get("operating_point")
    saved_after = {"all": {"n_mentions": report["n_mentions"], "ece": report["ece"]},
                   **{p: dict(s) for p, s in report["per_path"].items()}}
    raw_r1 = sum(m.correct for m in test) / len(test)
    result = {
        "name": args.name, "pipeline": args.pipeline, "dev": args.dev, "test": args.test,
        "train": args.train, "method": args.method, "prior_weight": prior_weight,
        "dev_mentions": len(devs["plain"]), "test_mentions": len(test),
        "profile": {**{f"dev_{k}": split_profile(v, kb_names) for k, v in devs.items()},
                    "test": split_profile(test, kb_names)},
        "dev_masking": masking,
        "test_raw_score": ece_by_path(test, raw=True),
        "before": {"rule": "plain dev, per path, small paths on the joint map",
                   **{k: v for k, v in before.items() if k != "scored"}},
        "after": {"rule": f"{view} dev, per path, small paths a constant",
                  **{k: v for k, v in after.items() if k != "scored"}},
        "noise_floor_after": noise_floor(after["scored"]),
        "noise_floor_before": noise_floor(before["scored"]),
        "saved_pipeline": {"fit": cal.fit, "nil_threshold": cal.nil_threshold,
                           "test_ece": saved_after, "test_operating_point": op,
                           "test_recall@1": metrics["recall@1"],
                           "test_recall@1_raw_scores": raw_r1,
                           "recall@1_unchanged": abs(metrics["recall@1"] - raw_r1) < 1e-9,
                           "test_precision_coverage": report["precision_coverage"]},
        "variants": table,
        "seconds": seconds,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"calibration_{args.name}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    print(json.dumps({"profile": result["profile"], "dev_masking": masking}, indent=1))
    print(_row("before", result["before"]))
    print(_row("after", result["after"]))
    for r in table:
        print(_row(f"{r['dev_view']} {r['method']} {r['small_paths']}", r))
    for k, v in result["noise_floor_after"].items():
        print(f"noise floor {k}: n {v['n_mentions']} measured {v['measured']:.3f} calibrated "
              f"mean {v['calibrated_mean']:.3f} p95 {v['calibrated_p95']:.3f}")
    print(f"saved pipeline: test R@1 {metrics['recall@1']:.4f} (raw {raw_r1:.4f}), ECE "
          f"{report['ece']:.3f}, at {cal.nil_threshold}: {op}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
