"""Benchmark: the pooled feature model of the probabilities against the per-path maps, fitted on
dev, measured on test, with what decides correctness on each path.

    python benchmarks/bench_calibration_features.py training/spaccc/model-best \
        corpus/spaccc/dev.jsonl corpus/spaccc/test.jsonl --train corpus/spaccc/train.jsonl \
        --name spaccc [--cache /tmp/records_spaccc.json] [--end-to-end]

The pipeline is copied. Dev is linked by its dev-masked view (``--train``), test as saved, both
with raw scores, once (``--cache``: the per-mention records are kept in that JSON file and read
back on the next run; outputs only, never data to commit). Then, offline:

* **diagnosis**: per path and feature (the n-best's own: score or ranking value, margin to the
  next entry, n-best size, the LM's log-prob, its answer's TF-IDF similarity and whether the
  retriever ranks that answer first; and others the n-best lacks: mention length in tokens,
  whether the surface or the predicted code occurs in the training corpus, the predicted
  code's number of KB names, whether the surface is the KB name of two or more codes) the AUC
  on dev and test, and dev-quartile bins with each side's count, accuracy and the maps' mean
  probability; ``explained``: the share of the dev -> test accuracy gap that reweighting dev's
  per-bin accuracy to test's bin counts reproduces (what the feature's shift explains);
* **before** (``rule=maps``) and **after** (``rule=auto``: chosen by cross-validation on dev):
  test ECE (and log loss, Brier score) overall and per path with its noise floor (the ECE of
  perfectly calibrated labels drawn from the same probabilities at the path's test size: mean,
  95th percentile and the share of draws at most 0.05), and at
  the NIL threshold chosen on dev for precision 0.8, 0.9 and 0.95 the test precision and
  coverage; test Recall@1 (calibration never reorders the n-best).

``--end-to-end``: ``calibrate --no-prior --train ... --target-precision 0.9`` on the copy, then
``evaluate_linker`` on test: the saved probability's ECE and Recall@1. Writes
``benchmarks/results/calibration_features_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from bench_calibration import ece_by_path, fit_and_measure
from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import (evaluate_linker, find_linker,
                                                scored_gold_mentions)
from spacy_syncabel.evaluation.reliability import ScoredMention, ece, ece_noise_floor
from spacy_syncabel.linking.candidates import fold
from spacy_syncabel.training.pipeline_io import copy_pipeline, load_pipeline
from spacy_syncabel.training.probability import (calibrate_pipeline_probability,
                                                 masked_dev_mentions)

OUT = Path(__file__).resolve().parent / "results"
PATHS = ("lm", "retriever", "dictionary")


def _records(mentions: Sequence[ScoredMention]) -> List[Dict[str, Any]]:
    return [{"label": m.label, "nbest": m.nbest, "correct": m.correct, "text": m.text,
             "gold": m.gold, "doc": m.doc} for m in mentions]


def _mentions(rows: Sequence[Dict[str, Any]]) -> List[ScoredMention]:
    return [ScoredMention(r["label"], r["nbest"], r["correct"], r["text"], r["gold"], r["doc"])
            for r in rows]


def link_once(args: argparse.Namespace, copy: Path) -> Dict[str, Any]:
    """Dev (masked view) and test linked with raw scores, or the cached records."""
    if args.cache and Path(args.cache).exists():
        return json.loads(Path(args.cache).read_text(encoding="utf8"))
    nlp = load_pipeline(copy)
    linker = find_linker(nlp)
    linker.calibrator = None
    train = [d for p in args.train for d in read_corpus(p)] or None
    t0 = time.perf_counter()
    dev, masking = masked_dev_mentions(nlp, linker, read_corpus(args.dev), train)
    t1 = time.perf_counter()
    test = scored_gold_mentions(nlp, read_corpus(args.test), linker=linker)
    t2 = time.perf_counter()
    kb = linker.kb
    names: Dict[str, set] = defaultdict(set)
    for code in kb.codes:
        for name in kb.names_of(code):
            names[fold(name)].add(code)
    out = {"dev": _records(dev), "test": _records(test), "masking": masking,
           "prior_weight": linker.settings.prior_weight,
           "names_per_code": {c: len(kb.names_of(c)) for c in kb.codes},
           "ambiguous_names": sorted(n for n, cs in names.items() if len(cs) > 1),
           "seconds": {"link_dev_masked": t1 - t0, "link_test": t2 - t1}}
    if args.cache:
        Path(args.cache).write_text(json.dumps(out), encoding="utf8")
    return out


def _value(c: Dict[str, Any], path: str, weight: float) -> float:
    score = float(c["score"])
    if path == "lm":
        return math.log(max(score, 1e-12)) + weight * float(c.get("similarity") or 0.0)
    return score


def feature_table(weight: float, train_surfaces: set, train_codes: set,
                  names_per_code: Dict[str, int], ambiguous: set,
                  ) -> Dict[str, Callable[[ScoredMention], float]]:
    """The features the diagnosis bins (name -> function of a mention)."""
    def margin(m: ScoredMention) -> float:
        v = [_value(c, m.path, weight) for c in m.nbest]
        return v[0] - v[1] if len(v) > 1 else float("nan")

    def sims(m: ScoredMention) -> List[float]:
        return [float(c.get("similarity") or 0.0) for c in m.nbest]

    return {
        "value": lambda m: _value(m.nbest[0], m.path, weight),
        "margin": margin,
        "entries": lambda m: float(len(m.nbest)),
        "log_score": lambda m: math.log(max(float(m.nbest[0]["score"]), 1e-12)),
        "similarity": lambda m: sims(m)[0],
        "retriever_agrees": lambda m: float(sims(m)[0] >= max(sims(m))),
        "retriever_rank": lambda m: float(sorted(sims(m), reverse=True).index(sims(m)[0])),
        "mention_tokens": lambda m: float(len(m.text.split())),
        "surface_in_train": lambda m: float(fold(m.text) in train_surfaces),
        "code_in_train": lambda m: float(str(m.nbest[0]["code"]) in train_codes),
        "kb_names_of_code": lambda m: float(names_per_code.get(str(m.nbest[0]["code"]), 0)),
        "surface_ambiguous_kb_name": lambda m: float(fold(m.text) in ambiguous),
    }


def _auc(x: np.ndarray, y: np.ndarray) -> Optional[float]:
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(x)
    if ok.sum() < 2 or y[ok].all() or not y[ok].any() or len(set(x[ok])) < 2:
        return None
    return float(roc_auc_score(y[ok], x[ok]))


def diagnose(dev: Sequence[ScoredMention], test: Sequence[ScoredMention],
             features: Dict[str, Callable[[ScoredMention], float]]) -> Dict[str, Any]:
    """Per path and feature: AUC on each side, dev-quartile bins, the share of the accuracy
    gap the feature's shift explains (``dev``/``test`` carry the maps' probabilities)."""
    out: Dict[str, Any] = {}
    for path in PATHS:
        d = [m for m in dev if m.path == path]
        t = [m for m in test if m.path == path]
        if not d or not t:
            continue
        yd = np.array([m.correct for m in d]); yt = np.array([m.correct for m in t])
        pd_ = np.array([m.probability() for m in d]); pt = np.array([m.probability() for m in t])
        row: Dict[str, Any] = {"dev_n": len(d), "test_n": len(t), "dev_accuracy": yd.mean(),
                               "test_accuracy": yt.mean(), "dev_mean_p": pd_.mean(),
                               "test_mean_p": pt.mean(), "features": {}}
        for name, fn in features.items():
            xd = np.array([fn(m) for m in d], float); xt = np.array([fn(m) for m in t], float)
            vals = np.unique(np.concatenate([xd[~np.isnan(xd)], xt[~np.isnan(xt)]]))
            if len(vals) < 2:
                continue
            if len(vals) <= 4:
                cuts = (vals[:-1] + vals[1:]) / 2
            else:
                cuts = np.unique(np.nanquantile(xd, [0.25, 0.5, 0.75]))
            bd = np.where(np.isnan(xd), -1, np.searchsorted(cuts, xd, side="right"))
            bt = np.where(np.isnan(xt), -1, np.searchsorted(cuts, xt, side="right"))
            bins, reweighted = [], 0.0
            for b in sorted(set(bd.tolist()) | set(bt.tolist())):
                sd, st = bd == b, bt == b
                bins.append({"bin": "none" if b < 0 else (
                    f"< {cuts[0]:.3g}" if b == 0 else f">= {cuts[b - 1]:.3g}"),
                    "dev_n": int(sd.sum()), "test_n": int(st.sum()),
                    "dev_accuracy": float(yd[sd].mean()) if sd.any() else None,
                    "test_accuracy": float(yt[st].mean()) if st.any() else None,
                    "dev_mean_p": float(pd_[sd].mean()) if sd.any() else None,
                    "test_mean_p": float(pt[st].mean()) if st.any() else None})
                rate = yd[sd].mean() if sd.any() else yd.mean()
                reweighted += rate * st.sum() / len(t)
            gap = yt.mean() - yd.mean()
            row["features"][name] = {
                "auc_dev": _auc(xd, yd), "auc_test": _auc(xt, yt),
                "mean_dev": float(np.nanmean(xd)), "mean_test": float(np.nanmean(xt)),
                "test_accuracy_from_dev_bins": float(reweighted),
                "explained": float((reweighted - yd.mean()) / gap) if abs(gap) > 0.01 else None,
                "bins": bins}
        out[path] = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()}
    return out


def noise_floor(mentions: Sequence[ScoredMention], draws: int, seed: int = 0,
                ) -> Dict[str, Any]:
    """Overall and per path: the measured ECE beside the ECE of perfectly calibrated labels
    drawn from the same probabilities (mean, 95th percentile over ``draws``)."""
    out = {}
    linked = [m for m in mentions if m.nbest]
    for key in ("all", *PATHS):
        rows = linked if key == "all" else [m for m in linked if m.path == key]
        if not rows:
            continue
        p = np.array([m.probability() or 0.0 for m in rows])
        floor = ece_noise_floor(p.tolist(), draws=draws, seed=seed)
        y = np.array([m.correct for m in rows], dtype=float)
        q = np.clip(p, 1e-6, 1 - 1e-6)
        out[key] = {"n_mentions": len(rows),
                    "measured": ece(p.tolist(), [m.correct for m in rows]),
                    "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))),
                    "brier": float(np.mean((p - y) ** 2)),
                    "calibrated_mean": floor["mean"], "calibrated_p95": floor["p95"],
                    "calibrated_share_at_most_0.05": floor["share_at_most_0.05"]}
    return out


def _line(name: str, res: Dict[str, Any], floor: Dict[str, Any]) -> str:
    paths = " ".join(f"{p} {floor[p]['measured']:.3f} (floor {floor[p]['calibrated_mean']:.3f}/"
                     f"{floor[p]['calibrated_p95']:.3f}, n {floor[p]['n_mentions']}, log loss "
                     f"{floor[p]['log_loss']:.3f})" for p in PATHS if p in floor)
    pts = " ".join(f"P{k} {v['test']['precision']:.3f}/{v['test']['coverage']:.3f}"
                   if v["test"] else f"P{k} -" for k, v in res["targets"].items())
    return f"{name:7s} ECE all {floor['all']['measured']:.3f}  {paths}\n        {pts}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("dev")
    ap.add_argument("test")
    ap.add_argument("--train", action="append", default=[])
    ap.add_argument("--name", required=True)
    ap.add_argument("--cache", default=None, help="JSON file of the linked records (reused)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--end-to-end", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=r".*W(100|103|450|610)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_pipeline(args.pipeline, Path(tmp) / "pipeline")
        linked = link_once(args, copy)
        dev, test = _mentions(linked["dev"]), _mentions(linked["test"])
        weight = linked["prior_weight"]
        results = {}
        for key, rule in (("before", "maps"), ("after", "auto")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit_and_measure(dev, test, weight, rule=rule)
                from spacy_syncabel.training.probability import calibrate_probabilities

                fit = calibrate_probabilities(dev, prior_weight=weight, rule=rule).fit
            scored = res.pop("scored")
            results[key] = {"rule": rule, "chosen": fit.get("rule"),
                            "feature_c": fit.get("feature_c"),
                            "feature_paths": fit.get("feature_paths"),
                            "rule_cv": fit.get("rule_cv"),
                            **res, "noise_floor": noise_floor(scored, args.draws),
                            "test_recall@1": sum(m.correct for m in scored) / len(scored),
                            "scored": scored}
        before_dev = fit_and_measure(dev, dev, weight, rule="maps")["scored"]
        surfaces, codes = set(), set()
        for doc in (d for p in args.train for d in read_corpus(p)):
            for m in doc.mentions:
                surfaces.add(fold(doc.text[m.start:m.end]))
                codes.add(str(m.code))
        feats = feature_table(weight, surfaces, codes, linked["names_per_code"],
                              set(linked["ambiguous_names"]))
        diagnosis = diagnose(before_dev, results["before"]["scored"], feats)
        end_to_end = None
        if args.end_to_end:
            train = [d for p in args.train for d in read_corpus(p)] or None
            cal = calibrate_pipeline_probability(copy, read_corpus(args.dev),
                                                 target_precision=0.9, train_docs=train)
            metrics = evaluate_linker(load_pipeline(copy), read_corpus(args.test),
                                      baseline=False, end_to_end=False, source=args.test)
            rep = metrics["calibration"]
            end_to_end = {"rule": cal.fit.get("rule"), "nil_threshold": cal.nil_threshold,
                          "test_recall@1": metrics["recall@1"], "test_ece": rep["ece"],
                          "test_per_path": rep["per_path"],
                          "test_operating_point": rep.get("operating_point")}
    r1 = {k: v["test_recall@1"] for k, v in results.items()}
    result = {
        "name": args.name, "pipeline": args.pipeline, "dev": args.dev, "test": args.test,
        "train": args.train, "prior_weight": weight, "dev_mentions": len(dev),
        "test_mentions": len(test), "dev_masking": linked["masking"],
        "dev_mentions_per_path": {p: sum(m.path == p for m in dev) for p in PATHS},
        "test_mentions_per_path": {p: sum(m.path == p for m in test) for p in PATHS},
        "seconds": linked.get("seconds"),
        **{k: {kk: vv for kk, vv in v.items() if kk != "scored"} for k, v in results.items()},
        "test_ece_by_path_after": ece_by_path(results["after"]["scored"]),
        "recall@1_unchanged": r1["before"] == r1["after"],
        "diagnosis": diagnosis,
        "end_to_end": end_to_end,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"calibration_features_{args.name}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=float) + "\n",
                   encoding="utf8")
    for key in ("before", "after"):
        print(_line(key, results[key], results[key]["noise_floor"]))
    print(f"after: rule {results['after']['chosen']} (C {results['after']['feature_c']}); "
          f"test R@1 {r1['after']:.4f} (unchanged: {result['recall@1_unchanged']})")
    for path, row in diagnosis.items():
        print(f"{path}: dev n {row['dev_n']} acc {row['dev_accuracy']:.3f} -> test n "
              f"{row['test_n']} acc {row['test_accuracy']:.3f}")
        for name, f in row["features"].items():
            auc = "/".join("-" if a is None else f"{a:.2f}" for a in (f["auc_dev"], f["auc_test"]))
            expl = "-" if f["explained"] is None else f"{f['explained']:.2f}"
            print(f"   {name:26s} AUC dev/test {auc:9s} gap explained {expl}")
    if end_to_end:
        print(f"end to end: {end_to_end['rule']}, R@1 {end_to_end['test_recall@1']:.4f}, ECE "
              f"{end_to_end['test_ece']:.3f}, at {end_to_end['nil_threshold']}: "
              f"{end_to_end['test_operating_point']}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
