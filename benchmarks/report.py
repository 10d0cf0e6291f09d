"""Render the measured results (benchmarks/results/*.json) as Markdown.

    python benchmarks/report.py          # writes docs/results.md and the README's results table
    python benchmarks/report.py --check  # exits 1 when either is not what the JSON files give

docs/results.md is generated: edit the JSON files or this script, never the page. The README
holds one table (the current full runs), between the CURRENT-RESULTS markers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_MD = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- CURRENT-RESULTS:BEGIN -->", "<!-- CURRENT-RESULTS:END -->"

# the latest full `spacy project run all` of each dataset: the README's one table
CURRENT = ["project_all_spaccc_lm-ranked.json", "project_all_cantemist_lm-ranked.json",
           "project_all_ncbi_12min.json", "project_all_quaero_8min.json"]
# (gold-mention split, end-to-end split) of each dataset as the project scores them
SPLITS = {"spaccc": ("test_half", "dev notes"), "cantemist": ("dev1", "dev2"),
          "ncbi": ("test", "dev"), "quaero": ("dev", "held-out train docs")}

Row = Sequence[Any]


def _load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text(encoding="utf8"))


def _files(pattern: str) -> List[Path]:
    return sorted(RESULTS.glob(pattern))


def pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def num(x: Optional[float], digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def f1(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.3f}"


def table(header: Sequence[str], rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def src(path: Path | str) -> str:
    return f"`{Path(path).name}`"


# ---------------------------------------------------------------------------------- sections
def current_table() -> str:
    rows = []
    for name in CURRENT:
        r = _load(name)
        g, e = r["gold_mentions"], r["end_to_end"]
        gold_split, e2e_split = SPLITS[r["dataset"]]
        rows.append([
            r["dataset"], f"{gold_split} ({g['n_mentions']:,})",
            f"**{pct(g['recall@1'])}** / {pct(g['recall@5'])}",
            f"{pct(g['baseline_tfidf_recall@1'])} / {pct(g['baseline_tfidf_recall@5'])}",
            f"{pct(g['baseline_tfidf_aliases_recall@1'])} / "
            f"{pct(g['baseline_tfidf_aliases_recall@5'])}",
            num(g["mentions_per_second"]), num(g["peak_rss_mb"], 0), e2e_split,
            f"{f1(e['ner_f'])} / **{f1(e['linking_f'])}**",
            f"{f1(e['baseline_tfidf_linking_f'])} / {f1(e['baseline_tfidf_aliases_linking_f'])}",
            src(name)])
    return table(["dataset", "split (mentions)", "linker R@1 / R@5", "TF-IDF R@1 / R@5",
                  "TF-IDF + aliases R@1 / R@5", "mentions/s", "peak RSS MB (evaluate)",
                  "end to end on", "NER F1 / linking F1", "NER + TF-IDF F1 / + aliases",
                  "source"], rows)


def project_runs_table() -> str:
    rows = []
    for path in _files("project_all_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        g = r["gold_mentions"]
        rows.append([r["dataset"], f"`{r['command'].replace('python -m spacy project run ', '')}`",
                     r.get("wall", "–"), num(r.get("peak_rss_mb"), 0), r.get("load_average", "–"),
                     f"{pct(g['recall@1'])} / {pct(g['recall@5'])}", src(path)])
    return table(["dataset", "command (`spacy project run ...`)", "wall", "largest process MB",
                  "machine load", "R@1 / R@5", "source"], rows)


def linking_table() -> str:
    rows = []
    for path in _files("linking_*.json"):
        m = json.loads(path.read_text(encoding="utf8"))
        seen, unseen = m.get("seen", {}), m.get("unseen", {})
        rows.append([m.get("dataset", "?"), m.get("pipeline", path.stem), pct(m["recall@1"]),
                     pct(m["recall@5"]), f"{pct(seen.get('recall@1'))} / {pct(unseen.get('recall@1'))}",
                     f"{pct(m.get('baseline_tfidf_recall@1'))} / {pct(m.get('baseline_tfidf_recall@5'))}",
                     f"{pct(m.get('baseline_tfidf_aliases_recall@1'))} / "
                     f"{pct(m.get('baseline_tfidf_aliases_recall@5'))}",
                     num(m["mentions_per_second"]), num(m["peak_rss_mb"], 0), src(path)])
    return table(["dataset", "pipeline (settings)", "R@1", "R@5", "R@1 seen / unseen codes",
                  "TF-IDF R@1 / R@5", "TF-IDF + aliases R@1 / R@5", "mentions/s", "peak RSS MB",
                  "source"], rows)


def context_table() -> str:
    rows = []
    for path in _files("context_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        t = r["test_half"]
        rows.append([r["setting"], pct(t["recall@1"]), pct(t["recall@5"]),
                     f"{pct(t['seen']['recall@1'])} / {pct(t['unseen']['recall@1'])}",
                     pct(t.get("composite", {}).get("recall@1")), num(t["mentions_per_second"]),
                     src(path)])
    return table(["setting", "R@1", "R@5", "seen / unseen", "composite R@1", "mentions/s",
                  "source"], rows)


def cascade_table() -> str:
    rows = []
    for path in _files("cascade_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        off, on = r["off"], r["on"]
        skipped = on.get("skipped", r.get("skipped", r.get("profile_on", {}).get("skipped")))
        speedup = on.get("speedup", r.get("speedup"))
        rows.append([r["name"], f"{r['n_mentions']:,}", r["cascade_margin"],
                     f"{pct(off['recall@1'])} / {pct(off['recall@5'])}",
                     f"{pct(on['recall@1'])} / {pct(on['recall@5'])}", pct(skipped),
                     f"{num(off['mentions_per_second'])} → {num(on['mentions_per_second'])}",
                     f"{num(speedup, 2)}×", src(path)])
    return table(["linked", "mentions", "margin", "LM on every mention R@1 / R@5",
                  "cascade R@1 / R@5", "% skipping the LM", "mentions/s", "speed-up", "source"],
                 rows)


def lm_path_calibration_table() -> str:
    """The LM path fitted on the dev mentions as linked against on the LM-ranked rows."""
    rows = []
    for path in _files("calibration_lm_path_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        for key in ("saved_rows", "lm_ranked"):
            b = r[key]
            f = b["noise_floor"]
            by = b["test_ece_by_path"]
            rows.append([r["name"], key, b["lm_fit_rows"], f"{b['test_ece_all']:.3f}",
                         f"{b['ece']:.3f} ({b['n_mentions']})",
                         *[f"{by[p]:.3f}" if p in by else "-" for p in ("retriever", "dictionary")],
                         f"{f['mean']:.3f} / {f['p95']:.3f} / {pct(f['share_at_most_0.05'])}",
                         f"{pct(b['test_precision'])} / {pct(b['test_coverage'])}", src(path)])
    return table(["corpus", "LM path fitted on", "LM rows", "test ECE all", "lm (n)",
                  "retriever", "dictionary", "lm if calibrated: mean / p95 / % <= 0.05",
                  "P / coverage at dev thr. for 0.9", "source"], rows)


def calibration_table() -> str:
    """Fitted on dev, measured on test: the former rule (plain dev) and the current one
    (dev-masked view), ECE per path and precision / coverage at each target's dev threshold."""
    rows = []
    for path in _files("calibration_*.json"):
        if path.name.startswith(("calibration_splits_", "calibration_lm_path_")):
            continue
        r = json.loads(path.read_text(encoding="utf8"))
        for when in ("before", "after"):
            block = r[when]
            test = block["test"]
            cells = [f"{test[p]['ece']:.3f} ({test[p]['n_mentions']:,})" if p in test else "-"
                     for p in ("lm", "dictionary", "retriever")]
            targets = [block["targets"].get(t, {}).get("test", {}) for t in ("0.8", "0.9", "0.95")]
            rows.append([r["name"], when, block["rule"], f"{test['all']['ece']:.3f}", *cells,
                         *[f"{pct(t.get('precision'))} / {pct(t.get('coverage'))}"
                           for t in targets], src(path)])
    return table(["test", "", "rule", "ECE all", "ECE lm (mentions)", "ECE dictionary",
                  "ECE retriever", "P / coverage at dev thr. for 0.8", "for 0.9", "for 0.95",
                  "source"], rows)


