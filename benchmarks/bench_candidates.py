"""Benchmark: how many retrieved candidates the LM scores (10, 20, 50) against Recall@1/@5 and
mentions/s, on a trained pipeline's gold mentions.

    python benchmarks/bench_candidates.py training/spaccc/model-best corpus/spaccc/dev.jsonl \
        --name spaccc_dev [--counts 10 20 50] [--no-cascade] [--limit 300]

Each count is a view of the saved linker (``candidates`` changed, every other setting as
saved: mode, prior weight, cascade and its cut-off, unless ``--no-cascade``). All views link
the same slices in turn, in one process (``bench_cascade.interleaved``), so the speeds are
comparable; each is scored by ``evaluation/metrics.py``. Writes
``benchmarks/results/candidates_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import warnings
from typing import Any, Dict

import torch

from bench_cascade import OUT, gold_inputs, interleaved, load_linker, score, slice_args


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("corpus")
    ap.add_argument("--name", required=True)
    ap.add_argument("--counts", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--cascade", action=argparse.BooleanOptionalAction, default=True,
                    help="Keep the saved cascade (default) or score every mention with the LM")
    slice_args(ap, slices=6)
    args = ap.parse_args()
    nlp, docs, linker = load_linker(args)
    saved = linker.settings
    cascade = saved.cascade and args.cascade
    views = {str(n): linker.with_settings(candidates=n, cascade=cascade) for n in args.counts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gold, inputs = gold_inputs(nlp, docs)
        linked, seconds = interleaved(views, inputs, args.slices, args.batch_size)
    n = sum(len(d.ents) for d in inputs)
    result: Dict[str, Any] = {
        "pipeline": args.pipeline, "corpus": args.corpus, "name": args.name,
        "n_docs": len(inputs), "n_mentions": n, "threads": torch.get_num_threads(),
        "batch_size": args.batch_size, "slices": args.slices, "cascade": cascade,
        "saved_settings": {k: v for k, v in saved.to_dict().items()
                           if k in ("mode", "candidates", "prior_weight", "num_beams", "n_best",
                                    "cascade", "cascade_margin", "composite_pairs")},
        "by_candidates": {name: dict(score(linked[name], gold, linker.kb), seconds=seconds[name],
                                     mentions_per_second=n / seconds[name])
                          for name in views},
    }
    OUT.mkdir(exist_ok=True)
    (OUT / f"candidates_{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
