"""Benchmark: a trained pipeline on a test set under several linker settings, beside TF-IDF.

    python benchmarks/bench_linking.py training/spaccc/model-best corpus/spaccc/test.jsonl \
        --train corpus/spaccc/train.jsonl --dataset spaccc --name tiny-256x4-25min
Writes benchmarks/results/linking_<name>_<setting>.json (the evaluate command's metrics).
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.evaluation.evaluate import evaluate_linker, find_linker
from spacy_syncabel.training.pipeline_io import load_pipeline

OUT = Path(__file__).resolve().parent / "results"
SETTINGS = {  # name: linker settings given to the config at load time; {}: as saved
    "saved": {},  # the pipeline's own settings (e.g. the dev-calibrated reranking)
    "full-trie": {"mode": "beam", "prior_weight": 0.0, "num_beams": 5, "n_best": 5},
    "cand20-prior10": {"mode": "beam_in_candidates", "candidates": 20, "prior_weight": 10.0,
                       "num_beams": 5, "n_best": 5},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("corpus")
    ap.add_argument("--train", default=None)
    ap.add_argument("--dataset", default="spaccc")
    ap.add_argument("--name", required=True)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = read_corpus(args.corpus)
        train = read_corpus(args.train) if args.train else None
    for setting in args.settings.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nlp = load_pipeline(args.pipeline, **SETTINGS[setting])
        label = setting
        if not SETTINGS[setting]:
            saved = find_linker(nlp).settings
            label = f"saved: {saved.mode}-cand{saved.candidates}-prior{saved.prior_weight:g}"
        metrics = evaluate_linker(nlp, docs, train=train, source=args.corpus)
        metrics.update(dataset=args.dataset, pipeline=f"{args.name} ({label})",
                       threads=torch.get_num_threads())
        OUT.mkdir(exist_ok=True)
        (OUT / f"linking_{args.name}_{setting}.json").write_text(json.dumps(metrics, indent=2))
        print(label, {k: metrics[k] for k in ("recall@1", "recall@5", "baseline_tfidf_recall@1",
                                                 "mentions_per_second", "peak_rss_mb")})


if __name__ == "__main__":
    main()
