"""Benchmark: the linking cascade off and on, on a trained pipeline's gold mentions.

    python benchmarks/bench_cascade.py training/spaccc/model-best corpus/spaccc/test.jsonl \
        --name spaccc [--margin 0.1 | --exact-only] [--slices 8] [--threads 2]

The corpus is anything ``read_corpus`` reads (JSONL, SPACCC's ``test_half.tsv``, brat...).
Every gold mention is linked by the pipeline's linker as saved, once with ``cascade`` off
("before") and once on ("after": the saved cut-off, or ``--margin`` / ``--exact-only``), through
``linker.pipe`` as ``evaluate`` links them (prompt rendering included). Both run interleaved in
one process: the corpus is cut into slices and each slice is linked off then on (on then off
for every other slice), so both see the same machine load. Both are scored by
``evaluation/metrics.py`` (the paper's exact Recall@k). Then the cascade's own path is timed
step by step on all mentions (prompt rendering, retrieval, the dictionary, the LM on the
mentions left). Writes ``benchmarks/results/cascade_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from spacy_syncabel.corpus import docs_to_spacy, read_corpus
from spacy_syncabel.evaluation.evaluate import find_linker, layered, sentence_segmenters
from spacy_syncabel.evaluation.metrics import doc_link_items, score_links
from spacy_syncabel.training.pipeline_io import load_pipeline

OUT = Path(__file__).resolve().parent / "results"


def gold_inputs(nlp, docs) -> Tuple[list, list]:
    """The gold docs and the linker's inputs (gold entities, no codes, the pipeline's
    sentences), as ``evaluate_linker`` builds them."""
    gold = docs_to_spacy(nlp, layered(docs))
    inputs = [d.copy() for d in gold]
    for d in inputs:
        for t in d:
            t.ent_kb_id_ = ""
    for segmenter in sentence_segmenters(nlp):
        inputs = list(segmenter.pipe(inputs))
    return gold, inputs


def timed_pipe(linker, docs: Sequence, batch_size: int) -> Tuple[list, float]:
    copies = [d.copy() for d in docs]
    t0 = time.perf_counter()
    out = list(linker.pipe(copies, batch_size=batch_size))
    return out, time.perf_counter() - t0


def interleaved(views: Dict[str, Any], inputs: Sequence, slices: int, batch_size: int,
                ) -> Tuple[Dict[str, list], Dict[str, float]]:
    """Each view links every slice; the order flips slice by slice. Each view first links a
    few docs untimed (building its retriever and dictionary: a warm-up)."""
    for view in views.values():
        timed_pipe(view, inputs[:4], batch_size)
    out: Dict[str, list] = {k: [] for k in views}
    seconds = {k: 0.0 for k in views}
    n = len(inputs)
    bounds = [round(i * n / slices) for i in range(slices + 1)]
    names = list(views)
    for s in range(slices):
        part = inputs[bounds[s]:bounds[s + 1]]
        for name in (names if s % 2 == 0 else names[::-1]):
            docs, sec = timed_pipe(views[name], part, batch_size)
            out[name] += docs
            seconds[name] += sec
        print(f"slice {s + 1}/{slices}: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()),
              flush=True)
    return out, seconds


def mentions_of(linker, inputs) -> Tuple[list, list, list, list]:
    """(doc, ent, text, group) of every entity the linker links."""
    refs = [(d, e) for d in inputs for e in d.ents]
    return ([d for d, _ in refs], [e for _, e in refs],
            [linker.mention_text(e) for _, e in refs], [linker.group_for(e.label_) for _, e in refs])


def profile_path(on, inputs) -> Dict[str, Any]:
    """Seconds of each step of the cascade's path on every mention, each run once."""
    engine = on.engine
    docs, ents, texts, groups = mentions_of(on, inputs)
    t0 = time.perf_counter()
    sents = {id(d): (d.has_annotation("SENT_START"), d.text) for d in inputs}
    prompts = [on.mention_prompt_ids(d, e, g, *sents[id(d)]) for d, e, g in zip(docs, ents, groups)]
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    retrieved = engine.retrieve(texts, groups, engine.cascade_depth)
    t_retrieve = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = engine.settle(texts, groups, retrieved)
    t_settle = time.perf_counter() - t0
    margin = engine.settings.cascade_margin
    rest = [i for i, p in enumerate(plan) if not p.settled(margin)]
    t0 = time.perf_counter()
    if rest:
        engine.with_settings(cascade=False).link([prompts[i] for i in rest],
                                                 [groups[i] for i in rest],
                                                 [texts[i] for i in rest])
    t_lm = time.perf_counter() - t0
    n = len(plan)
    exact = sum(p.exact is not None and not p.ambiguous for p in plan)
    return {
        "n_mentions": n,
        "skipped": (n - len(rest)) / max(1, n),
        "settled_by_exact_match": exact / max(1, n),
        "settled_by_margin": (n - len(rest) - exact) / max(1, n),
        "ambiguous_exact_match": sum(p.ambiguous for p in plan) / max(1, n),
        "seconds": {"render_and_tokenize_prompts": t_render, "retrieve": t_retrieve,
                    "dictionary_and_margin": t_settle,
                    "lm_on_the_rest (retrieval again included)": t_lm},
        "lm_mentions_per_second": len(rest) / t_lm if t_lm else None,
        "ms_per_mention_without_lm": 1000 * (t_render + t_retrieve + t_settle) / max(1, n),
    }


