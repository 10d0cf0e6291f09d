"""Hostile corpus files fail with coded errors (or coded warnings) naming the file and line."""
import warnings
from pathlib import Path

import pytest

from spacy_syncabel.corpus import read_corpus

TEXT = "Fiebre y dolor de cabeza.\nSíndrome de Ménière."


def _latin1(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1"))
    return path


def _jsonl(tmp_path):
    return _latin1(tmp_path / "c.jsonl",
                   '{"id": "a", "text": "Fiebre.", "entities": []}\n\n'
                   '{"id": "b", "text": "Ménière", "entities": []}\n'), "c.jsonl", 3


def _pubtator(tmp_path):
    return _latin1(tmp_path / "c.pubtator",
                   "1|t|Fever\n1|a|and headache.\n1\t0\t5\tFever\tDisease\tD1\n\n"
                   "2|t|Ménière\n2|a|disease.\n"), "c.pubtator", 5


def _brat_ann(tmp_path):
    (tmp_path / "brat").mkdir()
    (tmp_path / "brat" / "d.txt").write_text(TEXT, encoding="utf-8")
    s = TEXT.index("Ménière")
    _latin1(tmp_path / "brat" / "d.ann", f"T1\tENF 0 6\tFiebre\nT2\tENF {s} {s + 7}\tMénière\n")
    return tmp_path / "brat", "d.ann", 2


def _brat_txt(tmp_path):
    (tmp_path / "brat").mkdir()
    _latin1(tmp_path / "brat" / "d.txt", TEXT)
    (tmp_path / "brat" / "d.ann").write_text("T1\tENF 0 6\tFiebre\n", encoding="utf-8")
    return tmp_path / "brat", "d.txt", 2


def _marked_tsv(tmp_path):
    return _latin1(tmp_path / "m.tsv",
                   "sentence\tcode\tlabel\n[Fiebre]{SINTOMA} alta\t386661006\tSINTOMA\n"
                   "[Ménière]{ENFERMEDAD}\t13445001\tENFERMEDAD\n"), "m.tsv", 3


def _spaccc(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "d.txt").write_text(TEXT, encoding="utf-8")
    s = TEXT.index("Ménière")
    return _latin1(tmp_path / "train.tsv",
                   "filename\tlabel\tstart_span\tend_span\tspan\tcode\n"
                   "d\tSINTOMA\t0\t6\tFiebre\t386661006\n"
                   f"d\tENFERMEDAD\t{s}\t{s + 7}\tMénière\t13445001\n"), "train.tsv", 3


@pytest.mark.parametrize("make", [_jsonl, _pubtator, _brat_ann, _brat_txt, _marked_tsv, _spaccc],
                         ids=lambda f: f.__name__[1:])
def test_latin1_corpus_is_a_coded_error_naming_file_and_line(tmp_path, make):
    path, name, line = make(tmp_path)
    with pytest.raises(ValueError) as exc:
        read_corpus(path)
    msg = str(exc.value)
    assert msg.startswith("[E190]") and name in msg and f"line {line} " in msg, msg
    assert "iconv -f latin1 -t utf8" in msg


def test_pubtator_truncated_lines(tmp_path):
    head = "1|t|Fever\n1|a|and headache.\n1\t0\t5\tFever\tDisease\tD1\n"
    # a mention line cut after its offsets: an error naming the line
    path = tmp_path / "cut.txt"
    path.write_text(head + "1\t10\t18\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E042.*cut.txt, line 4: a mention line needs .* 3 "
                                         r"tab-separated column"):
        read_corpus(path, format="pubtator")
    # a title cut before its text, and a stray line: skipped, counted in one warning
    path = tmp_path / "odd.txt"
    path.write_text(head + "\n2|t\n2|a|More text.\nstray text\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"W190\] 2 line\(s\) of PubTator file .*odd.txt .*"
                                         r"first: line 5: '2\|t'"):
        docs = read_corpus(path, format="pubtator")
    assert [d.id for d in docs] == ["1", "2"] and len(docs[0].mentions) == 1
    # relation lines stay silent; a title holding a tab or '|' is still a title
    path = tmp_path / "ok.txt"
    path.write_text("1|t|Fever\tand | pain\n1|a|x\n1\tCID\tD1\tD2\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs = read_corpus(path, format="pubtator")
    assert docs[0].text == "Fever\tand | pain x"


def test_marked_tsv_wrong_number_of_fields(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("sentence\tcode\tlabel\n[Fiebre]{SINTOMA}\t386661006\tSINTOMA\n"
                    "[dolor]{SINTOMA}\tde cabeza\t22253000\tSINTOMA\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"E195.*m.tsv, line 3: 4 tab-separated field\(s\) "
                                         r"where the header has 3"):
        read_corpus(path)
    # a quoted field may hold a tab (pandas writes it so)
    path.write_text('sentence\tcode\tlabel\n"[dolor]{SINTOMA}\tde cabeza"\t22253000\tSINTOMA\n',
                    encoding="utf-8")
    (doc,) = read_corpus(path)
    assert doc.text == "dolor\tde cabeza" and doc.mentions[0].code == "22253000"


def test_jsonl_codes_are_strings(tmp_path):
    path = tmp_path / "c.jsonl"
    ent = '{{"start": 0, "end": 6, "label": "S", "code": {}}}'
    path.write_text('{"id": 7, "text": "Fiebre", "entities": [' + ent.format(386661006) + "]}\n",
                    encoding="utf-8")
    (doc,) = read_corpus(path)
    assert doc.id == "7" and doc.mentions[0].code == "386661006"
    for value, code in [("NaN", "E042"), ("1.5", "E194"), ("[1, 2]", "E194")]:
        path.write_text('{"text": "Fiebre", "entities": []}\n'
                        '{"text": "Fiebre", "entities": [' + ent.format(value) + "]}\n",
                        encoding="utf-8")
        with pytest.raises(ValueError, match=rf"{code}.*c.jsonl, line 2"):
            read_corpus(path)


def test_jsonl_malformed_structures(tmp_path):
    path = tmp_path / "c.jsonl"
    for line in ['{"text": "abc", "entities": 3}', '{"text": "abc", "entities": ["x"]}',
                 '{"text": "abc", "sentences": [[0, 1, 2]]}']:
        path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=r"E042.*c.jsonl, line 1"):
            read_corpus(path)


def test_unreadable_docbin(tmp_path):
    path = tmp_path / "c.spacy"
    path.write_bytes(b"\x00not a docbin\xff")
    with pytest.raises(ValueError, match=r"E197.*c.spacy"):
        read_corpus(path)
