"""End-to-end scores of an assembled pipeline (segmenter + NER + linker) on full documents,
with and without its sentence segmenter, beside NER + TF-IDF; JSON into benchmarks/results/.

    python benchmarks/bench_end_to_end.py training/spaccc/pipeline corpus/spaccc/dev.jsonl \
        --name spaccc-dev --note "5-minute linker, 2000-step NER"

Without the segmenter the linker's context is a window of ``context_chars`` around the mention
that may cross sentences (as in training on corpora without sentences); with it, the context
stops at the sentence.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

KEYS = ("ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
        "baseline_tfidf_linking_p", "baseline_tfidf_linking_r", "baseline_tfidf_linking_f",
        "baseline_tfidf_aliases_linking_f")


def main() -> None:
    from spacy_syncabel.corpus import read_corpus
    from spacy_syncabel.evaluation.end_to_end import end_to_end_metrics
    from spacy_syncabel.evaluation.resources import peak_rss_mb
    from spacy_syncabel.training.pipeline_io import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--name", default="run")
    ap.add_argument("--note", default="")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    docs = read_corpus(args.corpus)
    if args.limit:
        docs = docs[:args.limit]
    nlp = load_pipeline(args.pipeline)
    segmenters = [n for n in nlp.pipe_names if n in ("sentencizer", "senter",
                                                     "syncabel_sentencizer")]
    runs = {}
    for variant, disabled in (("with_segmenter", []), ("without_segmenter", segmenters)):
        if variant == "without_segmenter" and not segmenters:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            with nlp.select_pipes(disable=disabled):
                m = end_to_end_metrics(nlp, docs)
            seconds = time.perf_counter() - t0
        runs[variant] = {**{k: m[k] for k in KEYS if k in m},
                         "per_label": {lab: {k: round(v, 4) if isinstance(v, float) else v
                                             for k, v in s.items()}
                                       for lab, s in m["per_label_end_to_end"].items()},
                         **m["end_to_end"], "seconds_with_baselines": seconds}
        print(variant, json.dumps({k: round(runs[variant][k], 4) for k in KEYS
                                   if k in runs[variant]}))
    out = {"pipeline": str(args.pipeline), "corpus": str(args.corpus), "n_docs": len(docs),
           "pipe_names": nlp.pipe_names, "note": args.note, "peak_rss_mb": peak_rss_mb(),
           "runs": runs}
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"end_to_end_{args.name}.json"
    path.write_text(json.dumps(out, indent=2), encoding="utf8")
    print("->", path)


if __name__ == "__main__":
    main()
