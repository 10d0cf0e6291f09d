"""Per-label tables of a metrics report, as ``evaluate`` and ``score`` print them.

The JSON holds every number; the printed summary must not hide a label that scores zero, so
each label gets a row: gold-mention Recall@1/@5 (``per_label``) and, end to end, the NER's and
the linker's P/R/F1 beside NER + TF-IDF (``per_label_end_to_end``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping


def _pct(value: Any) -> str:
    return f"{100 * value:5.1f}" if isinstance(value, (int, float)) else "    -"


def _table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header)] + [line(r) for r in rows])


def gold_mention_table(per_label: Mapping[str, Mapping[str, Any]]) -> str:
    """Recall@1 / @5 (percent) and mention counts, one row per label."""
    rows = [[label, str(s.get("n_mentions", "-")), _pct(s.get("recall@1")),
             _pct(s.get("recall@5"))] for label, s in sorted(per_label.items())]
    return _table(["label", "mentions", "R@1", "R@5"], rows)


def end_to_end_table(per_label: Mapping[str, Mapping[str, Any]]) -> str:
    """Strict NER and linking P/R/F1 (percent) per label, beside NER + TF-IDF (+ aliases)."""
    extra = [k for k in ("baseline_tfidf_linking_f", "baseline_tfidf_aliases_linking_f")
             if any(k in s for s in per_label.values())]
    header = ["label", "gold", "predicted", "NER P", "NER R", "NER F", "link P", "link R",
              "link F"] + [{"baseline_tfidf_linking_f": "TF-IDF F",
                            "baseline_tfidf_aliases_linking_f": "+aliases F"}[k] for k in extra]
    rows = []
    for label, s in sorted(per_label.items()):
        rows.append([label, str(s.get("n_gold", 0)), str(s.get("n_predicted", 0))]
                    + [_pct(s.get(k)) for k in ("ner_p", "ner_r", "ner_f", "linking_p",
                                                "linking_r", "linking_f")]
                    + [_pct(s.get(k)) for k in extra])
    return _table(header, rows)


def calibration_tables(report: Mapping[str, Any]) -> str:
    """ECE overall and per path, then precision and coverage by threshold (percent), of an
    ``evaluate`` report's ``calibration`` block."""
    what = "probability" if report.get("probability") == "probability" else "raw score (no calibrator)"
    def floor(s: Mapping[str, Any]) -> str:
        f = s.get("ece_noise_floor")
        return f"{f['mean']:.3f} / {f['p95']:.3f}" if f else ""

    rows = [["all", str(report.get("n_mentions", 0)), f"{report.get('ece', 0.0):.3f}",
             floor(report), "", ""]]
    for path, s in sorted((report.get("per_path") or {}).items()):
        rows.append([path, str(s.get("n_mentions", 0)), f"{s.get('ece', 0.0):.3f}", floor(s),
                     _pct(s.get("accuracy")), _pct(s.get("mean_probability"))])
    ece = _table(["path", "mentions", "ECE", "ECE if calibrated: mean / p95", "accuracy",
                  "mean p"], rows)
    points = [[f"{100 * r['coverage_target']:.0f}%", f"{r['threshold']:.3f}",
               _pct(r["coverage"]), _pct(r["precision"])]
              for r in report.get("precision_coverage") or []]
    op = report.get("operating_point")
    if op:
        points.append(["NIL threshold", f"{op['threshold']:.3f}", _pct(op["coverage"]),
                       _pct(op["precision"])])
    table = _table(["coverage at least", "threshold", "coverage", "precision"], points) \
        if points else ""
    return (f"Calibration of the top candidate's {what} ({report.get('bins', 10)} bins):\n"
            f"{ece}" + (f"\n\nPrecision / coverage:\n{table}" if table else ""))


def label_tables(metrics: Mapping[str, Any]) -> str:
    """Every per-label table ``metrics`` has, titled, or an empty string."""
    parts: List[str] = []
    if isinstance(metrics.get("per_label"), dict) and metrics["per_label"]:
        parts.append("Gold mentions, per label:\n" + gold_mention_table(metrics["per_label"]))
    e2e: Dict[str, Any] = metrics.get("per_label_end_to_end") or {}
    if e2e:
        parts.append("End to end (strict spans), per label:\n" + end_to_end_table(e2e))
    if isinstance(metrics.get("calibration"), dict):
        parts.append(calibration_tables(metrics["calibration"]))
    return "\n\n".join(parts)


__all__ = ["calibration_tables", "end_to_end_table", "gold_mention_table", "label_tables"]
