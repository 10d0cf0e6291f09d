"""Render the measured results (benchmarks/results/*.json) as the README's Markdown tables.

    python benchmarks/report.py            # rewrites the block between the RESULTS markers
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"


def _load(name: str):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def linking_table() -> str:
    rows = ["| dataset | pipeline | R@1 | R@5 | R@1 seen / unseen codes | TF-IDF R@1 | TF-IDF R@5 "
            "| TF-IDF + aliases R@1 / R@5 | mentions/s | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("linking_*.json")):
        m = json.loads(path.read_text())
        seen, unseen = m.get("seen", {}), m.get("unseen", {})
        rows.append(
            f"| {m.get('dataset', '?')} | {m.get('pipeline', path.stem)} | {_pct(m['recall@1'])} "
            f"| {_pct(m['recall@5'])} | {_pct(seen.get('recall@1'))} / {_pct(unseen.get('recall@1'))} "
            f"| {_pct(m.get('baseline_tfidf_recall@1'))} | {_pct(m.get('baseline_tfidf_recall@5'))} "
            f"| {_pct(m.get('baseline_tfidf_aliases_recall@1'))} / "
            f"{_pct(m.get('baseline_tfidf_aliases_recall@5'))} "
            f"| {m['mentions_per_second']:.1f} | {m['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


def decoding_table() -> str:
    rows = ["| model | mentions | beams | batch | top-1 same as generate | ours (mentions/s) "
            "| generate (mentions/s) | speed-up (wall) | speed-up (CPU) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("decoding_*.json")):
        r = json.loads(path.read_text())
        cpu = f"{r['cpu_speedup']:.2f}×" if "cpu_speedup" in r else "–"
        rows.append(f"| {r['model']} | {r['n_mentions']} | {r['num_beams']} | {r['batch_size']} "
                    f"| {_pct(r['top1_agreement'])}% | {r['ours_mentions_per_second']:.2f} "
                    f"| {r['generate_mentions_per_second']:.2f} | {r['speedup']:.2f}× | {cpu} |")
    return "\n".join(rows)


def trie_table() -> str:
    r = _load("trie_build.json")
    if r is None:
        return ""
    return ("| names | groups | trie nodes (all groups) | build (s) | size (MB, all tries) |\n"
            "|---|---|---|---|---|\n"
            f"| {r['n_names']:,} | {r['n_groups']} | {r['n_nodes_all_groups']:,} "
            f"| {r['build_seconds']:.1f} | {r['megabytes']:.1f} |")


def render() -> str:
    parts = [BEGIN, "### Linking (gold mentions, full test sets)", linking_table(),
             "", "### Constrained beam search against `generate(prefix_allowed_tokens_fn=...)`",
             decoding_table(), "", "### Token tries", trie_table(), END]
    return "\n".join(parts)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = render()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.replace("RESULTS_TABLE", block)
    readme.write_text(text)


if __name__ == "__main__":
    main()
