"""Compare two prediction files of the same gold mentions (e.g. two versions of the linker).

    python benchmarks/compare_predictions.py GOLD KB OLD.jsonl NEW.jsonl --name spaccc

Writes benchmarks/results/parity_<name>.json: mentions, identical top-1 and identical n-best
counts, and each side's R@1/R@5 by the paper's rule (``score``'s implementation).
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from spacy_syncabel.evaluation.scoring_file import score_files

OUT = Path(__file__).resolve().parent / "results"


def _load(path: str):
    with open(path, encoding="utf8") as f:
        return {(r["doc_id"], r["start"], r["end"]): r["codes"] for r in map(json.loads, f)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("gold")
    ap.add_argument("kb")
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    old, new = _load(args.old), _load(args.new)
    keys = sorted(old)
    result = {"name": args.name, "mentions": len(keys), "missing_in_new": sum(k not in new for k in keys),
              "same_top1": sum(old[k][:1] == new.get(k, [])[:1] for k in keys),
              "same_nbest": sum(old[k] == new.get(k) for k in keys)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for side, path in (("old", args.old), ("new", args.new)):
            m = score_files(Path(args.gold), Path(path), kb=Path(args.kb))
            result[side] = {k: m[k] for k in ("recall@1", "recall@5", "recall@1_lenient",
                                              "n_mentions", "n_excluded")}
    OUT.mkdir(exist_ok=True)
    (OUT / f"parity_{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
