"""Composite mentions on SPACCC: gold composites, reachability of their targets, trie memory.

For each tokenizer (the project's tiny BPE, trained as `train` trains it, and SmolLM2's):
- the after-separator trie's size and build time beside the first trie's (both parts of the
  tries composite mentions use, over the SPACCC-lite KB);
- how many ``" a<SEP>b"`` completions the tokenizer spells differently as one string than
  name by name (W211), over pairs of KB names;
- the composite gold mentions of the train split and of test_half, and how many of their
  targets (per part, the name of the gold code closest to the mention, as training writes
  them) are paths of the new composite trie of the mention's group, and within
  ``max_new_tokens``.

With ``--pipeline DIR`` it also times one pipeline's beam search over the first ``--n``
test_half mentions with composite mentions on and off (the same engine, interleaved rounds:
read the ratio) and counts the top-1 answers that are composite.

    python benchmarks/bench_composite.py [--tokenizers tiny smollm2] [--pipeline DIR --n 120]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.datasets import get_dataset
from spacy_syncabel.decoding import TrieSet
from spacy_syncabel.kb import read_file
from spacy_syncabel.linking.settings import setting_default
from spacy_syncabel.models import ensure_sep_token
from spacy_syncabel.prompting import SEP_TOKEN, encode_completion
from spacy_syncabel.text import clean_name
from spacy_syncabel.training.examples import NameSelector, canonical_parts, composite_gold
from spacy_syncabel.training.negatives import gold_target_name
from spacy_syncabel.training.sft import load_base_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"


def tokenizer_for(spec: str, kb, train_docs):
    """The tokenizer `train --base-model SPEC` uses (tiny: its BPE trained on the KB names and
    the first 2,000 training texts), with <SEP>."""
    base = {"tiny": "tiny:256,4", "smollm2": "smollm2:1"}[spec]
    model, tok = load_base_model(base, kb, [d.text for d in train_docs[:2000]])
    ensure_sep_token(model, tok)
    return tok


def trie_sizes(kb, tok) -> dict:
    t0 = time.perf_counter()
    single = TrieSet.build(kb, tok)
    t1 = time.perf_counter()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        tries = single.with_composite(kb, tok, SEP_TOKEN)
    t2 = time.perf_counter()
    n_pairs = 400
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        mismatches = tries.check_whole_strings(tok, n=n_pairs)
    return {
        "names": len(kb.names()),
        "first_trie": {"nodes": tries.trie.n_nodes, "bytes": single.nbytes,
                       "build_s": round(t1 - t0, 2)},
        "after_sep_trie": {"nodes": tries.after_sep.trie.n_nodes,
                           "bytes": tries.after_sep.nbytes, "build_s": round(t2 - t1, 2)},
        "composite_total_bytes": tries.nbytes,
        "whole_string_mismatches": {"pairs": n_pairs, "differ": mismatches},
    }, tries


def reachability(docs, kb, tok, tries, label_map, max_new_tokens: int) -> dict:
    """Composite gold mentions of ``docs``: targets written (none when a part's code is not in
    the KB, or has no name of the group that maps back to it), paths of the group's composite
    trie, within ``max_new_tokens`` (EOS included)."""
    selector = NameSelector(kb)
    sep = tok.convert_tokens_to_ids(SEP_TOKEN)
    out = {"composite_mentions": 0, "parts": {}, "code_missing_from_kb": 0,
           "no_producible_name": 0, "targets": 0, "reachable": 0,
           "within_max_new_tokens": 0, "unreachable_first": [], "after_sep_differs": 0}
    for doc in docs:
        for m in doc.mentions:
            parts = canonical_parts(kb, m.code or "")
            if len(parts) < 2:
                continue
            out["composite_mentions"] += 1
            out["parts"][len(parts)] = out["parts"].get(len(parts), 0) + 1
            if any(p not in kb for p in parts):
                out["code_missing_from_kb"] += 1
                continue
            group = label_map.get(m.label, m.label)
            group = group if group in kb.groups else None
            mention = clean_name(doc.text[m.start:m.end])
            names = gold_target_name(selector, mention, "+".join(parts), group)
            if names is None:
                out["no_producible_name"] += 1
                continue
            out["targets"] += 1
            names = names.split(SEP_TOKEN)
            ids = encode_completion(tok, names, sep)
            old = tok(" " + names[1], add_special_tokens=False)["input_ids"]
            out["after_sep_differs"] += tries.after_sep.tokens_of(names[1]) != old
            if tries[group].names_of(ids) == names and tries[group].walk(ids) >= 0:
                out["reachable"] += 1
                out["within_max_new_tokens"] += len(ids) <= max_new_tokens
            elif len(out["unreachable_first"]) < 5:
                out["unreachable_first"].append([doc.id, m.start, m.end, m.code])
    out["parts"] = {str(k): v for k, v in sorted(out["parts"].items())}
    return out


def decode_speed(pipeline: Path, docs, n: int, rounds: int) -> dict:
    """Seconds of ``engine.link`` over ``n`` mentions, composite on and off, interleaved."""
    import spacy
    import torch

    from spacy_syncabel.prompting import encode_prompt
    from spacy_syncabel.training.examples import iter_mention_prompts

    torch.set_num_threads(1)
    nlp = spacy.load(pipeline)
    linker = nlp.get_pipe("syncabel_linker")
    items = []
    for item in iter_mention_prompts(docs, linker, nlp=nlp):
        items.append(item)
        if len(items) == n:
            break
    prompts = [encode_prompt(linker.tokenizer, p) for _, p, _, _, _ in items]
    groups = [g for *_, g in items]
    engines = {"on": linker.engine.with_settings(composite=True),
               "off": linker.engine.with_settings(composite=False)}
    seconds = {k: [] for k in engines}
    composite_top1 = {}
    for _ in range(rounds):
        for key, engine in engines.items():
            t0 = time.perf_counter()
            out = engine.link(prompts, groups)
            seconds[key].append(round(time.perf_counter() - t0, 3))
            composite_top1[key] = sum(1 for c in out if c and "+" in c[0].code)
    mean = {k: sum(v) / len(v) for k, v in seconds.items()}
    return {"pipeline": str(pipeline), "mentions": len(prompts), "threads": 1,
            "seconds": seconds, "composite_top1": composite_top1,
            "slowdown_on_vs_off": round(mean["on"] / mean["off"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizers", nargs="+", default=["tiny", "smollm2"])
    ap.add_argument("--pipeline", type=Path, help="Also time this pipeline, composite on/off.")
    ap.add_argument("--n", type=int, default=120, help="Mentions timed with --pipeline.")
    ap.add_argument("--rounds", type=int, default=2, help="Interleaved rounds with --pipeline.")
    ap.add_argument("--output", type=Path, default=OUT / "composite_spaccc.json")
    args = ap.parse_args()
    spec = get_dataset("spaccc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_file(DATA / "spaccc" / "kb_snomed_es_lite.tsv")
        train = read_corpus(DATA / "spaccc" / "train.tsv")
        test = read_corpus(DATA / "spaccc" / "test_half.tsv")
    max_new = setting_default("max_new_tokens")
    result = {"kb": "spaccc/kb_snomed_es_lite.tsv", "max_new_tokens": max_new,
              "train_gold": composite_gold(train).to_dict(),
              "test_half_gold": composite_gold(test).to_dict(), "tokenizers": {}}
    for name in args.tokenizers:
        tok = tokenizer_for(name, kb, train)
        sizes, tries = trie_sizes(kb, tok)
        label_map = dict(spec.label_map)
        result["tokenizers"][name] = dict(
            sizes, train=reachability(train, kb, tok, tries, label_map, max_new),
            test_half=reachability(test, kb, tok, tries, label_map, max_new))
        print(name, json.dumps(result["tokenizers"][name], indent=1))
    if args.pipeline is not None:
        result["decode_speed"] = decode_speed(args.pipeline, test, args.n, args.rounds)
        print(json.dumps(result["decode_speed"]))
    path = args.output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "tokenizers"}), "->", path)


if __name__ == "__main__":
    main()