def candidates_table() -> str:
    rows = []
    for path in _files("candidates_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        for n, m in r["by_candidates"].items():
            rows.append([r["name"], "on" if r["cascade"] else "off", n,
                         f"{pct(m['recall@1'])} / {pct(m['recall@5'])}",
                         num(m["mentions_per_second"]), src(path)])
    return table(["corpus", "cascade", "candidates", "R@1 / R@5", "mentions/s", "source"], rows)


def composite_table() -> str:
    r = _load("composite_rerank_spaccc.json")
    rows = []
    for view, m in r["test"].items():
        rows.append([view, m["composite_pairs"], num(m["prior_weight"]), pct(m["recall@1"]),
                     pct(m["recall@5"]), pct(m["composite"]["recall@1"]),
                     pct(m["composite"]["recall@5"]), m["composite_top1"],
                     num(m["mentions_per_second"]), src("composite_rerank_spaccc.json")])
    return table(["composite candidates", "composite_pairs", "weight", "R@1", "R@5",
                  "composite R@1", "composite R@5", "composite answers", "mentions/s",
                  "source"], rows)


def composite_gate_table() -> str:
    name = "composite_gate_spaccc.json"
    if not (RESULTS / name).exists():
        return "(no results yet)"
    r = _load(name)

    def pct2(x: float) -> str:  # the gates differ by a few mentions in 4,408
        return f"{100 * x:.2f}"

    def gate(g: Any) -> str:
        if g in ("off", None):
            return "composites off" if g == "off" else "no gate (as saved)"
        return f"margin {g:+.1f}"

    rows = []
    test = {row["gate"]: row for row in r["splits"]["test"]["grid"]}
    order = {None: float("-inf"), "off": float("inf")}
    for d in sorted(r["splits"]["dev"]["grid"], key=lambda x: order.get(x["gate"], x["gate"])):
        t = test[d["gate"]]
        mark = " (chosen on dev)" if d["gate"] == r["chosen_on_dev"] and d["gate"] != "off" \
            else ""
        rows.append([gate(d["gate"]) + mark, f"{pct2(d['recall@1'])} / {pct2(t['recall@1'])}",
                     f"{pct(d['composite_recall@1'])} / {pct(t['composite_recall@1'])}",
                     f"{d['composite_right']}/{d['composite_answers']} / "
                     f"{t['composite_right']}/{t['composite_answers']}",
                     f"{d['composite_answers_to_single_golds']} / "
                     f"{t['composite_answers_to_single_golds']}", src(name)])
    out = table(["gate", "R@1 dev / test", "composite R@1 dev / test",
                 "composite answers right/all, dev / test", "composite answers to single golds",
                 "source"], rows)
    ev = r.get("evaluate_test")
    if ev:
        out += "\n\n" + table(
            ["`evaluate`, test_half", "R@1", "composite R@1", "composite precision",
             "composite answers", "source"],
            [[k, pct2(m["recall@1"]), pct(m["composite_recall@1"]),
              pct(m["composite_precision"]), m["composite_answers"], src(name)]
             for k, m in ev.items()])
    return out


def composite_expand_table() -> str:
    name = "composite_expand_spaccc.json"
    if not (RESULTS / name).exists():
        return "(no results yet)"
    r = _load(name)
    rows = []
    for split in ("dev", "test"):
        sp = r["splits"][split]
        before, after = sp["candidates_before"], sp["candidates_after"]
        for label in sorted(before, key=lambda k: (k != "all", k)):
            b, a = before[label], after[label]
            rows.append([split, label, b["composite_golds"], f"{b['gold_among']} → {a['gold_among']}",
                         f"{b['gold_first']} → {a['gold_first']}", src(name)])
    out = table(["split", "label", "composite golds", "gold set among the candidates",
                 "gold set first", "source"], rows)
    ev = r["evaluate_test"]
    out += "\n\n" + table(
        ["`evaluate`, test_half", "settings", "R@1", "composite R@1", "right / answers",
         "source"],
        [[k, ", ".join(f"{a}={b}" for a, b in m["settings"].items()) or "-",
          f"{100 * m['recall@1']:.2f}", pct(m["composite_recall@1"]),
          f"{m['composite_right']} / {m['composite_answers']}", src(name)]
         for k, m in ev.items()])
    return out


def composite_learned_gate_table() -> str:
    name = "composite_learned_gate_spaccc.json"
    if not (RESULTS / name).exists():
        return "(no results yet)"
    r = _load(name)
    fit = r["fit"]["stats"]
    rows = [[label, v["coordinated"], v["composite_golds"], v["gold_among_candidates"], src(name)]
            for label, v in sorted(r["fit"]["per_label"].items(),
                                   key=lambda kv: (kv[0] != "all", kv[0]))]
    out = table(["training split (masked view)", "coordinated mentions", "composite golds",
                 "gold set among the candidates", "source"], rows)
    out += (f"\n\nThreshold {r['fit']['threshold']:.3f}: cross-validated, {fit['cv_right']} of "
            f"{fit['cv_passed']} passing mentions right.\n\n")
    out += table(
        ["`evaluate`, test_half", "R@1", "composite R@1", "right / answers", "source"],
        [[k, f"{100 * m['recall@1']:.2f}", pct(m["composite_recall@1"]),
          f"{m['composite_right']} / {m['composite_answers']}", src(name)]
         for k, m in r["evaluate_test"].items()])
    return out


def ner_variants_table() -> str:
    name = "ner_variants_cantemist-dev2.json"
    if not (RESULTS / name).exists():
        return "(no results yet)"
    r = _load(name)
    rows = []
    for variant, v in r["variants"].items():
        for key in sorted(k for k in v if k.startswith("end_to_end")):
            at = key.rsplit("_", 1)[-1] if key != "end_to_end" else "3000"
            best = v.get(f"best_by_{at}") or v.get("best_by_3000", {})
            e = v[key]
            rows.append([variant, f"{best.get('step', '-')}", pct(best.get("f")),
                         f"{pct(e['ner_p'])} / {pct(e['ner_r'])} / {pct(e['ner_f'])}",
                         pct(e["linking_f"]), pct(e["baseline_tfidf_aliases_linking_f"]),
                         src(name)])
    return table(["variant", "model step", "NER dev2 F1 (spacy train)",
                  "end to end NER P / R / F1", "linking F1", "NER + TF-IDF + aliases F1",
                  "source"], rows)


def decoding_table() -> str:
    rows = []
    for path in _files("decoding_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        cpu = f"{r['cpu_speedup']:.2f}×" if "cpu_speedup" in r else "–"
        rows.append([r["model"], r["n_mentions"], r["num_beams"], r["batch_size"],
                     f"{pct(r['top1_agreement'])}%", num(r["ours_mentions_per_second"], 2),
                     num(r["generate_mentions_per_second"], 2), f"{r['speedup']:.2f}×", cpu,
                     src(path)])
    r = _load("beam_search_slot_cache_vs_dynamic_cache.json")
    s = r["seconds"]
    before_after = table(
        ["model", "mentions", "same n-best", "DynamicCache (s)", "slot cache (s)", "speed-up",
         "source"],
        [[r["model"], r["n_mentions"], r["same_n_best"], num(s["dynamic_cache"]),
          num(s["slot_cache"]), f"{r['speedup_slot_cache_over_dynamic_cache']:.2f}×",
          src("beam_search_slot_cache_vs_dynamic_cache.json")]])
    return (table(["model", "mentions", "beams", "batch", "top-1 same as generate",
                   "ours (mentions/s)", "generate (mentions/s)", "speed-up (wall)",
                   "speed-up (CPU)", "source"], rows)
            + "\n\nThe KV cache of the search, before and after the slot cache:\n\n" + before_after)


def scoring_table() -> str:
    rows = []
    for path in _files("scoring_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        for c in r["by_candidates"]:
            rows.append([c["candidates"], r["n_mentions"],
                         num(c["one_row_per_name_mentions_per_second"], 3),
                         num(c["prefix_shared_mentions_per_second"], 3), f"{c['speedup']:.2f}×",
                         f"{c['name_positions']:,} → {c['shared_positions']:,}",
                         f"{c['max_abs_logprob_difference']:.1e}", src(path)])
    return table(["candidates", "mentions", "one row per name (mentions/s)",
                  "prefix-shared (mentions/s)", "speed-up", "token positions",
                  "max score difference", "source"], rows)


def dpo_table() -> str:
    rows = []
    for path in _files("dpo_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        ds = path.stem.split("_", 1)[1]
        b = r["baseline"]
        rows.append([ds, "SFT", "", "", "", "", pct(b["dev_recall@1"]), pct(b["dev_recall@5"]),
                     src(path)])
        for x in r["rounds"]:
            rows.append([ds, f"round {x['round']}", f"{x['pairs']:,}", num(x["mining_seconds"], 0),
                         num(x["train_seconds"], 0),
                         f"{pct(x['pair_accuracy_before'])} → {pct(x['pair_accuracy_after'])}",
                         pct(x["dev_recall@1"]), pct(x["dev_recall@5"]), src(path)])
    return table(["dataset", "stage", "pairs", "mining (s)", "DPO training (s)",
                  "pair accuracy before → after", "dev R@1", "dev R@5", "source"], rows)


def end_to_end_table() -> str:
    rows = []
    for path in _files("end_to_end_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        if "runs" not in r:
            continue
        for name, m in r["runs"].items():
            rows.append([path.stem.replace("end_to_end_", ""), name,
                         f"{f1(m['ner_p'])} / {f1(m['ner_r'])} / {f1(m['ner_f'])}",
                         f"{f1(m['linking_p'])} / {f1(m['linking_r'])} / {f1(m['linking_f'])}",
                         f1(m["baseline_tfidf_linking_f"]),
                         f1(m["baseline_tfidf_aliases_linking_f"]), src(path)])
    return table(["run", "sentences", "NER P / R / F1", "linking P / R / F1",
                  "NER + TF-IDF F1", "NER + TF-IDF + aliases F1", "source"], rows)


def link_table() -> str:
    rows = []
    for path in _files("link_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        for name, m in r["runs"].items():
            rows.append([name, m["linked"], num(m["notes_per_second"], 2),
                         num(m["notes_per_second_end_to_end"], 2), num(m["peak_tree_rss_mb"], 0),
                         src(path)])
    return table(["run", "notes", "notes/s linking", "notes/s end to end",
                  "peak RSS MB (process tree)", "source"], rows)


def notes_table() -> str:
    rows = []
    for path in _files("notes_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        st = r["stage_seconds"]
        ner = sum(v for k, v in st.items() if k.startswith("ner"))
        rows.append([path.stem.replace("notes_", ""), r["n_notes"], r["n_entities"],
                     num(r["notes_per_second"], 1), num(r["mentions_per_second"]),
                     num(r["peak_rss_mb"], 0),
                     f"{num(st.get('syncabel_sentencizer'), 2)} / {num(ner, 2)} / "
                     f"{num(st.get('linker_retrieval'), 2)} / {num(st.get('linker_lm'), 2)} / "
                     f"{num(st.get('linker_other'), 2)}", src(path)])
    return table(["run", "notes", "entities", "notes/s", "mentions/s", "peak RSS MB",
                  "seconds: segmenter / NER / retrieval / LM / linker other", "source"], rows)


def synth_http_table() -> str:
    r = _load("synth_http.json")
    med = r["llama_cpp"]["median_concepts_per_minute"]
    fixed = {x["concurrency"]: x["concepts_per_minute"] for x in r["fixed_latency"]["runs"]}
    return table(["server", "concurrency 1 (concepts/min)", "concurrency 4 (concepts/min)",
                  "speed-up", "source"],
                 [["llama.cpp (one request at a time), median", num(med["1"]), num(med["4"]),
                   f"{r['llama_cpp']['speedup_4_vs_1']:.2f}×", src("synth_http.json")],
                  [f"stand-in server, {r['fixed_latency']['delay_s']} s a request",
                   num(fixed[1]), num(fixed[4]), f"{r['fixed_latency']['speedup_4_vs_1']:.2f}×",
                   src("synth_http.json")]])


def trie_table() -> str:
    r = _load("trie_scale.json")
    rows = []
    for size in ("100k", "1M"):
        m = r[size]
        rows.append([f"{m['build.n_names']:,}", m["build.n_groups"], f"{m['build.n_nodes']:,}",
                     f"{num(m['build.build_seconds'])} / {num(m['build.build_cpu_seconds'])}",
                     num(m["build.tries_array_mb"]), num(m["load.kb_resident_mb"]),
                     f"{num(m['load.kb_load_seconds'])} / "
                     f"{num(m['load.tries_load_seconds_mmap'], 2)}",
                     num(m["build.tries_disk_mb"]), src("trie_scale.json")])
    return table(["names", "groups", "trie nodes", "build wall / CPU (s)", "tries MB",
                  "KB resident MB", "load KB / tries (s)", "tries on disk MB", "source"], rows)


def parity_table() -> str:
    rows = []
    for path in _files("parity_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        rows.append([r["name"], f"{r['mentions']:,}", f"{r['same_top1']:,}",
                     f"{r['same_nbest']:,}",
                     f"{num(100 * r['old']['recall@1'], 2)} → {num(100 * r['new']['recall@1'], 2)}",
                     f"{num(100 * r['old']['recall@5'], 2)} → {num(100 * r['new']['recall@5'], 2)}",
                     src(path)])
    return table(["dataset", "mentions", "same top-1", "same n-best", "R@1 before → after",
                  "R@5 before → after", "source"], rows)


def score_reference_table() -> str:
    r = _load("score_reference_spaccc.json")
    rows = [[x["file"], f"{num(100 * x['reference_recall@1'], 2)} ({x['reference_n_mentions']:,})",
             f"{num(100 * x['score_recall@1'], 2)} ({x['score_n_mentions']:,})",
             num(100 * x["score_recall@1_lenient"], 2), src("score_reference_spaccc.json")]
            for x in r["rows"]]
    return table(["published predictions", "reference rule R@1 (mentions)",
                  "`score` R@1 (mentions)", "`score` lenient R@1", "source"], rows)


def sentences_table() -> str:
    r = _load("sentences_spaccc.json")["segmenter"]
    return table(["documents", "sentences kept whole", "boundaries found", "source"],
                 [[r["documents"], f"{r['sentences_kept_whole']:,} of {r['sentences']:,}",
                   f"{r['boundaries_found']:,} of {r['boundaries']:,}",
                   src("sentences_spaccc.json")]])


def package_table() -> str:
    rows = []
    for path in _files("package_*.json"):
        r = json.loads(path.read_text(encoding="utf8"))
        inst = r["installed"]
        rows.append([f"`{r['package']}`", num(r["pipeline_bytes"] / 1e6),
                     num(r["wheel_bytes"] / 1e6),
                     f"{num(r['package_step_seconds'])} ({num(r.get('package_step_cpu_seconds'))})",
                     num(r["install_seconds"]),
                     f"{num(inst['load_seconds'])} / {num(r['folder_load_seconds'])}",
                     len(inst["ents"]), "yes" if r["same_entities_as_folder"] else "no",
                     num(r["loadavg_1min"]), src(path)])
    return table(["package", "pipeline MB", "wheel MB", "package step s (CPU s)", "pip install s",
                  "load s: installed / folder", "entities in the note",
                  "same as the folder", "load average", "source"], rows)


SECTIONS: List[tuple] = [
    ("Current results: `spacy project run all`", current_table,
     "The latest full run of the project on each dataset, scored as `all` scores it "
     "(`evaluate`, then `evaluate-pipeline`). Gold-mention R@k by the SynCABEL paper's exact rule; end to "
     "end: strict NER and linking F1 on full documents. CANTEMIST, NCBI-disease and QUAERO ran "
     "with cut budgets (12, 12 and 8 training minutes) on a shared machine."),
    ("Every full run", project_runs_table, ""),
    ("Gold mentions, earlier pipelines", linking_table,
     "`python benchmarks/bench_linking.py PIPELINE CORPUS --settings ...`: the pipeline of a "
     "given training budget and recipe, linked with its saved settings (`saved`), in the whole "
     "trie (`full-trie`) or in candidates with a fixed prior (`candN-priorW`)."),
    ("Context: 64 characters against the whole sentence (SPACCC test_half)", context_table, ""),
    ("The cascade", cascade_table, "`benchmarks/bench_cascade.py`."),
    ("The LM path's probability: dev mentions as linked against LM-ranked rows",
     lm_path_calibration_table,
     "`benchmarks/bench_calibration_lm_path.py`: the main jobs' linkers, test = SPACCC "
     "test_half / CANTEMIST dev1; the noise floor is the ECE of labels drawn from the "
     "probabilities themselves at the LM path's test size."),
    ("Calibrated probability and the NIL threshold", calibration_table,
     "`benchmarks/bench_calibration.py`: fitted on dev (Platt, one map per path), measured "
     "on the gold-mention test split, by the former rule (plain dev) and the current one "
     "(the dev-masked view); ECE (10 bins) per path; test precision / coverage at the NIL "
     "threshold chosen on dev for each target precision."),
    ("Candidate counts (SPACCC dev)", candidates_table, "`benchmarks/bench_candidates.py`."),
    ("Composite candidates in `rerank` (SPACCC test_half)", composite_table,
     "`benchmarks/bench_composite_rerank.py`."),
    ("The composite gate (SPACCC, rerank)", composite_gate_table,
     "`benchmarks/bench_composite_gate.py`: the trained linker's gold-mention candidates "
     "scored once, every `composite_margin` ranked on them (dev 979 mentions, 62 composite "
     "golds; test_half 4,408, 165), the cascade as saved; then `evaluate` on test_half."),
    ("Coordination-ellipsis composites (SPACCC, rerank)", composite_expand_table,
     "`benchmarks/bench_composite_expand.py`: candidates before → after `composite_expand` "
     "(gold mentions), then `evaluate` on test_half with composites off, as saved, and the "
     "split gate and margin chosen on dev."),
    ("The learned composite gate (SPACCC, rerank)", composite_learned_gate_table,
     "`benchmarks/bench_composite_learned_gate.py`: fitted on the training split's coordinated "
     "mentions (5 folds, each under a KB masked of its own surfaces), then `evaluate` on "
     "test_half with composites off, the split gate as saved, and the learned gate with the "
     "LM's margin chosen on dev."),
    ("CANTEMIST entity recognizer variants (dev2, end to end)", ner_variants_table,
     "`configs/ner.cfg` trained by `spacy train` one variant at a time on 2 shared cores; end "
     "to end: the assembled pipeline (the project run's linker, dictionary proposer, NIL "
     "threshold) on dev2, strict spans."),
    ("Constrained beam search against `generate(prefix_allowed_tokens_fn=...)`", decoding_table,
     "`benchmarks/bench_decoding.py`: the first 300 SPACCC test_half mentions, both in one "
     "process chunk by chunk in turn, so read the ratio, not the absolute speed."),
    ("Candidate scoring: prefix-shared against one row per name", scoring_table,
     "`benchmarks/bench_scoring.py`, SmolLM2-135M, SPACCC dev mentions."),
    ("ANGEL: DPO rounds (generative decoding, 300 dev mentions)", dpo_table, ""),
    ("From raw notes: NER + linker, SPACCC dev (5-minute linker)", end_to_end_table,
     "`benchmarks/bench_end_to_end.py`."),
    ("Linking raw notes: `link`", link_table,
     "`benchmarks/bench_link.py`: SPACCC training texts as raw notes, an untrained linker of "
     "the project's size, on a loaded 2-core machine."),
    ("Raw notes through the trained pipeline, by stage", notes_table,
     "`benchmarks/bench_notes.py`: segmenter + one NER per layer + linker, one process, 2 "
     "threads, `nlp.pipe` at `link`'s batch size; the stages timed one after the other."),
    ("Synthesis against a served LLM", synth_http_table, "`benchmarks/bench_synth_http.py`."),
    ("Tries and name index", trie_table,
     "`benchmarks/bench_trie.py` over `benchmarks/build_big_kb.py`'s KB, each size in a fresh "
     "process."),
    ("Refactors link as before", parity_table,
     "`benchmarks/dump_predictions.py` with the code before and after, then "
     "`benchmarks/compare_predictions.py` (`layers-*`: the layering, `*-tiny` pipelines from "
     "`benchmarks/build_tiny_pipeline.py`)."),
    ("The metric against the reference implementation", score_reference_table,
     "`benchmarks/bench_score_reference.py` on the published SPACCC predictions."),
    ("Sentences: `syncabel_sentencizer` against the published ones", sentences_table,
     "`benchmarks/bench_sentences.py`."),
    ("The pipeline as a pip package", package_table,
     "`benchmarks/bench_package.py`: the project's `package` step (spaCy's package folder and "
     "its wheel), the wheel installed offline into a fresh virtual environment, and "
     "`spacy.load(package)` there linking the first dev note, against `spacy.load(folder)`."),
]


def render_results() -> str:
    out = ["# Results", "",
           "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`: do not "
           "edit by hand (`python benchmarks/report.py --check` fails when this page is stale).",
           "",
           "Measured on 2 CPU cores, no GPU. The SPACCC and QUAERO knowledge bases are the "
           "project's closed *lite* KBs (SPACCC: 9,237 codes, 14,750 names, holding every test "
           "gold code), not the full SNOMED CT / UMLS of the published results, so the numbers "
           "are not comparable with the SynCABEL paper's (SPACCC 67.0, 68.0 on test_half). "
           "What each number taught is in [experiments.md](experiments.md).", ""]
    shown = set()
    for title, render, intro in SECTIONS:
        body = render()
        out += [f"## {title}", ""] + ([intro, ""] if intro else []) + [body, ""]
        shown |= {p.name for p in RESULTS.glob("*.json") if f"`{p.name}`" in body}
    others = [p for p in sorted(RESULTS.glob("*.json")) if p.name not in shown]
    if others:
        out += ["## Other result files", ""]
        out += [f"- `{p.name}`: {_summary(p)}" for p in others]
        out.append("")
    return "\n".join(out)


def _summary(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf8"))
    if isinstance(data, list):
        return f"{len(data)} rows"
    scalars = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
               for k, v in data.items() if isinstance(v, (int, float, str)) and len(str(v)) < 60]
    return "; ".join(scalars[:8])


def render_readme(text: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + "\n" + current_table() + "\n" + END + rest.split(END, 1)[1]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/results.md or the README table is stale")
    args = parser.parse_args(argv)
    targets: Dict[Path, Callable[[str], str]] = {
        RESULTS_MD: lambda _old: render_results(), README: render_readme}
    stale = []
    for path, render in targets.items():
        old = path.read_text(encoding="utf8") if path.exists() else ""
        new = render(old)
        if new != old:
            stale.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(new, encoding="utf8")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) if ROOT in p.parents else str(p)
                          for p in stale)
        print(f"stale: {names}; run `python benchmarks/report.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
