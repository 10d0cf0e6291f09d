"""`evaluate` and `nlp.evaluate` on the same predictions: one recall rule since the fix.

TF-IDF (char 3-gram) predictions for every gold mention of CANTEMIST dev1 (the dataset's test split here; eCIE-O-3.1 KB, whose
'/H' codes are alternative codes) and NCBI-disease test (MEDIC, alternative ids), scored:
* as `evaluate` scores them (``score_links`` with the KB: canonical codes, exact sets);
* as `nlp.evaluate` scores them (``recall_at_k_from_docs`` over spaCy Docs, with the KB);
* as `nlp.evaluate` scored them before (Docs, no KB: no canonical codes);
* as `evaluate` scored them before (canonical codes, superset rule, no exclusion).
Writes benchmarks/results/recall_paths.json.

    python benchmarks/bench_recall_paths.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pairs(nlp, refs, ranked):
    """Predicted copies of the reference Docs whose entities carry the ranked codes."""
    from spacy_syncabel.pipeline import register_extensions

    register_extensions()
    pairs, i = [], 0
    for ref in refs:
        pred = ref.copy()
        for ent in pred.ents:
            codes = ranked[i]
            i += 1
            ent._.syncabel = [{"code": c, "name": "", "score": 1.0, "logprob": 0.0} for c in codes]
        pairs.append((pred, ref))
    return pairs


def run(data: Path, dataset: str, split: str):
    import spacy

    from spacy_syncabel.corpus import docs_to_spacy, read_corpus
    from spacy_syncabel.evaluation.baseline import TfidfLinker
    from spacy_syncabel.evaluation.evaluate import layered
    from spacy_syncabel.evaluation.metrics import (LinkResult, canonical, hit, is_linkable,
                                                   recall_at_k_from_docs, score_links)
    from spacy_syncabel.datasets import get_dataset
    from spacy_syncabel.kb import read_file

    spec = get_dataset(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(data / spec.kb, format=spec.kb_format)
        nlp = spacy.blank(spec.lang)
        refs = docs_to_spacy(nlp, layered(read_corpus(data / getattr(spec, split))))
    ents = [e for d in refs for e in d.ents]
    lmap = dict(spec.label_map or {})
    groups = [lmap.get(e.label_, e.label_ if e.label_ in kb.groups else None) for e in ents]
    ranked = TfidfLinker(kb).link([e.text for e in ents], groups, 5)
    pairs = _pairs(nlp, refs, ranked)
    items = [(e.kb_id_, r, e.label_) for e, r in zip(ents, ranked)]
    new_evaluate = score_links(items, (1, 5), kb)
    new_nlp = recall_at_k_from_docs(pairs, (1, 5), kb=kb)
    old_nlp = recall_at_k_from_docs(pairs, (1, 5))
    # before: evaluate canonicalised the gold only, kept golds outside the KB, superset rule
    old = [LinkResult(canonical(g, kb), r, lab) for g, r, lab in items if is_linkable(g)
           and "NO_CODE" not in g]
    old_evaluate = sum(hit(r.gold, r.predicted, 1, lenient=True) for r in old) / len(old)
    n_alt = sum(1 for g, _, _ in items if is_linkable(g) and canonical(g, kb) != canonical(g))
    return {"dataset": f"{dataset} {Path(getattr(spec, split)).name}", "mentions": len(items), "gold_alternative_codes": n_alt,
            "n_excluded": new_evaluate["n_excluded"], "excluded": new_evaluate["excluded"],
            "evaluate_recall@1": new_evaluate["recall@1"],
            "nlp_evaluate_recall@1": new_nlp["recall@1"],
            "evaluate_recall@5": new_evaluate["recall@5"],
            "nlp_evaluate_recall@5": new_nlp["recall@5"],
            "evaluate_recall@1_lenient": new_evaluate["recall@1_lenient"],
            "before_nlp_evaluate_recall@1": old_nlp["recall@1"],
            "before_evaluate_recall@1": old_evaluate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "recall_paths.json")
    args = parser.parse_args()
    rows = [run(args.data, "cantemist", "test"), run(args.data, "ncbi", "test")]
    for r in rows:
        print(json.dumps(r))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
