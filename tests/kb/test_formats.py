"""KB formats: one module each, one table; read_file dispatches through it."""
import pytest

from spacy_syncabel.kb import ConceptKB, read_file
from spacy_syncabel.kb.formats import FORMATS, detect_format, formats, get_format
from spacy_syncabel.kb.formats._common import TABLE, KBFormat

from ..conftest import DATA, needs_data


def test_every_format_module_registered_itself_in_detection_order():
    assert sorted(FORMATS) == ["cie_o3", "jsonl", "medic", "obo", "snomed_rf2", "tsv", "umls"]
    ranks = [f.rank for f in formats()]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert {f.name for f in formats() if f.multilingual} == {"umls", "snomed_rf2"}


@needs_data
@pytest.mark.parametrize("path, name", [
    ("medic/medic_06Jul2012.txt", "medic"),
    ("cantemist/cie_o3.jsonl", "cie_o3"),
    ("spaccc/kb_snomed_es_lite.tsv", "tsv"),
])
def test_real_files_are_detected_by_the_table(path, name):
    assert detect_format(DATA / path) == name


def test_a_new_format_is_one_registration(tmp_path, monkeypatch):
    path = tmp_path / "terms.pipe"
    path.write_text("C1|fiebre\nC2|cefalea\n", encoding="utf8")

    def read(p, group, languages):
        rows = [line.split("|") for line in p.read_text(encoding="utf8").splitlines()]
        return ConceptKB([(c, n, group or "Pipe") for c, n in rows], source=str(p))

    monkeypatch.setitem(TABLE, "pipe", KBFormat("pipe", rank=99, read=read,
                                                detect=lambda p: p.suffix == ".pipe"))
    assert get_format("pipe") is TABLE["pipe"] and detect_format(path) == "pipe"
    kb = read_file(path)
    assert kb.lookup("cefalea", "Pipe") == "C2" and len(kb) == 2
    assert read_file(path, format="pipe", group="G").lookup("fiebre", "G") == "C1"
    with pytest.raises(ValueError, match="E004"):
        read_file(path, format="nope")
