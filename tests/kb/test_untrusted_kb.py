"""Hostile KB files and KB folders fail with coded errors naming the file and the line."""
import re
import shutil
import warnings

import pytest

from spacy_syncabel.kb import ConceptKB, loaders as L

MRCONSO = "C0000001|{lat}|P|L0000001|PF|S0000001|Y|A0000001||||MSH|PN|D000001|{name}|0|N||\n"
RF2_HEADER = ("id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\t"
              "caseSignificanceId\n")


def _rf2(desc_id, concept, type_id, term):
    return f"{desc_id}\t20200101\t1\t1\t{concept}\tes\t{type_id}\t{term}\t1\n"


# (file name, reader, text): the third line of each text holds "Ménière", written in latin-1
LATIN1_KBS = [
    ("kb.tsv", L.read_tsv, "code\tname\tgroup\nC1\tfiebre\tSINTOMA\nC2\tMénière\tENFERMEDAD\n"),
    ("kb.jsonl", L.read_jsonl, '{"code": "C1", "name": "fiebre", "group": "S"}\n\n'
                               '{"code": "C2", "name": "Ménière", "group": "E"}\n'),
    ("medic.txt", L.read_medic, "# MEDIC\nMESH:D1||fever|pyrexia\nMESH:D2||Ménière disease\n"),
    ("cie_o3.jsonl", L.read_cie_o3, '{"concept_id": "8000/0", "definition": "neoplasia"}\n\n'
                                    '{"concept_id": "8000/1", "definition": "Ménière"}\n'),
    ("hp.obo", L.read_obo, "[Term]\nid: HP:1\nname: Ménière\n"),
    ("MRCONSO.RRF", L.read_umls, MRCONSO.format(lat="ENG", name="fever")
     + MRCONSO.format(lat="ENG", name="pyrexia").replace("C0000001", "C0000002")
     + MRCONSO.format(lat="ENG", name="Ménière").replace("C0000001", "C0000003")),
    ("sct2_Description_es.txt", L.read_snomed_rf2,
     RF2_HEADER + _rf2("1", "100", "900000000000013009", "fiebre")
     + _rf2("2", "200", "900000000000013009", "Ménière")),
]


@pytest.mark.parametrize("name,reader,text", LATIN1_KBS, ids=[k[0] for k in LATIN1_KBS])
def test_latin1_kb_file_is_a_coded_error_naming_file_and_line(tmp_path, name, reader, text):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError) as exc:
        reader(path)
    msg = str(exc.value)
    assert msg.startswith("[E190]") and str(path) in msg and "line 3 " in msg, msg
    assert "iconv -f latin1 -t utf8" in msg
    # the same file in UTF-8 loads
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(reader(path)) >= 1
    # read_file (format from the name) gives the same error
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match="E190"):
        L.read_file(path)


def test_decode_error_line_past_the_first_read_chunk(tmp_path):
    rows = "".join(f"C{i}\tname {i}\tG\n" for i in range(5000))  # ~70 KB before the bad row
    path = tmp_path / "big.tsv"
    path.write_bytes(("code\tname\tgroup\n" + rows + "CX\tMénière\tG\n").encode("latin-1"))
    with pytest.raises(ValueError, match=r"E190.*big.tsv, line 5002 \(byte 5\)"):
        L.read_tsv(path)


def test_tsv_tab_inside_a_name_is_a_coded_error(write):
    p = write("kb.tsv", "code\tname\tgroup\nC1\tfiebre\tS\nC2\tdolor\tde cabeza\tS\n")
    with pytest.raises(ValueError, match=r"E195.*kb.tsv, line 3: 4 tab-separated field\(s\) "
                                         r"where the header has 3"):
        L.read_tsv(p)
    # a tab inside a code, with an empty field after it, is not taken for a trailing tab
    p = write("kb2.tsv", "code\tname\tgroup\nC1\tfiebre\tS\n0\t0\t0\t\n")
    with pytest.raises(ValueError, match=r"E195.*kb2.tsv, line 3"):
        L.read_tsv(p)
    # optional columns may be left out at the end of a row
    p = write("kb3.tsv", "code\tname\tgroup\tpreferred\nC1\tfiebre\tS\nC2\tdolor\tS\t1\n")
    assert L.read_tsv(p).preferred_name("C2") == "dolor"


