"""Compare two ``render`` outputs of the same corpus (e.g. two versions of the package).

    python benchmarks/compare_renders.py OLD.jsonl NEW.jsonl --name spaccc

Writes benchmarks/results/render_parity_<name>.json: records on each side, and how many have
the same prompt, the same target and are the same record, matched by (doc_id, start, end,
label) in file order.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"


def _load(path: str):
    with open(path, encoding="utf8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    old, new = _load(args.old), _load(args.new)
    key = lambda r: (r["doc_id"], r["start"], r["end"], r["label"])  # noqa: E731
    pairs = list(zip(old, new))
    result = {"name": args.name, "old_records": len(old), "new_records": len(new),
              "same_mention": sum(key(a) == key(b) for a, b in pairs),
              "same_prompt": sum(key(a) == key(b) and a["prompt"] == b["prompt"]
                                 for a, b in pairs),
              "same_target": sum(key(a) == key(b) and a["target"] == b["target"]
                                 for a, b in pairs),
              "same_record": sum(a == b for a, b in pairs)}
    OUT.mkdir(exist_ok=True)
    (OUT / f"render_parity_{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
