"""End to end with nested spans: an assembled pipeline as it is (the linker links doc.ents)
against the same pipeline whose linker links a span group (``syncabel_span_union``) holding
the entities plus nested or overlapping spans, from one of two sources:

* ``--spans MODEL``: a span categorizer (``train-ner`` on ``ner-corpus --spans-key sc
  --config configs/spancat.cfg``) placed before the linker; variants ``nested`` (entities plus
  the spans that nest in or contain one), ``all`` (plus every span) and ``source`` (its spans
  alone). Also the NER-only sweep of a spancat score threshold on the added spans.
* ``--layers``: a pipeline with one NER per annotation layer (SPACCC): each layer's NER run on
  its own (no other layer's entities before it), all their entities kept in the group
  (``nested``, ``all``); the flat pipeline runs them one after another, each around the
  entities before it.

    python benchmarks/bench_nested_spans.py training/cantemist/pipeline \
        corpus/cantemist/dev.jsonl --spans training/cantemist/spans/model-best \
        --name cantemist-dev2
    python benchmarks/bench_nested_spans.py training/spaccc/pipeline corpus/spaccc/dev.jsonl \
        --layers --name spaccc-dev

Writes ``benchmarks/results/nested_spans_<name>.json``: strict NER and linking P/R/F1 (per
label) of each variant, and how many gold spans that nest in, contain or cross another gold
span each finds (with its span).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def nested_gold(corpus):
    """(doc, start, end) of gold spans that nest in, contain or cross another gold span."""
    keys = set()
    for i, d in enumerate(corpus):
        spans = sorted({(m.start, m.end) for m in d.mentions})
        for a in spans:
            for b in spans:
                if a != b and a[0] < b[1] and b[0] < a[1]:
                    keys.add((i, *a))
    return keys


class LayerSpans:
    """Each layer NER on a copy of the doc without entities; their entities into 'layers'."""

    def __init__(self, ners):
        self.ners = ners

    def __call__(self, doc):
        from spacy.tokens import Span

        spans = []
        for ner in self.ners:
            d = doc.copy()
            d.ents = []
            spans.extend(Span(doc, e.start, e.end, label=e.label_) for e in ner(d).ents)
        doc.spans["layers"] = spans
        return doc


def sweep(nlp, corpus, thresholds=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95)):
    """NER only: entities plus the spancat spans nesting in / containing one, scored >= t."""
    from spacy_syncabel.evaluation.end_to_end import prf
    from spacy_syncabel.recognition.span_union import nests

    with nlp.select_pipes(disable=["syncabel_span_union", "syncabel_linker"]):
        docs = list(nlp.pipe(d.text for d in corpus))
    gold = {(i, m.start, m.end) for i, d in enumerate(corpus) for m in d.mentions}
    flat = {(i, e.start_char, e.end_char) for i, doc in enumerate(docs) for e in doc.ents}
    rows = []
    for t in thresholds:
        add = {(i, s.start_char, s.end_char) for i, doc in enumerate(docs)
               for s, score in zip(doc.spans["sc"], doc.spans["sc"].attrs["scores"])
               if float(score.max()) >= t and any(nests(s, e) for e in doc.ents)} - flat
        r = prf(list(flat | add), list(gold))
        rows.append({"threshold": t, "added": len(add), "added_right": len(add & gold),
                     **{f"ner_{k}": r[k] for k in ("p", "r", "f")}})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    import spacy
    from spacy.language import Language

    from spacy_syncabel.corpus import read_corpus
    from spacy_syncabel.evaluation.end_to_end import end_to_end_metrics
    from spacy_syncabel.recognition import span_union  # noqa: F401 - registers the factory
    from spacy_syncabel.training.pipeline_io import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--spans", type=Path, help="a span categorizer pipeline")
    ap.add_argument("--layers", action="store_true", help="the layer NERs, each on its own")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    corpus = read_corpus(args.corpus)
    hard = nested_gold(corpus)
    out = {"pipeline": str(args.pipeline), "corpus": str(args.corpus), "spans": str(args.spans),
           "n_nested_gold": len(hard), "variants": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = load_pipeline(args.pipeline)
        if args.layers:
            ners = [nlp.get_pipe(n) for n in nlp.pipe_names if n.startswith("ner_")]
            Language.component("bench_layer_spans", func=LayerSpans(ners))
            added, source, variants = ["bench_layer_spans"], "layers", ("flat", "nested", "all")
            nlp.add_pipe("bench_layer_spans", before="syncabel_linker")
        else:
            sc = spacy.load(args.spans)
            nlp.add_pipe("tok2vec", name="spans_tok2vec", source=sc, before="syncabel_linker")
            nlp.add_pipe("spancat", source=sc, before="syncabel_linker")
            added, source = ["spans_tok2vec", "spancat"], "sc"
            variants = ("flat", "nested", "all", "source")
        nlp.add_pipe("syncabel_span_union", before="syncabel_linker",
                     config={"source_key": source, "spans_key": "mentions"})
        linker = nlp.get_pipe("syncabel_linker")
        for v in variants:
            flat = v == "flat"
            linker.spans_key = None if flat else "mentions"
            nlp.get_pipe("syncabel_span_union").keep = "nested" if flat else v
            off = added + ["syncabel_span_union"] if flat else []
            start = time.perf_counter()
            with nlp.select_pipes(disable=off):
                m = end_to_end_metrics(nlp, corpus, baseline=False)
            with nlp.select_pipes(disable=off + ["syncabel_linker"]):
                docs = list(nlp.pipe(d.text for d in corpus))
            found = {(i, s.start_char, s.end_char) for i, doc in enumerate(docs)
                     for s in linker.mentions(doc)} & hard
            row = {k: m[k] for k in m if k.startswith(("ner_", "linking_"))}
            row.update(per_label=m["per_label_end_to_end"], end_to_end=m["end_to_end"],
                       nested_gold_found=len(found),
                       seconds_with_nested_count=time.perf_counter() - start)
            out["variants"][v] = row
            print(v, {k: round(row[k], 4) for k in ("ner_p", "ner_r", "ner_f", "linking_p",
                                                     "linking_r", "linking_f")},
                  f"nested found {len(found)}/{len(hard)}", flush=True)
        if not args.layers:
            out["sweep"] = sweep(nlp, corpus)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"nested_spans_{args.name}.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf8")
    print(path)


if __name__ == "__main__":
    main()
