"""ner-corpus: other splits' documents joined to the NER's training split only (--extra-train),
and the dataset's NER settings written into the copied config."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_syncabel.cli import app
from spacy_syncabel.corpus import write_jsonl
from spacy_syncabel.training.ner_corpus import write_ner_corpus
from spacy_syncabel.types import CorpusDoc, GoldMention

ROOT = Path(__file__).resolve().parents[2]
NER_CONFIG = ROOT / "configs" / "ner.cfg"
LABEL = "MORFOLOGIA_NEOPLASIA"


def _doc(doc_id: str, text: str, *names: str) -> CorpusDoc:
    return CorpusDoc(doc_id, text, [GoldMention(text.index(n), text.index(n) + len(n), LABEL,
                                                "8140/3") for n in names])


def _splits(folder: Path) -> None:
    write_jsonl([_doc("tr1", "Adenocarcinoma de colon estadio IV.", "Adenocarcinoma")],
                folder / "train.jsonl")
    write_jsonl([_doc("dv1", "Carcinoma ductal infiltrante de mama.",
                      "Carcinoma ductal infiltrante")], folder / "dev.jsonl")
    write_jsonl([_doc("te1", "Metástasis hepáticas de melanoma.", "Metástasis", "melanoma"),
                 _doc("te2", "Linfoma B difuso de células grandes.", "Linfoma B difuso")],
                folder / "test.jsonl")


def _entities(path: Path) -> dict:
    docs = DocBin().from_disk(path).get_docs(spacy.blank("es").vocab)
    return {d.text: [e.text for e in d.ents] for d in docs}


def test_extra_splits_join_the_training_split_only(tmp_path):
    _splits(tmp_path)
    summary = write_ner_corpus(tmp_path, tmp_path / "ner", lang="es", config=NER_CONFIG,
                               extra_train=["test"])
    assert _entities(tmp_path / "ner" / "train.spacy") == {
        "Adenocarcinoma de colon estadio IV.": ["Adenocarcinoma"],
        "Metástasis hepáticas de melanoma.": ["Metástasis", "melanoma"],
        "Linfoma B difuso de células grandes.": ["Linfoma B difuso"]}
    assert _entities(tmp_path / "ner" / "dev.spacy") == {
        "Carcinoma ductal infiltrante de mama.": ["Carcinoma ductal infiltrante"]}
    assert not (tmp_path / "ner" / "test.spacy").exists()
    assert summary["train"]["docs"] == 3 and summary["train"]["entities"] == 4
    assert summary["train"]["extra_train"] == {"test": 2}
    assert "extra_train" not in summary["dev"]


def test_a_split_the_ner_is_scored_on_cannot_be_added(tmp_path):
    _splits(tmp_path)
    with pytest.raises(ValueError, match="E600"):
        write_ner_corpus(tmp_path, tmp_path / "ner", lang="es", extra_train=["dev"])
    assert not (tmp_path / "ner").exists()


@pytest.mark.parametrize("dataset,value,train_docs", [
    ("cantemist", "auto", 3),  # CANTEMIST's default: its dev1 (the project's test split)
    ("spaccc", "auto", 1),
    ("cantemist", "none", 1),
    ("spaccc", "test", 3),
])
def test_the_cli_resolves_auto_per_dataset(tmp_path, dataset, value, train_docs):
    _splits(tmp_path)
    res = CliRunner().invoke(app, ["ner-corpus", dataset, str(tmp_path), str(tmp_path / "ner"),
                                   "--extra-train", value])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["train"]["docs"] == train_docs


def test_the_cli_refuses_auto_mixed_with_names(tmp_path):
    _splits(tmp_path)
    res = CliRunner().invoke(app, ["ner-corpus", "cantemist", str(tmp_path),
                                   str(tmp_path / "ner"), "--extra-train", "auto,test"])
    assert res.exit_code != 0 and "E601" in res.output
    assert not (tmp_path / "ner").exists()


def test_dataset_settings_go_into_the_copied_config(tmp_path):
    from spacy.util import load_config

    _splits(tmp_path)
    for dataset in ("cantemist", "spaccc"):
        res = CliRunner().invoke(app, ["ner-corpus", dataset, str(tmp_path),
                                       str(tmp_path / dataset), "--config", str(NER_CONFIG)])
        assert res.exit_code == 0, res.output
    configs = {d: load_config(tmp_path / d / "config.cfg") for d in ("cantemist", "spaccc")}
    averages = {d: c["training"]["optimizer"]["use_averages"] for d, c in configs.items()}
    assert averages == {"cantemist": True, "spaccc": False}
    rows = {d: c["components"]["tok2vec"]["model"]["embed"]["rows"] for d, c in configs.items()}
    shared = load_config(NER_CONFIG)
    assert rows == {"cantemist": [20000, 5000, 5000, 5000],
                    "spaccc": shared["components"]["tok2vec"]["model"]["embed"]["rows"]}
    assert shared["training"]["optimizer"]["use_averages"] is False


def test_a_setting_the_config_lacks_is_refused(tmp_path):
    _splits(tmp_path)
    with pytest.raises(ValueError, match="E602"):
        write_ner_corpus(tmp_path, tmp_path / "ner", lang="es", config=NER_CONFIG,
                         settings={"training.optimizer.use_average": True})
    assert not (tmp_path / "ner").exists()


def test_a_setting_for_a_component_the_config_lacks_is_skipped_with_a_warning(tmp_path):
    from spacy.util import load_config

    _splits(tmp_path)
    trf = ROOT / "configs" / "ner_trf.cfg"
    with pytest.warns(UserWarning, match="W620"):
        write_ner_corpus(tmp_path, tmp_path / "ner", lang="es", config=trf,
                         settings={"training.optimizer.use_averages": True,
                                   "components.tok2vec.model.embed.rows": [20000, 5000]})
    written = load_config(tmp_path / "ner" / "config.cfg")
    assert written["training"]["optimizer"]["use_averages"] is True
    assert "tok2vec" not in written["components"]
