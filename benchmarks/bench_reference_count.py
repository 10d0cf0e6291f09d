"""The reference's mention count against the former one, with the TF-IDF baseline linker.

The former rule left gold mentions whose code is outside the KB out of Recall@1; the SynCABEL
reference keeps them (as misses) and drops only NO_CODE and duplicate mentions. This scores
the TF-IDF char 3-gram baseline (``evaluation/baseline.py``, the one ``evaluate`` reports) on a
prepared split both ways, with the metrics code (``recall@1`` and ``recall@1_in_kb``), and
counts the reference's mentions independently of it.

    python -m spacy_syncabel prepare-corpus spaccc ../shared/data /tmp/spaccc
    python -m spacy_syncabel prepare-kb spaccc ../shared/data /tmp/spaccc/kb
    python benchmarks/bench_reference_count.py /tmp/spaccc/dev.jsonl /tmp/spaccc/kb --name spaccc_dev
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_count(docs) -> int:
    """One mention per (document, label, start, end), codes holding NO_CODE dropped."""
    return len({(d.id, m.label, m.start, m.end) for d in docs for m in d.mentions
                if m.code and m.code != "NIL" and "NO_CODE" not in m.code})


def main() -> None:
    from spacy_syncabel.corpus import read_corpus
    from spacy_syncabel.evaluation.baseline import TfidfLinker
    from spacy_syncabel.evaluation.metrics import score_links
    from spacy_syncabel.evaluation.places import mention_places
    from spacy_syncabel.evaluation.scoring_file import load_kb

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("kb", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    docs = read_corpus(args.corpus)
    kb = load_kb(args.kb)
    places = mention_places(docs, args.corpus)
    mentions = [(d.text[m.start:m.end], m, p) for d, ps in zip(docs, places)
                for m, p in zip(d.mentions, ps)]
    groups = [m.label if m.label in kb.groups else None for _, m, _ in mentions]
    ranked = TfidfLinker(kb).link([t for t, _, _ in mentions], groups, 5)
    items = [(m.code, codes, m.label, *p) for (_, m, p), codes in zip(mentions, ranked)]
    rep = score_links(items, (1, 5), kb, bootstrap=args.bootstrap)
    out = {"corpus": str(args.corpus), "kb": str(args.kb), "linker": "TF-IDF char 3-gram",
           "gold_mentions": len(mentions), "reference_count": reference_count(docs),
           "n_mentions": rep["n_mentions"], "recall@1": rep["recall@1"],
           "recall@1_ci": rep.get("recall@1_ci"), "recall@5": rep["recall@5"],
           "former_count": rep["n_mentions_in_kb"], "former_recall@1": rep["recall@1_in_kb"],
           "n_not_in_kb": rep["n_not_in_kb"], "excluded": rep["excluded"]}
    assert out["n_mentions"] == out["reference_count"]
    path = ROOT / "benchmarks" / "results" / f"reference_count_{args.name}.json"
    path.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
