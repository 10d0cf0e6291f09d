"""Tiny fixtures for every corpus format, built in tmp_path."""
import warnings
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_syncabel.corpus import (detect_format, docs_to_examples, docs_to_spacy,
                                   normalize_code, read_corpus, unmark, write_jsonl)
from spacy_syncabel.types import CorpusDoc, GoldMention


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- codes

@pytest.mark.parametrize("raw,expected", [
    ("D001943|D010051", "D001943+D010051"),
    (" D008661", "D008661"),
    ("OMIM:300322+OMIM:102600", "OMIM:300322+OMIM:102600"),
    ("C0008100 C0008059", "C0008100+C0008059"),
    ("-1", "NIL"),
    ("", None),
    ("8000/6", "8000/6"),
])
def test_normalize_code(raw, expected):
    assert normalize_code(raw) == expected


# ---------------------------------------------------------------- JSONL

def test_jsonl_round_trip(tmp_path):
    docs = [
        CorpusDoc("a", "Fiebre y tos seca.", [GoldMention(9, 17, "SINTOMA", "49727002"),
                                               GoldMention(0, 6, "SINTOMA", "386661006+1")],
                  sentences=[(0, 18)]),
        CorpusDoc("b", "Nothing here.", []),
    ]
    path = tmp_path / "c.jsonl"
    write_jsonl(docs, path)
    back = read_corpus(path)
    assert [d.id for d in back] == ["a", "b"]
    assert back[0].mentions == sorted(docs[0].mentions, key=lambda m: m.start)
    assert back[0].sentences == [(0, 18)]
    assert back[1].sentences is None and back[1].mentions == []


def test_jsonl_offsets_outside_text(tmp_path):
    path = _write(tmp_path / "bad.jsonl",
                  '{"id": "x", "text": "abc", "entities": []}\n'
                  '{"id": "y", "text": "abc", "entities": [{"start": 1, "end": 9, "label": "L"}]}\n')
    with pytest.raises(ValueError, match="E041") as exc:
        read_corpus(path)
    assert "bad.jsonl" in str(exc.value) and "line 2" in str(exc.value)


def test_jsonl_invalid_json(tmp_path):
    path = _write(tmp_path / "bad.jsonl", '{"id": "x", "text": \n')
    with pytest.raises(ValueError, match="E042"):
        read_corpus(path)


# ---------------------------------------------------------------- errors / detection

def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="E040"):
        read_corpus(_write(tmp_path / "x.csv", "a,b\n"))
    with pytest.raises(ValueError, match="E040"):
        read_corpus(_write(tmp_path / "plain.txt", "just some text\n"))
    with pytest.raises(ValueError, match="E040"):
        read_corpus(_write(tmp_path / "y.jsonl", "{}\n"), format="nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="E040"):
        read_corpus(tmp_path / "empty")


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="E043"):
        read_corpus(tmp_path / "nothing.jsonl")


# ---------------------------------------------------------------- brat

def test_brat_annotator_notes(tmp_path):
    folder = tmp_path / "brat"
    text = "Carcinoma ductal infiltrante y hepatite C chronique.\n"
    _write(folder / "sub" / "d1.txt", text)
    _write(folder / "sub" / "d1.ann",
           "T1\tMORF 0 28\tCarcinoma ductal infiltrante\n"
           "#1\tAnnotatorNotes T1\t8500/3\n"
           "T2\tDISO 31 39;40 41\thepatite C\n"
           "#2\tAnnotatorNotes T2\tC0019196 C0524910\n"
           "T3\tDISO 42 51\tchronique\n"
           "T4\tDISO 0 9\tWRONGTEXT\n"
           "R1\tRel Arg1:T1 Arg2:T2\n")
    assert detect_format(folder) == "brat"
    with pytest.warns(UserWarning, match="W004"):
        docs = read_corpus(folder)
    assert len(docs) == 1 and docs[0].id == "sub/d1"
    m = docs[0].mentions
    assert [(x.start, x.end, x.label, x.code) for x in m] == [
        (0, 28, "MORF", "8500/3"),
        (31, 41, "DISO", "C0019196+C0524910"),  # discontinuous -> covering span
        (42, 51, "DISO", None),
    ]


