"""Benchmark: can the LM-ranked mentions' probability be shown calibrated on dev and test sets
of this size?

    python benchmarks/bench_calibration_lm_path.py training/cantemist/model-best \
        corpus/cantemist/dev.jsonl corpus/cantemist/test.jsonl \
        --train corpus/cantemist/train.jsonl --name cantemist [--cache /tmp/lm_path.json]

Dev (its dev-masked view, as ``calibrate --train`` links it) and test are linked twice: with
the cascade as saved, and with the LM ranking every mention (``cascade`` off). Then, per
split, the LM path's size and accuracy (and the dev -> test accuracy gap with its z value),
and on test's LM-ranked mentions the ECE (10 bins) of

* ``saved_rows``: the probability fitted on the dev mentions as linked (rule ``auto``;
  ``calibrate --no-lm-ranked``);
* ``lm_ranked``: the LM path fitted on the LM-ranked n-best of every dev mention the
  dictionary does not settle (``lm_ranked_rows``; ``calibrate``'s default): several times
  the LM path's own dev mentions, easier ones among them;

each beside its noise floor (``ece_noise_floor``: the ECE perfectly calibrated labels drawn
from the same probabilities score, mean, 95th percentile and the share of draws at most 0.05).
Writes ``benchmarks/results/calibration_lm_path_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import find_linker, scored_gold_mentions
from spacy_syncabel.evaluation.reliability import ScoredMention, ece, ece_noise_floor
from spacy_syncabel.training.pipeline_io import copy_pipeline, load_pipeline
from spacy_syncabel.training.probability import (calibrate_probabilities, dev_passes,
                                                 lm_ranked_rows, with_probabilities)
from spacy_syncabel.types import PATH_LM

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def link_both(pipeline: str, dev: str, test: str, train: str, batch_size: int,
              ) -> Dict[str, Any]:
    """Per-mention records of dev (masked view) and test, cascade as saved and off."""
    import tempfile

    def dump(ms: Sequence[ScoredMention]) -> List[Dict[str, Any]]:
        return [{"label": m.label, "nbest": m.nbest, "correct": m.correct, "text": m.text,
                 "gold": m.gold, "doc": m.doc} for m in ms]

    with tempfile.TemporaryDirectory() as tmp:
        nlp = load_pipeline(copy_pipeline(pipeline, Path(tmp) / "pipeline"))
        linker = find_linker(nlp)
        linker.calibrator = None  # raw scores, whatever an earlier fit saved
        dev_docs, test_docs = read_corpus(dev), read_corpus(test)
        train_docs = read_corpus(train)
        saved = linker.engine
        out: Dict[str, Any] = {"prior_weight": saved.settings.prior_weight}
        start = time.perf_counter()
        dev_saved, dev_ranked, _ = dev_passes(nlp, linker, dev_docs, train_docs, batch_size,
                                              lm_ranked=True)
        out["dev_seconds"] = time.perf_counter() - start
        for tag, engine, dev_ms in (("saved", saved, dev_saved),
                                    ("lm_forced", saved.with_settings(cascade=False),
                                     dev_ranked)):
            linker.engine = engine
            start = time.perf_counter()
            test_ms = scored_gold_mentions(nlp, test_docs, batch_size, linker=linker)
            out[tag] = {"dev": dump(dev_ms), "test": dump(test_ms),
                        "seconds": time.perf_counter() - start}
        linker.engine = saved
    return out


def mentions(rows: Sequence[Dict[str, Any]]) -> List[ScoredMention]:
    return [ScoredMention(r["label"], r["nbest"], r["correct"], r["text"], r["gold"], r["doc"])
            for r in rows]


def measured(probs: Sequence[float], correct: Sequence[bool]) -> Dict[str, Any]:
    return {"n_mentions": len(probs), "ece": ece(probs, correct),
            "mean_probability": float(np.mean(probs)) if probs else 0.0,
            "accuracy": float(np.mean(correct)) if correct else 0.0,
            "noise_floor": ece_noise_floor(probs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("dev")
    parser.add_argument("test")
    parser.add_argument("--train", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cache", default=None, help="per-mention records (JSON) to reuse")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.exists():
        records = json.loads(cache.read_text(encoding="utf-8"))
    else:
        records = link_both(args.pipeline, args.dev, args.test, args.train, args.batch_size)
        if cache is not None:
            cache.write_text(json.dumps(records), encoding="utf-8")
    weight = float(records["prior_weight"] or 0.0)
    saved = {s: mentions(records["saved"][s]) for s in ("dev", "test")}
    forced = {s: mentions(records["lm_forced"][s]) for s in ("dev", "test")}
    lm = {s: [i for i, m in enumerate(saved[s]) if m.nbest and m.path == PATH_LM]
          for s in ("dev", "test")}
    acc = {s: float(np.mean([saved[s][i].correct for i in lm[s]])) if lm[s] else 0.0
           for s in lm}
    se = math.sqrt(sum(acc[s] * (1 - acc[s]) / max(1, len(lm[s])) for s in lm))
    y_test = [saved["test"][i].correct for i in lm["test"]]
    fits = {}
    for key, rows in (("saved_rows", None),
                      ("lm_ranked", lm_ranked_rows(saved["dev"], forced["dev"]))):
        cal = calibrate_probabilities(saved["dev"], prior_weight=weight, fit_rows=rows,
                                      target_precision=0.9)
        test_cal = with_probabilities(cal, saved["test"])
        linked = [m for m in test_cal if m.nbest]
        kept = [m for m in linked if (m.probability() or 0.0) >= (cal.nil_threshold or 0.0)]
        fits[key] = {"rule": cal.fit.get("rule"), "feature_paths": cal.fit.get("feature_paths"),
                     "lm_fit_rows": sum(m.path == PATH_LM for m in (rows or saved["dev"])),
                     "test_ece_all": ece([m.probability() or 0.0 for m in test_cal],
                                         [m.correct for m in test_cal]),
                     "test_ece_by_path": {
                         path: ece([m.probability() or 0.0 for m in linked if m.path == path],
                                   [m.correct for m in linked if m.path == path])
                         for path in sorted({m.path for m in linked})},
                     "dev_threshold_precision_0.9": cal.nil_threshold,
                     "test_precision": sum(m.correct for m in kept) / max(1, len(kept)),
                     "test_coverage": len(kept) / max(1, len(test_cal)),
                     **measured([test_cal[i].probability() or 0.0 for i in lm["test"]],
                                y_test)}
    result = {
        "name": args.name, "pipeline": args.pipeline, "dev": args.dev, "test": args.test,
        "lm_path": {s: {"n_mentions": len(lm[s]), "accuracy": acc[s]} for s in lm},
        "accuracy_gap": acc["dev"] - acc["test"],
        "accuracy_gap_z": (acc["dev"] - acc["test"]) / se if se else 0.0,
        "same_top_when_forced": sum(saved["dev"][i].nbest[0]["code"] ==
                                    forced["dev"][i].nbest[0]["code"] for i in lm["dev"]),
        **fits,
        "seconds": {"dev_both_passes": records.get("dev_seconds"),
                    **{f"test_{t}": records[t].get("seconds") for t in ("saved", "lm_forced")}},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"calibration_lm_path_{args.name}.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for key in fits:
        r, f = result[key], result[key]["noise_floor"]
        print(f"{args.name} {key} ({r['lm_fit_rows']} LM rows, rule {r['rule']} "
              f"{r['feature_paths']}; test ECE all {r['test_ece_all']:.3f}): "
              f"P {r['test_precision']:.3f} at coverage {r['test_coverage']:.3f} at the dev "
              f"threshold for 0.9; "
              f"LM-path test ECE {r['ece']:.3f} (n {r['n_mentions']}, "
              f"accuracy {r['accuracy']:.3f}, mean p {r['mean_probability']:.3f}); "
              f"calibrated labels: mean {f['mean']:.3f}, p95 {f['p95']:.3f}, "
              f"<= 0.05 in {100 * f['share_at_most_0.05']:.0f}% of draws")
    print(f"LM path: dev {len(lm['dev'])} at {acc['dev']:.3f}, test {len(lm['test'])} at "
          f"{acc['test']:.3f} (z {result['accuracy_gap_z']:.2f})")


if __name__ == "__main__":
    main()
