"""Record a finished `spacy project run all` as a results file for the README's table.

    python benchmarks/record_project_run.py PROJECT_DIR --dataset spaccc --name spaccc_ner-layers \
        --wall 41:10 --peak-rss-mb 3200 --load-average "about 1"

Reads ``PROJECT_DIR/metrics/<dataset>.json`` (gold mentions), ``<dataset>_pipeline.json`` (end
to end), ``training/<dataset>/model-best/calibration.json`` and ``training.json``, and writes
``benchmarks/results/project_all_<name>.json`` in the shape ``report.py`` reads. Wall time and
peak memory are the caller's (``/usr/bin/time -v`` around the command).
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
GOLD_KEYS = ("n_mentions", "recall@1", "recall@5", "recall@1_in_kb", "n_mentions_in_kb",
             "mentions_per_second", "peak_rss_mb", "baseline_tfidf_recall@1",
             "baseline_tfidf_recall@5", "baseline_tfidf_aliases_recall@1",
             "baseline_tfidf_aliases_recall@5")
E2E_KEYS = ("ner_p", "ner_r", "ner_f", "linking_p", "linking_r", "linking_f",
            "baseline_tfidf_linking_f", "baseline_tfidf_aliases_linking_f")


def _read(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def record(project: Path, dataset: str) -> Dict[str, Any]:
    gold = _read(project / "metrics" / f"{dataset}.json")
    e2e = _read(project / "metrics" / f"{dataset}_pipeline.json")
    best = project / "training" / dataset / "model-best"
    calibration = _read(best / "calibration.json") if (best / "calibration.json").is_file() else {}
    training = _read(best / "training.json") if (best / "training.json").is_file() else {}
    per_label = {label: {k: s.get(k) for k in ("n_gold", "n_predicted", "ner_f", "linking_f",
                                               "baseline_tfidf_aliases_linking_f")}
                 for label, s in e2e.get("per_label_end_to_end", {}).items()}
    return {
        "dataset": dataset,
        "linker_steps": training.get("step"),
        "calibration": {"prior_weight": calibration.get("prior_weight"),
                        "dev_mentions": calibration.get("dev_mentions"),
                        "dev_recall@1": calibration.get("recall@1"),
                        "cascade": (calibration.get("cascade") or {}).get("on"),
                        "cascade_skipped": (calibration.get("cascade") or {}).get("skipped")},
        "gold_mentions": {"corpus": gold.get("corpus"), **{k: gold.get(k) for k in GOLD_KEYS},
                          "per_label": gold.get("per_label")},
        "end_to_end": {"corpus": e2e.get("corpus"), **{k: e2e.get(k) for k in E2E_KEYS},
                       "n_docs": e2e.get("end_to_end", {}).get("n_docs"),
                       "n_predicted_unannotated":
                           e2e.get("end_to_end", {}).get("n_predicted_unannotated"),
                       "per_label": per_label},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--dataset", default="spaccc")
    ap.add_argument("--name", required=True)
    ap.add_argument("--wall", required=True, help="wall time of the whole command, m:ss")
    ap.add_argument("--peak-rss-mb", type=float, required=True,
                    help="largest process of the run (time -v's maximum resident set)")
    ap.add_argument("--load-average", default="–")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(args.project), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    result = {"dataset": args.dataset,
              "command": "python -m spacy project run all (defaults)",
              "commit": commit, "wall": args.wall, "peak_rss_mb": args.peak_rss_mb,
              "load_average": args.load_average,
              "source": "metrics/*.json of the run, by benchmarks/record_project_run.py",
              **record(args.project, args.dataset)}
    path = OUT / f"project_all_{args.name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
