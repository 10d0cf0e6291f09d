"""Build and save a tiny random-initialised linker pipeline, once, with a fixed seed.

    python benchmarks/build_tiny_pipeline.py KB LANG OUTPUT [--seed 0] [--sentencizer] [--rerank]

Two versions of the package then load the same folder (``spacy.load``) and link the same
mentions (``benchmarks/dump_predictions.py``): a parity check that needs no trained model.
``--rerank``: the LM scores each mention's 10 retrieved candidates (a random LM's beams in the
whole trie collapse onto a few names; its candidate scores still depend on every prompt).
"""
from __future__ import annotations

import argparse
import json
import warnings

import spacy
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kb")
    ap.add_argument("lang")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sentencizer", action="store_true")
    ap.add_argument("--rerank", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    import spacy_syncabel.pipeline  # noqa: F401 - registers syncabel_linker

    nlp = spacy.blank(args.lang)
    if args.sentencizer:
        nlp.add_pipe("syncabel_sentencizer")
    config = {"num_beams": 3, "n_best": 3, "max_new_tokens": 16}
    if args.rerank:
        config.update(mode="rerank", candidates=10)
    nlp.add_pipe("syncabel_linker", config=config)
    nlp.config["initialize"]["components"]["syncabel_linker"] = {
        "kb_loader": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": args.kb},
        "model": {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
                  "num_heads": 2, "intermediate_size": 64, "vocab_size": 1000,
                  "seed": args.seed}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    nlp.to_disk(args.output)
    print(json.dumps({"output": args.output, "kb": args.kb, "seed": args.seed}))


if __name__ == "__main__":
    main()