def test_codes_are_read_as_strings(write):
    kb = L.read_tsv(write("kb.tsv", "code\tname\tgroup\nNaN\tfiebre\tS\n007\tdolor\tS\n"))
    assert kb.codes == {"NaN", "007"}
    kb = L.read_jsonl(write("kb.jsonl", '{"code": 38341003, "name": "HTA", "group": "E"}\n'))
    assert kb.codes == {"38341003"}
    for value, code in [("NaN", "E006"), ("Infinity", "E006"), ("1.5", "E194"),
                        ("true", "E194"), ('["A"]', "E194")]:
        p = write("bad.jsonl", '{"code": "C1", "name": "x", "group": "E"}\n'
                               f'{{"code": {value}, "name": "HTA", "group": "E"}}\n')
        with pytest.raises(ValueError, match=rf"{code}.*bad.jsonl, line 2"):
            L.read_jsonl(p)
    p = write("bad2.jsonl", '{"code": "C1", "names": ["x", 2.5], "group": "E"}\n')
    with pytest.raises(ValueError, match=r"E194.*line 1: a name .*float"):
        L.read_jsonl(p)
    p = write("cie_o3.jsonl", '{"concept_id": NaN, "definition": "x"}\n')
    with pytest.raises(ValueError, match=r"E006.*cie_o3.jsonl, line 1"):
        L.read_cie_o3(p)


# ---------------------------------------------------------------- saved KB folders
@pytest.fixture
def saved(tmp_path):
    rows = [(f"C{i}", f"name {i}", "G") for i in range(30)] + [("C0", "other", "H")]
    kb = ConceptKB(rows, preferred={"C1": "name 1"}, aliases={"C1/H": "C1"})
    kb.to_disk(tmp_path / "kb")
    return kb, tmp_path / "kb"


def test_saved_folder_round_trips(saved):
    kb, folder = saved
    back = ConceptKB.from_disk(folder)
    assert back.fingerprint() == kb.fingerprint() and back.canonical_code("C1/H") == "C1"


@pytest.mark.parametrize("missing", ["meta.json", "kb.jsonl"])
def test_incomplete_folder_is_a_coded_error(saved, missing):
    _, folder = saved
    (folder / missing).unlink()
    with pytest.raises(ValueError, match=rf"E192.*{re.escape(str(folder))} is incomplete: "
                                         rf"{re.escape(missing)} is missing"):
        ConceptKB.from_disk(folder)
    for fmt in ("folder", "auto"):
        with pytest.raises(ValueError, match="E192"):
            L.read_file(folder, format=fmt)


def test_truncated_kb_jsonl(saved):
    _, folder = saved
    data = (folder / "kb.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    # cut inside line 11: invalid JSON, the error names the file and the line
    (folder / "kb.jsonl").write_bytes(b"".join(lines[:10]) + lines[10][:15])
    with pytest.raises(ValueError, match=r"E191.*kb.jsonl, line 11: invalid JSON"):
        ConceptKB.from_disk(folder)
    # cut at a line end: the rows parse, but they do not give the saved fingerprint
    (folder / "kb.jsonl").write_bytes(b"".join(lines[:10]))
    with pytest.raises(ValueError, match=r"E193.*10 row\(s\)"):
        ConceptKB.from_disk(folder)
    # a row of the wrong shape
    (folder / "kb.jsonl").write_bytes(b"".join(lines[:3]) + b'{"code": 1, "name": "x"}\n')
    with pytest.raises(ValueError, match=r"E196.*kb.jsonl, line 4"):
        ConceptKB.from_disk(folder)


def test_bad_meta_json_names_file_and_line(saved):
    _, folder = saved
    meta = folder / "meta.json"
    meta.write_text('{\n  "source": "x",\n  "preferred": {,\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"E191.*meta.json, line 3: invalid JSON"):
        ConceptKB.from_disk(folder)
    meta.write_bytes('{"source": "Ménière"}'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"E190.*meta.json, line 1"):
        ConceptKB.from_disk(folder)


def test_to_disk_over_an_older_folder(saved, tmp_path):
    kb, folder = saved
    shutil.copytree(folder, tmp_path / "copy")
    smaller = ConceptKB([("X", "equis", "G")])
    smaller.to_disk(tmp_path / "copy")
    assert ConceptKB.from_disk(tmp_path / "copy").fingerprint() == smaller.fingerprint()


def test_separator_inside_a_name_in_other_formats(tmp_path):
    # MEDIC pipe format: a tab is not taken as a switch to CTD's TSV format
    path = tmp_path / "medic.txt"
    path.write_text("MESH:D1||fever|pyrexia\nMESH:D2||Méni\tère disease\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E007.*medic.txt, line 2: .*no tab"):
        L.read_medic(path)
    # UMLS: a '|' inside a name shifts the fields after it
    path = tmp_path / "MRCONSO.RRF"
    path.write_text(MRCONSO.format(lat="ENG", name="fever")
                    + MRCONSO.format(lat="ENG", name="heart|attack"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"E007.*MRCONSO.RRF, line 2: 20 '\|'-separated"):
        L.read_umls(path)
    # SNOMED CT RF2: a tab inside a term
    path = tmp_path / "sct2_Description_es.txt"
    path.write_text(RF2_HEADER + _rf2("1", "100", "900000000000013009", "fiebre")
                    + _rf2("2", "200", "900000000000013009", "dolor\tde cabeza"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"E195.*sct2_Description_es.txt, line 3: 10 "):
        L.read_snomed_rf2(path)
