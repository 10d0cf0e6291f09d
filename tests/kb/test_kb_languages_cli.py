"""The commands that take a KB path take its languages too (`--kb-language`)."""
import json

from typer.testing import CliRunner

from spacy_syncabel import training
from spacy_syncabel.cli import app
from spacy_syncabel.kb import read_file


def _umls(tmp_path):
    def conso(cui, lat, name, aui):
        return "|".join([cui, lat, "P", "L1", "PF", "S1", "Y", aui, "", "", "", "MSH", "PT",
                         "X", name, "0", "N", "256"]) + "|\n"
    mrconso = tmp_path / "MRCONSO.RRF"
    mrconso.write_text(conso("C0015967", "ENG", "Fever", "A1")
                       + conso("C0015967", "SPA", "Fiebre", "A2")
                       + conso("C0018681", "SPA", "Cefalea", "A3"), encoding="utf8")
    return mrconso


def test_train_kb_language(tmp_path, monkeypatch, empty_recipe):
    seen = {}

    def fake_train_linker(kb, train, output, kb_languages=None, **kwargs):
        seen["kb"] = read_file(kb, languages=kb_languages)
        return {}

    # in the module's dict: the lazy export would import the trainer (transformers) first
    monkeypatch.setitem(vars(training), "train_linker", fake_train_linker)
    args = ["train", str(empty_recipe), "--paths.kb", str(_umls(tmp_path)), "--paths.train",
            str(tmp_path / "t.jsonl"), "--output", str(tmp_path / "out")]
    res = CliRunner().invoke(app, args + ["--model.kb_languages", "SPA"])
    assert res.exit_code == 0, res.output
    assert set(seen["kb"].names()) == {"Fiebre", "Cefalea"}
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert seen["kb"].names() == ["Fever"]  # English atoms by default


def test_score_kb_language(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "a", "text": "Fiebre y cefalea.", "entities": [
        {"start": 0, "end": 6, "label": "SINTOMA", "code": "C0015967"},
        {"start": 9, "end": 16, "label": "SINTOMA", "code": "C0018681"}]}) + "\n",
        encoding="utf8")
    preds = tmp_path / "pred.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in [
        {"doc_id": "a", "start": 0, "end": 6, "codes": ["C0015967"]},
        {"doc_id": "a", "start": 9, "end": 16, "codes": ["C0018681"]}]), encoding="utf8")
    mrconso = _umls(tmp_path)
    for langs, excluded in (([], 1), (["--kb-language", "es"], 0)):
        out = tmp_path / f"m{excluded}.json"
        res = CliRunner().invoke(app, ["score", str(gold), str(preds), "--kb", str(mrconso),
                                       "--output", str(out), *langs])
        assert res.exit_code == 0, res.output
        # the reference's rule: a gold code outside the KB stays, as a miss
        assert json.loads(out.read_text(encoding="utf8"))["n_not_in_kb"] == excluded
