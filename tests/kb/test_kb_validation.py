"""KB codes and names that other parts of the package would read as something else are refused
(E340, E341) where every KB format passes (ConceptKB), and many codes sharing a name load in
linear time."""
import json
import time
import warnings

import pytest

from spacy_syncabel.kb import ConceptKB, loaders as L


def build(entries, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ConceptKB(entries, **kw)


BAD_CODES = [
    "C1\tC2",  # a tab: breaks brat / TSV lines
    "C1\nC2",  # a newline
    "C1\r2",
    "C\x001",  # other control characters
    "C1\x85C2",  # NEL: a line break for str.splitlines
    "C\u20281",  # unicode line separator
    "C\u200b1",  # zero-width space (invisible)
    "C\u00a01",  # no-break space
    "C1 C2",  # a blank: the gold readers split codes on white space
    "C1+C2",  # the composite separator
    "C1|C2",
    "C1,C2",
    "C1<SEP>C2",  # the composite separator of the decoder
    "NIL", "nil", "NO_CODE", "no_code", "-1", "CUI-less",  # "no concept" markers
]


@pytest.mark.parametrize("code", BAD_CODES, ids=[repr(c) for c in BAD_CODES])
def test_code_read_as_something_else_is_refused(code):
    with pytest.raises(ValueError) as exc:
        build([("C0", "fiebre", "S"), (code, "cefalea", "S")], source="kb.tsv")
    msg = str(exc.value)
    assert msg.startswith("[E340] KB kb.tsv: 1 code(s)") and repr(code) in msg, msg
    assert "'cefalea'" in msg  # names the row, so it can be found


def test_every_bad_code_is_counted_and_the_first_ones_listed():
    with pytest.raises(ValueError) as exc:
        build([("a+b", "x", "S"), ("C1", "y", "S"), ("NIL", "z", "S"), ("c d", "w", "S")])
    msg = str(exc.value)
    assert "3 code(s)" in msg and "'a+b'" in msg and "'NIL'" in msg and "'c d'" in msg


def test_codes_that_only_look_close_are_kept():
    kb = build([("8000/6", "neoplasia", "M"), ("HP:0001250", "seizure", "P"),
                ("OMIM:123456", "x syndrome", "D"), ("NILS1", "nils", "D"), ("C-1", "c", "D"),
                ("D012345", "fiebre", "D")])
    assert kb.codes == {"8000/6", "HP:0001250", "OMIM:123456", "NILS1", "C-1", "D012345"}


def test_white_space_and_separators_at_a_code_end_are_dropped_with_a_warning():
    # as in QUAERO-lite ("C0035946+"): the gold readers read such a code without them
    with pytest.warns(UserWarning, match=r"\[W340\].*'C1\+'"):
        kb = ConceptKB([("C1+", "rumen", "A"), (" C2 ", "abomaso", "A"), ("C3", "panza", "A")],
                       preferred={"C1+": "rumen"}, definitions={"C1+": "stomach"})
    assert kb.codes == {"C1", "C2", "C3"} and kb.lookup("rumen") == "C1"
    assert kb.preferred_name("C1") == "rumen" and kb.definition("C1") == "stomach"
    assert kb.report["repaired_codes"] == ["C1+", " C2 "]
    with pytest.raises(ValueError, match=r"\[E340\]"):
        build([("+", "x", "A")])  # nothing left


BAD_NAMES = [
    "\u0301",  # only combining characters
    "\u0301\u0308\u20dd",
    "\u200b\u200d",  # invisible: empty once cleaned
    "\x00\x01",  # control characters: empty once cleaned
    "   ",
    "fiebre<SEP>tos",  # read as two names by the decoder
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_name_with_nothing_to_generate_is_refused(name):
    with pytest.raises(ValueError) as exc:
        build([("C0", "fiebre", "S"), ("C1", name, "S")], source="kb.tsv")
    msg = str(exc.value)
    assert msg.startswith("[E341] KB kb.tsv: 1 name(s)") and repr(name) in msg, msg
    assert "'C1'" in msg


def test_names_with_combining_marks_on_letters_are_kept():
    kb = build([("C1", "me\u0301dico", "S"), ("C2", "\u00e9", "S"), ("C3", "+", "S")])
    assert kb.lookup("médico") == "C1" and kb.lookup("é") == "C2" and kb.lookup("+") == "C3"


def test_alternative_codes_are_checked_too():
    with pytest.raises(ValueError, match=r"\[E340\].*'8000/6\+H'"):
        build([("8000/6", "neoplasia", "M")], aliases={"8000/6+H": "8000/6"})


# one bad row per KB format: each reader hands its rows to ConceptKB, which refuses them
RF2 = ("id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\t"
       "caseSignificanceId\n1\t20200101\t1\t1\t100+200\tes\t900000000000013009\tfiebre\t1\n")
FORMATS = [
    ("kb.tsv", "code\tname\tgroup\nC1\tfiebre\tS\nC2|C3\ttos\tS\n", "'C2|C3'"),
    ("kb.jsonl", json.dumps({"code": "C1\u2028C2", "name": "tos", "group": "S"}) + "\n",
     r"'C1\u2028C2'"),
    ("medic.txt", "MESH:D1||fever\nMESH:D2 D3||cough\n", "'D2 D3'"),
    ("cie_o3.jsonl", json.dumps({"concept_id": "NO_CODE", "definition": "neoplasia"}) + "\n",
     "'NO_CODE'"),
    ("hp.obo", "[Term]\nid: HP:1<SEP>2\nname: seizure\n", "'HP:1<SEP>2'"),
    ("MRCONSO.RRF", "C1,C2|ENG|P|L1|PF|S1|Y|A1||||MSH|PN|D1|fever|0|N||\n", "'C1,C2'"),
    ("sct2_Description_es.txt", RF2, "'100+200'"),
]


@pytest.mark.parametrize("name,text,shown", FORMATS, ids=[f[0] for f in FORMATS])
def test_every_kb_format_refuses_bad_codes(tmp_path, name, text, shown):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    with pytest.raises(ValueError) as exc:
        L.read_file(path)
    msg = str(exc.value)
    assert msg.startswith("[E340]") and shown in msg and str(path) in msg, msg


def test_saved_kb_with_a_bad_code_is_refused_on_load(tmp_path):
    kb = build([("C1", "fiebre", "S"), ("C2", "tos", "S")])
    kb.to_disk(tmp_path / "kb")
    rows = (tmp_path / "kb" / "kb.jsonl").read_text().replace('"C2"', '"C2\\tC3"')
    (tmp_path / "kb" / "kb.jsonl").write_text(rows)
    with pytest.raises(ValueError, match=r"\[E340\].*'C2\\tC3'"):
        ConceptKB.load(tmp_path / "kb")


def test_many_codes_sharing_one_name_load_in_linear_time():
    # 20,000 codes with one name: was quadratic (~17 s here), now a fraction of a second
    rows = [(f"C{i:05d}", "one shared name", "G") for i in range(20_000)]
    t0 = time.perf_counter()
    kb = build(rows)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, elapsed
    # step 3: the smallest code takes the name, the others stay reachable by synonyms
    assert list(kb.entries()) == [("C00000", "one shared name", "G")]
    assert len(kb.report["groups"]["G"]["nameless_codes"]) == 19_999
