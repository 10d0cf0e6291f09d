"""`score` against the reference's own evaluation on the published SynCABEL SPACCC predictions.

The reference evaluation (Aremaki/SynCABEL, later LongBEL: ``error_analysis.load_predictions`` +
``compute_metrics``), re-implemented here from reading it, independently of our metrics code:
1. read the inference TSV; keep one row per (filename, label, start_span, end_span);
2. drop rows whose gold code contains NO_CODE;
3. normalise gold and predicted codes: split on '+', strip, sort, join with '+';
4. Recall@1 = rows whose normalised gold equals the normalised prediction / rows
   (an empty prediction is a miss).

Our number comes from ``python -m spacy_syncabel score GOLD PREDICTIONS --kb KB`` (the same
function, called in-process), with the gold read from the same TSV as a marked-sentence corpus.

    python benchmarks/bench_score_reference.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

csv.field_size_limit(2**31 - 1)


def reference_recall(path: Path) -> dict:
    """The reference's strict recall on its own inference TSV (see the module docstring)."""
    def norm(code: str) -> str:
        return "+".join(sorted(part.strip() for part in code.split("+")))

    seen = set()
    total = correct = dropped_no_code = dropped_duplicates = 0
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["filename"], row["label"], row["start_span"], row["end_span"])
            if key in seen:
                dropped_duplicates += 1
                continue
            seen.add(key)
            if "NO_CODE" in row["code"]:
                dropped_no_code += 1
                continue
            total += 1
            pred = row.get("Predicted_code") or ""
            correct += bool(pred) and norm(row["code"]) == norm(pred)
    return {"recall@1": correct / total, "n_mentions": total, "dropped_no_code": dropped_no_code,
            "dropped_duplicates": dropped_duplicates}


def main() -> None:
    from spacy_syncabel.evaluation.scoring_file import score_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "score_reference_spaccc.json")
    args = parser.parse_args()
    spaccc = args.data / "spaccc"
    kb = spaccc / "kb_snomed_es_lite.tsv"
    rows = []
    for name in ("test_half.tsv", "test_half_without_synth.tsv"):
        path = spaccc / name
        ref = reference_recall(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = score_files(path, path, kb=kb)
            ours_no_kb = score_files(path, path)
        rows.append({
            "file": name,
            "reference_recall@1": ref["recall@1"],
            "reference_n_mentions": ref["n_mentions"],
            "reference_dropped_no_code": ref["dropped_no_code"],
            "score_recall@1": ours["recall@1"],
            "score_recall@1_lenient": ours["recall@1_lenient"],
            "score_n_mentions": ours["n_mentions"],
            "score_n_excluded": ours["n_excluded"],
            "score_excluded": ours["excluded"],
            "score_without_kb_recall@1": ours_no_kb["recall@1"],
            "score_without_kb_n_mentions": ours_no_kb["n_mentions"],
            "difference_points": 100 * (ours["recall@1"] - ref["recall@1"]),
        })
        print(f"{name}: reference R@1 {100 * ref['recall@1']:.2f} on {ref['n_mentions']}; "
              f"score R@1 {100 * ours['recall@1']:.2f} on {ours['n_mentions']} "
              f"({ours['n_excluded']} excluded), without --kb {100 * ours_no_kb['recall@1']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"kb": str(kb.name), "rows": rows}, indent=2), encoding="utf-8")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
