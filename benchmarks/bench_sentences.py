"""Sentence context the SynCABEL way, measured on SPACCC ``test_half.tsv``.

1. Segmenter agreement with the published sentences: the distinct marked sentences of each
   document, unmarked, in text order, joined by one space, go through ``syncabel_sentencizer``:
   the share of published sentences left whole, and of the boundaries between consecutive
   sentences found (also for each sentence alone, as ``render`` reads the TSV).
2. Reproduction: a pipeline folder (blank "es" + the segmenter + ``syncabel_linker`` with the
   SPACCC KB and a tiny random Llama with the SmolLM2 tokenizer, ``context_chars: 0``) renders
   every mention with the ``render`` command's code; each prompt is compared with the published
   model input ``{sentence}<SEP>[{mention}] es``; mismatches are listed by cause.
3. How often the token budget cuts the whole-sentence prompt (SmolLM2 tokenizer) on SPACCC
   train / test and the other corpora of ../shared/data.

    OMP_NUM_THREADS=1 python benchmarks/bench_sentences.py [--data ../shared/data]

writes ``benchmarks/results/sentences_spaccc.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spacy  # noqa: E402

import spacy_syncabel.pipeline  # noqa: E402,F401 - registers syncabel_linker
import spacy_syncabel.segmentation  # noqa: E402,F401 - registers syncabel_sentencizer
from spacy_syncabel.corpus import read_corpus  # noqa: E402
from spacy_syncabel.tsv import iter_tsv  # noqa: E402
from spacy_syncabel.corpus.marked_tsv import unmark  # noqa: E402
from spacy_syncabel.pipes import find_linker  # noqa: E402
from spacy_syncabel.prompting.docs import gold_spans, prepare_doc  # noqa: E402
from spacy_syncabel.render import (render,  # noqa: E402
                                   render_docs)
from spacy_syncabel.prompting import SEP_TOKEN  # noqa: E402

TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 16, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 32, "tokenizer": "smollm2", "seed": 0}


def read_rows(path: Path) -> List[Dict[str, str]]:
    """The TSV rows, read as the corpus reader reads them (one doc per row, same order)."""
    return [row for _, row in iter_tsv(path)]


def published_sentences(rows) -> Dict[str, List[Tuple[int, str]]]:
    """Per document, its distinct published sentences (unmarked) as (start in doc, text)."""
    docs: Dict[str, Dict[Tuple[int, str], None]] = defaultdict(dict)
    for row in rows:
        text, start, _, _ = unmark(row["sentence"], row["label"] or None, row["span"])
        docs[row["filename"]][(int(row["start_span"]) - start, text)] = None
    return {d: sorted(s) for d, s in docs.items()}


def segmenter_agreement(nlp, docs) -> Dict:
    n_bounds = found = n_sents = whole = alone = 0
    missed, cut = [], []
    for doc_id, sents in docs.items():
        text = " ".join(t for _, t in sents)
        offsets, o = [], 0
        for _, t in sents:
            offsets.append(o)
            o += len(t) + 1
        doc = nlp(text)
        starts = {t.idx for t in doc if t.is_sent_start}
        for off in offsets[1:]:
            n_bounds += 1
            if off in starts:
                found += 1
            else:
                missed.append(f"{doc_id}: ...{text[max(0, off - 50):off]}|| {text[off:off + 40]}...")
        for off, (_, t) in zip(offsets, sents):
            n_sents += 1
            inside = sorted(s for s in starts if off < s < off + len(t))
            if inside:
                cut.append(f"{doc_id}: ...{t[:inside[0] - off][-50:]}|| {t[inside[0] - off:][:40]}...")
            else:
                whole += 1
            alone += sum(1 for tok in nlp(t) if tok.is_sent_start) == 1
    return {"documents": len(docs), "sentences": n_sents, "boundaries": n_bounds,
            "sentences_kept_whole": whole, "sentences_kept_whole_rate": whole / n_sents,
            "boundaries_found": found, "boundary_recall": found / n_bounds,
            "sentences_whole_when_alone": alone, "sentences_whole_when_alone_rate": alone / n_sents,
            "missed_boundaries": missed, "cut_sentences": cut}


def build_pipeline(kb_path: Path, folder: Path, max_context_tokens: int) -> Path:
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer")
    nlp.add_pipe("syncabel_linker", config={"context_chars": 0,
                                            "max_context_tokens": max_context_tokens})
    nlp.config["initialize"]["components"]["syncabel_linker"] = {
        "model": TINY, "kb_loader": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": str(kb_path)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    nlp.to_disk(folder)
    return folder


def reproduction(rows, lines: List[Dict]) -> Dict:
    assert len(lines) == len(rows), (len(lines), len(rows))
    causes: Counter = Counter()
    examples: Dict[str, List[str]] = defaultdict(list)
    ok = span_column_differs = 0
    for row, rec in zip(rows, lines):
        text, start, end, _ = unmark(row["sentence"], row["label"] or None, row["span"])
        mention = text[start:end]
        expected = f"{row['sentence']}{SEP_TOKEN}[{mention}] es"
        if mention != row["span"]:
            span_column_differs += 1
        got = rec["prompt"]
        if got == expected:
            ok += 1
            continue
        got_sentence = got.rsplit(SEP_TOKEN, 1)[0]
        if got_sentence != row["sentence"] and got_sentence in row["sentence"]:
            cause = ("token budget cut the sentence" if rec.get("cut_by_budget")
                     else "segmenter split the published sentence")
        else:
            cause = "other"
        causes[cause] += 1
        examples[cause].append(f"{row['mention_id']}: got {got!r} expected {expected!r}")
    return {"mentions": len(rows), "reproduced": ok, "reproduction_rate": ok / len(rows),
            "mismatches_by_cause": dict(causes), "mismatches": dict(examples),
            "span_column_differs_from_marked_mention": span_column_differs}


def budget_counts(nlp, docs, budgets) -> Dict:
    """Whole-sentence prompts over each token budget (tokens as the linker counts them)."""
    _, linker = find_linker(nlp)
    n = 0
    lengths: List[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels of other corpora are not SPACCC groups
        for cdoc in docs:
            doc = prepare_doc(nlp, cdoc)
            has_sents, text = doc.has_annotation("SENT_START"), doc.text
            for m, span in gold_spans(doc, cdoc):
                if span is None:
                    continue
                n += 1
                group = linker.group_for(m.label)
                prompt = linker.mention_prompt(doc, span, group, fit=False, has_sents=has_sents,
                                               text=text)
                lengths.append(linker.prompt_builder.count_tokens(prompt))
    lengths.sort()
    out = {"mentions": n, "median_tokens": lengths[n // 2] if n else 0,
           "p95_tokens": lengths[int(n * 0.95)] if n else 0, "max_tokens": lengths[-1] if n else 0}
    for b in budgets:
        over = sum(1 for x in lengths if x > b)
        out[f"over_{b}"] = over
        out[f"over_{b}_rate"] = over / n if n else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--output", type=Path,
                    default=ROOT / "benchmarks" / "results" / "sentences_spaccc.json")
    ap.add_argument("--budgets", default="128,192,256")
    ap.add_argument("--other-datasets", action="store_true", help="Also count budget cuts on "
                    "CANTEMIST dev1, QUAERO dev and NCBI-disease dev.")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    spaccc = args.data / "spaccc"
    rows = read_rows(spaccc / "test_half.tsv")
    result: Dict = {"corpus": "spaccc/test_half.tsv"}

    t0 = time.time()
    seg = spacy.blank("es")
    seg.add_pipe("syncabel_sentencizer")
    result["segmenter"] = segmenter_agreement(seg, published_sentences(rows))
    result["segmenter"]["seconds"] = round(time.time() - t0, 2)

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_pipeline(spaccc / "kb_snomed_es_lite.tsv", Path(tmp) / "pipe",
                                max_context_tokens=100_000)
        t0 = time.time()
        stats = render(folder, spaccc / "test_half.tsv", Path(tmp) / "prompts.jsonl")
        result["render_seconds"] = round(time.time() - t0, 2)
        stats.pop("output")
        result["render"] = stats
        with (Path(tmp) / "prompts.jsonl").open(encoding="utf-8") as f:
            whole = [json.loads(line) for line in f]
        result["reproduction"] = reproduction(rows, whole)
        # the same with a token budget: how many published inputs it cuts
        nlp = spacy.load(folder)
        linker = find_linker(nlp)[1]
        test_docs = read_corpus(spaccc / "test_half.tsv")
        result["reproduction_with_budget"] = {}
        for budget in budgets:
            linker.cfg["max_context_tokens"] = budget
            cut = list(render_docs(nlp, test_docs))
            for rec, full in zip(cut, whole):
                rec["cut_by_budget"] = rec["prompt"] != full["prompt"]
            rep = reproduction(rows, cut)
            result["reproduction_with_budget"][str(budget)] = {
                k: rep[k] for k in ("reproduced", "reproduction_rate", "mismatches_by_cause")}
        linker.cfg["max_context_tokens"] = 100_000
        budgets_out = {"spaccc/test_half (published sentences as docs)":
                       budget_counts(nlp, test_docs, budgets)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train = read_corpus(spaccc / "train.tsv")
        budgets_out["spaccc/train (notes segmented)"] = budget_counts(nlp, train, budgets)
        if args.other_datasets:
            for name, path in [("cantemist/dev1", args.data / "cantemist" / "dev1"),
                               ("quaero/dev", args.data / "quaero" / "dev"),
                               ("ncbi-disease/dev", args.data / "ncbi-disease" / "NCBIdevelopset_corpus.txt")]:
                if path.exists():
                    try:
                        budgets_out[name] = budget_counts(nlp, read_corpus(path), budgets)
                    except Exception as err:  # noqa: BLE001 - report, do not stop the run
                        budgets_out[name] = {"error": str(err)}
        result["token_budget"] = {"tokenizer": "SmolLM2", "budgets": budgets,
                                  "datasets": budgets_out}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    seg_r, rep = result["segmenter"], result["reproduction"]
    print(f"segmenter: {seg_r['sentences_kept_whole_rate']:.2%} sentences whole, "
          f"{seg_r['boundary_recall']:.2%} boundaries found")
    print(f"render: {rep['reproduced']}/{rep['mentions']} = {rep['reproduction_rate']:.2%} "
          f"reproduced; causes {rep['mismatches_by_cause']}")
    for budget, r in result["reproduction_with_budget"].items():
        print(f"  with max_context_tokens {budget}: {r['reproduction_rate']:.2%} "
              f"{r['mismatches_by_cause']}")
    for name, b in result["token_budget"]["datasets"].items():
        print(name, {k: v for k, v in b.items() if not k.endswith("rate")})


if __name__ == "__main__":
    main()