def score(linked, gold, kb) -> Dict[str, Any]:
    metrics = score_links(doc_link_items(zip(linked, gold)), (1, 5), kb)
    return {k: metrics[k] for k in ("recall@1", "recall@5", "recall@1_lenient", "n_mentions",
                                    "n_excluded") if k in metrics}


def slice_args(ap: argparse.ArgumentParser, slices: int) -> None:
    """The options of a benchmark that links a corpus's gold mentions in interleaved slices."""
    ap.add_argument("--slices", type=int, default=slices)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0, help="First N documents (0: all)")
    ap.add_argument("--threads", type=int, default=0)


def load_linker(args) -> Tuple[Any, list, Any]:
    """``(nlp, docs, linker)`` from ``args.pipeline`` and ``args.corpus`` (``--limit``,
    ``--threads`` applied)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(args.pipeline)
        docs = read_corpus(args.corpus)
    docs = docs[:args.limit] if args.limit else docs
    return nlp, docs, find_linker(nlp)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("corpus")
    ap.add_argument("--name", required=True)
    ap.add_argument("--margin", type=float, default=None,
                    help="Cascade cut-off for the 'on' run (default: the saved one)")
    ap.add_argument("--exact-only", action="store_true",
                    help="The 'on' run settles exact/alias matches only")
    slice_args(ap, slices=8)
    args = ap.parse_args()
    nlp, docs, linker = load_linker(args)
    saved = linker.settings
    margin: Optional[float] = saved.cascade_margin
    if args.exact_only:
        margin = None
    elif args.margin is not None:
        margin = args.margin
    views = {"off": linker.with_settings(cascade=False),
             "on": linker.with_settings(cascade=True, cascade_margin=margin)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gold, inputs = gold_inputs(nlp, docs)
        linked, seconds = interleaved(views, inputs, args.slices, args.batch_size)
        n = sum(len(d.ents) for d in inputs)
        result: Dict[str, Any] = {
            "pipeline": args.pipeline, "corpus": args.corpus, "name": args.name,
            "n_docs": len(inputs), "n_mentions": n, "threads": torch.get_num_threads(),
            "batch_size": args.batch_size, "slices": args.slices,
            "saved_settings": {k: v for k, v in saved.to_dict().items()
                               if k in ("mode", "candidates", "prior_weight", "num_beams",
                                        "n_best", "cascade", "cascade_margin")},
            "cascade_margin": margin,
        }
        for name in views:
            result[name] = dict(score(linked[name], gold, linker.kb), seconds=seconds[name],
                                mentions_per_second=n / seconds[name])
        result["speedup"] = seconds["off"] / seconds["on"]
        result["recall@1_change"] = result["on"]["recall@1"] - result["off"]["recall@1"]
        result["profile_on"] = profile_path(views["on"], inputs)
    result["skipped"] = result["profile_on"]["skipped"]
    OUT.mkdir(exist_ok=True)
    (OUT / f"cascade_{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
