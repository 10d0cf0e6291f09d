"""Benchmark: how many real mention variants the synthesis filters accept, with and without the
acronym/abbreviation rule (``FilterConfig.accept_abbreviations``), on SPACCC concepts.

    python benchmarks/bench_abbreviations.py ../shared/data/spaccc --concepts 1000

The "generated sentences" are real ones: for each sampled concept, every distinct way the
SPACCC training corpus writes it (its annotated mentions) in the sentence it was written in,
marked ``[mention]`` as an LLM is asked to mark it. The concept's names are its KB names that
are not themselves training mentions (the SNOMED CT names of ``kb_snomed_es_lite.tsv``), so a
mention is accepted only through the filters' rules, as an invented variant would be.
Negatives: the same sentences judged against the names of another concept of the same group
(what the filters should reject). Writes ``benchmarks/results/abbreviations_spaccc.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from spacy_syncabel.synthesis.abbreviations import looks_like_acronym
from spacy_syncabel.synthesis.parsing import FilterConfig, parse_output

OUT = Path(__file__).parent / "results"


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


def sentence_of(text: str, start: int, end: int) -> Tuple[int, int]:
    lo = max(text.rfind("\n", 0, start), text.rfind(". ", 0, start) + 1)
    hi_n, hi_p = text.find("\n", end), text.find(". ", end)
    his = [h for h in (hi_n, hi_p + 1 if hi_p >= 0 else -1) if h >= 0]
    return lo + 1 if lo >= 0 else 0, min(his) if his else len(text)


def load(data: Path):
    kb: Dict[str, List[str]] = defaultdict(list)
    group_of: Dict[str, str] = {}
    with open(data / "kb_snomed_es_lite.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            kb[row["code"]].append(row["name"])
            group_of[row["code"]] = row["group"]
    mentions: Dict[str, Dict[str, str]] = defaultdict(dict)  # code -> folded mention -> sentence
    surfaces = set()
    texts: Dict[str, str] = {}
    with open(data / "train.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            code = row["code"]
            if "+" in code or code in ("NO_CODE", "") or code not in kb:
                continue
            name = row["filename"]
            if name not in texts:
                texts[name] = (data / "texts" / f"{name}.txt").read_text(encoding="utf-8")
            text, s, e = texts[name], int(row["start_span"]), int(row["end_span"])
            if text[s:e] != row["span"]:
                continue  # the rows that do not match their text
            surfaces.add(fold(row["span"]))
            lo, hi = sentence_of(text, s, e)
            marked = " ".join((text[lo:s] + "[" + text[s:e] + "]" + text[e:hi]).split())
            mentions[code].setdefault(fold(row["span"]), marked)
    return kb, group_of, mentions, surfaces


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--concepts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    kb, group_of, mentions, surfaces = load(args.data)
    names = {c: [n for n in ns if fold(n) not in surfaces] for c, ns in kb.items()}
    eligible = sorted(c for c in mentions if names.get(c)
                      and any(m not in {fold(n) for n in names[c]} for m in mentions[c]))
    rng = random.Random(args.seed)
    chosen = sorted(rng.sample(eligible, min(args.concepts, len(eligible))))
    by_group = defaultdict(list)
    for c in eligible:
        by_group[group_of[c]].append(c)
    cases = []  # (code, mention, sentence, names, negative names)
    for c in chosen:
        for m, sentence in sorted(mentions[c].items()):
            if m in {fold(n) for n in names[c]}:
                continue
            other = rng.choice([o for o in by_group[group_of[c]] if o != c])
            cases.append((c, m, sentence, names[c], names[other]))
    report = {"concepts": len(chosen), "eligible_concepts": len(eligible),
              "variants": len(cases), "settings": {}}
    verdicts = {}
    for label, on in (("before", False), ("after", True)):
        cfg = FilterConfig(accept_abbreviations=on, min_valid_lines=1)
        res = {"pos": [], "neg": []}
        reasons: Counter = Counter()
        for c, m, sentence, pos_names, neg_names in cases:
            raw = "SENTENCE: " + sentence
            acc, rej = parse_output(raw, prefix="SENTENCE:", n_mentions=1, names=pos_names,
                                    lang="es", filters=cfg)
            res["pos"].append(bool(acc))
            reasons.update(rej)
            acc_n, _ = parse_output(raw, prefix="SENTENCE:", n_mentions=1, names=neg_names,
                                    lang="es", filters=cfg)
            res["neg"].append(bool(acc_n))
        acro = [i for i, case in enumerate(cases)
                if any(looks_like_acronym(t.strip(",.;:")) for t in
                       re.search(r"\[([^\]]*)\]", case[2]).group(1).split())]
        verdicts[label] = res
        report["settings"][label] = {
            "accepted": sum(res["pos"]), "acceptance": sum(res["pos"]) / len(cases),
            "rejections": dict(reasons.most_common()),
            "with_acronym": len(acro),
            "accepted_with_acronym": sum(res["pos"][i] for i in acro),
            "negatives_accepted": sum(res["neg"]),
            "false_acceptance": sum(res["neg"]) / len(cases),
        }
    gained = [cases[i] for i in range(len(cases))
              if verdicts["after"]["pos"][i] and not verdicts["before"]["pos"][i]]
    false_new = [cases[i] for i in range(len(cases))
                 if verdicts["after"]["neg"][i] and not verdicts["before"]["neg"][i]]
    report["newly_accepted_examples"] = [
        {"mention": re.search(r"\[([^\]]*)\]", s).group(1), "names": n[:3]}
        for _, _, s, n, _ in gained[:40]]
    report["newly_false_accepted_examples"] = [
        {"mention": re.search(r"\[([^\]]*)\]", s).group(1), "other_names": o[:3]}
        for _, _, s, _, o in false_new[:40]]
    OUT.mkdir(exist_ok=True)
    (OUT / "abbreviations_spaccc.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if "examples" not in k},
                     ensure_ascii=False, indent=2))
    print("newly accepted:", [e["mention"] for e in report["newly_accepted_examples"]])
    print("newly false-accepted:", report["newly_false_accepted_examples"][:15])


if __name__ == "__main__":
    main()
