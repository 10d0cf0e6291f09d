"""Benchmark: candidate scoring by teacher forcing, one row per name against prefix-shared.

Real SPACCC dev mentions (the project's dev hold-out of train.tsv), each rendered as the
component renders it (300-character context, 128-token budget), with its top-N TF-IDF
candidate names in its group. Both methods score the same (mention, candidates) pairs in the
same batches; reports mentions/s of each at every N, the largest score difference between them
and how many distinct prefix positions the shared method runs per name position of the old one.

    python benchmarks/bench_scoring.py --model smollm2 --n 100 --candidates 10 20 50
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.datasets import get_dataset, split_dev
from spacy_syncabel.decoding import TrieSet
from spacy_syncabel.decoding.candidates import CandidateIndex
from spacy_syncabel.decoding.scoring import _prefix_tree, score_completions
from spacy_syncabel.kb import read_file
from spacy_syncabel.prompting import PromptTemplate, encode_prompt, render_prompt

from bench_decoding import load_model  # benchmarks/ is the script's own folder on sys.path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2", help="smollm2, smollm2:N, tiny or a model folder")
    ap.add_argument("--name", default=None, help="Name of the result file (default: from --model)")
    ap.add_argument("--n", type=int, default=100, help="dev mentions")
    ap.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--batch-size", type=int, default=8, help="mentions per forward pass")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_dataset("spaccc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(DATA / spec.kb)
        _, dev = split_dev(read_corpus(DATA / spec.train), spec.dev_fraction, 0)
    mentions = [(d, m) for d in dev for m in d.mentions if kb.names(m.label)][: args.n]
    model, tok = load_model(args.model, kb, list({d.text for d, _ in mentions}))
    model.eval()
    tries = TrieSet.build(kb, tok)
    index = CandidateIndex(kb)
    template = PromptTemplate(verb="es")
    count = lambda text: len(tok(text)["input_ids"])  # noqa: E731
    prompts = [encode_prompt(tok, render_prompt(d.text, m.start, m.end, m.label,
                                                template=template, window_chars=300,
                                                count_tokens=count, max_tokens=128))
               for d, m in mentions]
    texts = [d.text[m.start:m.end] for d, m in mentions]
    groups = [m.label for _, m in mentions]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    OUT.mkdir(exist_ok=True)
    name = args.name or args.model.replace(":", "-")
    result = {"model": name, "n_mentions": len(mentions), "batch_size": args.batch_size,
              "threads": torch.get_num_threads(), "by_candidates": []}
    for n_cand in args.candidates:
        top = index.top(texts, groups, n_cand)
        comps = [[tries.sequences[name] + [eos] for name, _ in cands] for cands in top]
        positions = sum(len(c) - 1 for cs in comps for c in cs)
        shared_positions = sum(len(_prefix_tree(cs)[0]) for cs in comps)
        timings, scores = {}, {}
        for method, shared in (("one_row_per_name", False), ("prefix_shared", True)):
            t0 = time.perf_counter()
            out = []
            for b in range(0, len(prompts), args.batch_size):
                out += score_completions(model, prompts[b:b + args.batch_size],
                                         comps[b:b + args.batch_size], pad, prefix_shared=shared)
            timings[method] = time.perf_counter() - t0
            scores[method] = out
        diff = max((abs(a - b) for xs, ys in zip(scores["one_row_per_name"],
                                                  scores["prefix_shared"])
                    for a, b in zip(xs, ys)), default=0.0)
        row = {"candidates": n_cand,
               "names_scored": sum(len(c) for c in comps),
               "name_positions": positions, "shared_positions": shared_positions,
               "one_row_per_name_mentions_per_second": len(prompts) / timings["one_row_per_name"],
               "prefix_shared_mentions_per_second": len(prompts) / timings["prefix_shared"],
               "speedup": timings["one_row_per_name"] / timings["prefix_shared"],
               "max_abs_logprob_difference": diff}
        print(json.dumps(row), flush=True)
        result["by_candidates"].append(row)
        (OUT / f"scoring_{name}.json").write_text(json.dumps(result, indent=2))  # after each N


if __name__ == "__main__":
    main()
