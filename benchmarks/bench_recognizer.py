"""End to end with a stronger recognizer: an assembled pipeline (segmenter + NER + linker) as it
is, with the dictionary span proposer after its NER, with the linker's NIL threshold chosen on
another split's gold mentions, and with both; one JSON per variant into benchmarks/results/.

    python benchmarks/bench_recognizer.py training/spaccc/pipeline corpus/spaccc/dev.jsonl \
        --train corpus/spaccc/train.jsonl --threshold-corpus corpus/spaccc/test.jsonl \
        --name spaccc-dev

Each file holds the strict NER and linking P/R/F1 beside NER + TF-IDF (+ aliases), per label,
and where the loss is (:func:`spacy_syncabel.evaluation.span_errors.span_errors`: spans found,
overlapped or missed; linking accuracy on exact and on overlapping spans).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

KEYS = ("ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
        "baseline_tfidf_linking_p", "baseline_tfidf_linking_r", "baseline_tfidf_linking_f",
        "baseline_tfidf_aliases_linking_f")
VARIANTS = ("base", "proposer", "nil-threshold", "proposer+nil-threshold")


def main() -> None:
    from spacy_syncabel.corpus import read_corpus
    from spacy_syncabel.evaluation.end_to_end import end_to_end_metrics
    from spacy_syncabel.pipes import find_linker
    from spacy_syncabel.evaluation.resources import peak_rss_mb
    from spacy_syncabel.evaluation.span_errors import span_errors
    from spacy_syncabel.evaluation.abstention import gold_mention_scores
    from spacy_syncabel.linking.abstention import choose_threshold
    from spacy_syncabel.recognition.proposer import FACTORY, add_dictionary_proposer
    from spacy_syncabel.training.assemble import ner_labels
    from spacy_syncabel.training.pipeline_io import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--threshold-corpus", type=Path, required=True)
    ap.add_argument("--threshold-mentions", type=int, default=2000)
    ap.add_argument("--name", default="run")
    ap.add_argument("--note", default="")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    docs = read_corpus(args.corpus)
    nlp = load_pipeline(args.pipeline)
    linker = find_linker(nlp)
    labels = ner_labels(nlp)
    t0 = time.perf_counter()
    scores, correct = gold_mention_scores(nlp, read_corpus(args.threshold_corpus),
                                          limit=args.threshold_mentions)
    threshold, curve = choose_threshold(scores, correct)
    threshold_info = {"corpus": str(args.threshold_corpus), "mentions": len(scores),
                      "threshold": threshold, "seconds": time.perf_counter() - t0,
                      "curve": [{k: round(v, 4) for k, v in r.items()} for r in curve]}
    print("threshold", threshold, "on", len(scores), "mentions", flush=True)
    base_settings = linker.settings
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    for variant in args.variants.split(","):
        if FACTORY in nlp.pipe_names:
            nlp.remove_pipe(FACTORY)
        info = {}
        if "proposer" in variant:
            t0 = time.perf_counter()
            proposer = add_dictionary_proposer(nlp, read_corpus(args.train), kb=linker.kb,
                                               label_map=dict(linker.label_map), labels=labels,
                                               before=linker.name)
            info["proposer"] = {"phrases": len(proposer.dictionary),
                                "seconds": time.perf_counter() - t0}
        linker.settings = base_settings.replace(
            threshold=threshold if "nil-threshold" in variant else base_settings.threshold)
        if "nil-threshold" in variant:
            info["nil_threshold"] = threshold_info
        t0 = time.perf_counter()
        m = end_to_end_metrics(nlp, docs)
        seconds = time.perf_counter() - t0
        out_docs = list(nlp.pipe(d.text for d in docs))
        run = {**{k: m[k] for k in KEYS if k in m},
               "per_label": {lab: {k: round(v, 4) if isinstance(v, float) else v
                                   for k, v in s.items()}
                             for lab, s in m["per_label_end_to_end"].items()},
               **m["end_to_end"], "seconds_with_baselines": seconds}
        out = {"what": f"{args.corpus} end to end, {variant}: {args.note}".rstrip(": "),
               "command": " ".join(["python", "benchmarks/bench_recognizer.py", *sys.argv[1:]]),
               "pipeline": str(args.pipeline), "corpus": str(args.corpus),
               "n_docs": len(docs), "pipe_names": nlp.pipe_names,
               "linker_threshold": linker.settings.threshold, **info,
               "span_errors": span_errors(out_docs, docs, linker.kb, dict(linker.label_map)),
               "peak_rss_mb": peak_rss_mb(), "runs": {"with_segmenter": run}}
        path = results / f"end_to_end_{args.name}_{variant.replace('+', '_')}.json"
        path.write_text(json.dumps(out, indent=2), encoding="utf8")
        print(variant, json.dumps({k: round(run[k], 4) for k in KEYS if k in run}), "->", path,
              flush=True)


if __name__ == "__main__":
    main()
