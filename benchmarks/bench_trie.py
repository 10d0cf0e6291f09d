"""Benchmark: building token tries for a KB of 100k+ names (time and memory).

Names: MEDIC + SPACCC-lite + eCIE-O-3.1 + QUAERO-lite (about 110k), SmolLM2 tokenizer.

    python benchmarks/bench_trie.py
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from spacy_syncabel.decoding import TrieSet
from spacy_syncabel.kb import ConceptKB, read_file
from spacy_syncabel.models import load_smollm2_tokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    entries = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in ("medic/medic_06Jul2012.txt", "spaccc/kb_snomed_es_lite.tsv",
                     "cantemist/cie_o3.jsonl", "quaero/kb_umls_fr_lite.tsv"):
            kb = read_file(DATA / path)
            entries += [(c, n, g) for c, n, g in kb.entries()]
        kb = ConceptKB(entries, warn=False)
    tok = load_smollm2_tokenizer()
    t0 = time.perf_counter()
    tries = TrieSet.build(kb, tok, "<SEP>", composite=True)
    seconds = time.perf_counter() - t0
    result = {"n_names": len(kb.names()), "n_groups": len(kb.groups),
              "n_nodes_all_groups": tries[None].n_nodes, "build_seconds": seconds,
              "megabytes": tries.nbytes / 1e6}
    print(json.dumps(result, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "trie_build.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