def test_brat_offsets_outside(tmp_path):
    _write(tmp_path / "d.txt", "short")
    _write(tmp_path / "d.ann", "T1\tX 2 50\tort\n")
    with pytest.raises(ValueError, match="E041") as exc:
        read_corpus(tmp_path)
    assert "d.ann line 1" in str(exc.value)


# ---------------------------------------------------------------- PubTator

PUBTATOR = (
    "111|t|Breast and ovarian cancer.\n"
    "111|a|Some  abstract with toxicity.\n"
    "111\t0\t25\tBreast and ovarian cancer\tCompositeMention\tD001943|D010051\n"
    "111\t47\t55\ttoxicity\tDisease\t-1\n"
    "111\tCID\tD000001\tD000002\n"
    "\n"
    "222|t|Lithium.\n"
    "222|a|\n"
    "222\t0\t7\tLithium\tChemical\tD008094+D000001\tLi|Li\n"
)


def test_pubtator(tmp_path):
    path = _write(tmp_path / "x.txt", PUBTATOR)
    assert detect_format(path) == "pubtator"
    docs = read_corpus(path)
    assert [d.id for d in docs] == ["111", "222"]
    assert docs[0].text == "Breast and ovarian cancer. Some  abstract with toxicity."
    assert [(m.start, m.end, m.label, m.code) for m in docs[0].mentions] == [
        (0, 25, "CompositeMention", "D001943+D010051"), (47, 55, "Disease", "NIL")]
    assert docs[1].mentions[0].code == "D008094+D000001"


def test_pubtator_mismatch_skipped(tmp_path):
    path = _write(tmp_path / "x.pubtator", "1|t|Abc def.\n1|a|\n1\t0\t3\tXyz\tD\tD1\n")
    with pytest.warns(UserWarning, match="W004"):
        docs = read_corpus(path)
    assert docs[0].mentions == []


# ---------------------------------------------------------------- marked TSV

def test_unmark_with_other_brackets():
    s = "Paciente [69 años] con [dolor [agudo] torácico]{SINTOMA} y fiebre {38}."
    text, start, end, typ = unmark(s, "SINTOMA")
    assert text == "Paciente [69 años] con dolor [agudo] torácico y fiebre {38}."
    assert text[start:end] == "dolor [agudo] torácico" and typ == "SINTOMA"
    text, start, end, typ = unmark("a [b] [c]{X} d", None)
    assert text[start:end] == "c" and typ == "X" and text == "a [b] c d"
    assert unmark("no markup", "X") is None


def test_marked_tsv(tmp_path):
    path = _write(tmp_path / "t.tsv",
                  "filename\tmention_id\tlabel\tspan\tcode\tsentence\n"
                  "f1\tf1.1\tSINTOMA\tdolor [agudo]\t22253000\tVer [fig 1]: [dolor [agudo]]{SINTOMA} hoy.\n"
                  "f1\tf1.2\tENFERMEDAD\tgripe\t6142004+1\tTiene [gripe]{ENFERMEDAD}.\n"
                  "f2\tf2.1\tSINTOMA\tfiebre alta\t1\tCon [fiebre]{SINTOMA}.\n")
    assert detect_format(path) == "marked_tsv"
    with pytest.warns(UserWarning, match="W042"):
        docs = read_corpus(path)
    assert [d.id for d in docs] == ["f1.1", "f1.2", "f2.1"]
    d = docs[0]
    assert d.text == "Ver [fig 1]: dolor [agudo] hoy."
    m = d.mentions[0]
    assert d.text[m.start:m.end] == "dolor [agudo]" and m.label == "SINTOMA" and m.code == "22253000"
    assert d.sentences == [(0, len(d.text))]
    assert docs[1].mentions[0].code == "6142004+1"
    assert docs[2].text[docs[2].mentions[0].start:docs[2].mentions[0].end] == "fiebre"


def test_marked_tsv_without_markup(tmp_path):
    path = _write(tmp_path / "t.tsv", "label\tcode\tsentence\nX\t1\tno markup here\n")
    with pytest.raises(ValueError, match="E042") as exc:
        read_corpus(path)
    assert "line 2" in str(exc.value)


# ---------------------------------------------------------------- SPACCC train

