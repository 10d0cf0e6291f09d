"""Compare the KBs two checkouts of the package build from the same real KB files.

For each KB of ``../shared/data`` (SPACCC-lite, QUAERO-lite, MEDIC, eCIE-O-3.1) each checkout
(``--old``, ``--new``: folders holding ``spacy_syncabel``) loads the file in its own process and
dumps its kept ``(group, name, code)`` triples, the codes left without a name, the dropped
ambiguous names and the preferred names; the two dumps are compared.

    git archive HEAD~3 | tar -x -C /tmp/old
    python benchmarks/compare_kb_builds.py --old /tmp/old --new .
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KBS = ("spaccc/kb_snomed_es_lite.tsv", "quaero/kb_umls_fr_lite.tsv", "medic/medic_06Jul2012.txt",
       "cantemist/cie_o3.jsonl")

_CHILD = """
import json, sys, warnings
from spacy_syncabel.kb import read_file
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    kb = read_file(sys.argv[1])
groups = kb.report["groups"]
print(json.dumps({
    "entries": sorted(kb.entries()),
    "nameless": sorted((g, c) for g, r in groups.items() for c in r["nameless_codes"]),
    "dropped": sorted((g, n) for g, r in groups.items() for n, _ in r["dropped_names"]),
    "preferred": sorted((c, kb.preferred_name(c)) for c in kb.codes),
    "fingerprint": kb.fingerprint(),
}))
"""


def dump(root: Path, kb: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root.resolve()))
    done = subprocess.run([sys.executable, "-c", _CHILD, str(kb.resolve())], env=env,
                          cwd=root, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    for rel in KBS:
        old, new = dump(args.old, args.data / rel), dump(args.new, args.data / rel)
        line = {"kb": rel, "entries": len(new["entries"]),
                "same_fingerprint": old["fingerprint"] == new["fingerprint"]}
        for key in ("entries", "nameless", "dropped", "preferred"):
            a = {tuple(x) for x in old[key]}
            b = {tuple(x) for x in new[key]}
            line[key] = {"old": len(a), "new": len(b), "only_old": sorted(a - b)[:5],
                         "only_new": sorted(b - a)[:5]}
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
