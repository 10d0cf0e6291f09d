"""Link a corpus's gold mentions with a pipeline and write the ranked codes per mention.

    python benchmarks/dump_predictions.py PIPELINE CORPUS OUT.jsonl [--threads 1]

One line per gold mention, ``{"doc_id", "start", "end", "codes"}``: the format of the
``score`` command, so two versions of the linker can be compared mention by mention (it uses
only the component's public surface, which both sides of a refactor keep).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import spacy
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("corpus")
    ap.add_argument("output")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from spacy_syncabel.corpus import docs_to_spacy, read_corpus
    from spacy_syncabel.evaluation.evaluate import find_linker, layered

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = spacy.load(args.pipeline)
        linker = find_linker(nlp)
        corpus = layered(read_corpus(args.corpus))
        docs = docs_to_spacy(nlp, corpus)
        for d in docs:
            for t in d:
                t.ent_kb_id_ = ""
        t0 = time.perf_counter()
        linked = list(linker.pipe(docs, batch_size=args.batch_size))
        seconds = time.perf_counter() - t0
    n = 0
    with open(args.output, "w", encoding="utf8") as f:
        for cdoc, doc in zip(corpus, linked):
            for ent in doc.ents:
                codes = [c["code"] for c in ent._.syncabel or []]
                f.write(json.dumps({"doc_id": cdoc.id, "start": ent.start_char,
                                    "end": ent.end_char, "codes": codes}) + "\n")
                n += 1
    print(json.dumps({"mentions": n, "seconds": round(seconds, 1),
                      "mentions_per_second": round(n / seconds, 1)}))


if __name__ == "__main__":
    main()