def test_spaccc_train(tmp_path):
    _write(tmp_path / "texts" / "doc1.txt", "Dolor abdominal y fiebre.")
    path = _write(tmp_path / "train.tsv",
                  "filename\tlabel\tstart_span\tend_span\tspan\tcode\tsemantic_rel\n"
                  "doc1\tSINTOMA\t18\t24\tfiebre\t386661006\tEXACT\n"
                  "doc1\tSINTOMA\t0\t15\tDolor abdominal\t21522001\tEXACT\n"
                  "doc1\tSINTOMA\t0\t5\tcolor\t1\tEXACT\n")
    assert detect_format(path) == "spaccc"
    with pytest.warns(UserWarning, match=r"W004\] 1 row"):
        docs = read_corpus(path)
    assert len(docs) == 1 and docs[0].id == "doc1"
    assert [(m.start, m.code) for m in docs[0].mentions] == [(0, "21522001"), (18, "386661006")]


# ---------------------------------------------------------------- spaCy docs / DocBin

def test_docs_to_spacy_and_docbin(tmp_path):
    docs = [CorpusDoc("d1", "Fiebre alta. Dolor de cabeza intenso.",
                      [GoldMention(0, 6, "SINTOMA", "386661006"),
                       GoldMention(0, 11, "SINTOMA", None),      # overlaps, longer: kept
                       GoldMention(13, 28, "SINTOMA", "25064002"),
                       GoldMention(22, 26, "ANAT", "69536005")],  # nested: dropped
                      sentences=[(0, 12), (13, 37)])]
    nlp = spacy.blank("es")
    with pytest.warns(UserWarning, match=r"W040\] 2 overlapping"):
        sdocs = docs_to_spacy(nlp, docs)
    doc = sdocs[0]
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Fiebre alta", "SINTOMA", "NIL"), ("Dolor de cabeza", "SINTOMA", "25064002")]
    assert [s.text for s in doc.sents] == ["Fiebre alta.", "Dolor de cabeza intenso."]
    assert doc.user_data["id"] == "d1"

    path = tmp_path / "c.spacy"
    DocBin(docs=sdocs, store_user_data=True).to_disk(path)
    back = read_corpus(path)
    assert back[0].id == "d1"
    assert [(m.start, m.end, m.code) for m in back[0].mentions] == [(0, 11, "NIL"), (13, 28, "25064002")]
    assert back[0].sentences == [(0, 12), (13, 37)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = docs_to_examples(nlp, docs[:1])[0]
    assert len(ex.predicted.ents) == 0 and len(ex.reference.ents) == 2
    assert [t.text for t in ex.predicted] == [t.text for t in ex.reference]


def test_docs_to_spacy_keeps_overlapping_mentions_in_a_span_group(tmp_path):
    """With spans_key every mention, nested and overlapping ones too, is in the span group
    (what a span categorizer trains on); doc.ents stay the non-overlapping longest ones."""
    docs = [CorpusDoc("d1", "Fiebre alta. Dolor de cabeza intenso.",
                      [GoldMention(0, 6, "SINTOMA", "386661006"),
                       GoldMention(0, 11, "SINTOMA", None),
                       GoldMention(13, 28, "SINTOMA", "25064002"),
                       GoldMention(22, 26, "ANAT", "69536005")])]
    nlp = spacy.blank("es")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overlaps are kept: no W040
        doc = docs_to_spacy(nlp, docs, spans_key="sc")[0]
    assert [e.text for e in doc.ents] == ["Fiebre alta", "Dolor de cabeza"]
    assert [(s.text, s.label_, s.kb_id_) for s in doc.spans["sc"]] == [
        ("Fiebre", "SINTOMA", "386661006"), ("Fiebre alta", "SINTOMA", "NIL"),
        ("Dolor de cabeza", "SINTOMA", "25064002"), ("cabeza", "ANAT", "69536005")]
    path = tmp_path / "c.spacy"
    DocBin(docs=[doc], store_user_data=True).to_disk(path)
    back = list(DocBin().from_disk(path).get_docs(nlp.vocab))[0]
    assert [s.text for s in back.spans["sc"]] == [s.text for s in doc.spans["sc"]]


def test_docs_to_spacy_expand_and_vocab():
    docs = [CorpusDoc("x", "El paciente presenta hipertensión.", [GoldMention(23, 30, "E", "1")])]
    doc = docs_to_spacy(spacy.blank("es").vocab, docs)[0]
    assert doc.ents[0].text == "hipertensión"
