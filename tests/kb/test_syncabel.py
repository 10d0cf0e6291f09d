"""KBFromSynCABEL.v1: a SynCABEL checkpoint's text_to_code.json as a ConceptKB."""
import json

import pytest
import spacy

from spacy_syncabel.kb import kb_from_syncabel, read_text_to_code

MAP = {"SINTOMA": {"fiebre": "386661006", "pirexia": "386661006", "cefalea": "25064002"},
       "PROCEDIMIENTO": {"ecografía abdominal": "45036003", "TAC [craneal]": "303653007"}}


def test_groups_names_and_codes(tmp_path):
    (tmp_path / "text_to_code.json").write_text(json.dumps(MAP, ensure_ascii=False),
                                                encoding="utf-8")
    kb = spacy.registry.misc.get("spacy_syncabel.KBFromSynCABEL.v1")(str(tmp_path))()
    assert kb.groups == ["PROCEDIMIENTO", "SINTOMA"]
    assert kb.lookup("pirexia", "SINTOMA") == "386661006"
    assert kb.lookup("ecografía abdominal", "SINTOMA") is None
    assert kb.lookup("TAC (craneal)", "PROCEDIMIENTO") == "303653007"  # brackets as the reference
    assert sorted(kb.names("SINTOMA")) == ["cefalea", "fiebre", "pirexia"]
    assert read_text_to_code(tmp_path / "text_to_code.json").fingerprint() == kb.fingerprint()


@pytest.mark.parametrize("content, problem", [
    (b'{"SINTOMA": {"fiebre": "1",}}', "invalid JSON at line 1"),
    (b'["fiebre"]', "top level"),
    (b'{"SINTOMA": ["fiebre"]}', "not an object"),
    (b'{"SINTOMA": {"fiebre": null}}', "not a non-empty string"),
    ('{"SINTOMA": {"fièvre": "1"}}'.encode("latin-1"), "not UTF-8"),
])
def test_bad_maps_are_coded_errors(tmp_path, content, problem):
    path = tmp_path / "text_to_code.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"E134") as err:
        read_text_to_code(path)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_missing_map(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"E133"):
        kb_from_syncabel(str(tmp_path))()
