"""The one pipeline writer: portable folders, settings in config.cfg, 0.1 folders migrated."""
import json
import shutil
import warnings

import pytest
import spacy
from spacy.util import load_config

from spacy_syncabel.training.pipeline_io import load_pipeline, migrate_pipeline, save_pipeline

from ..conftest import TEXTS, add_linker


def _nlp(kb_tsv, **settings):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    return nlp


def _links(nlp, mention="cefalea", label="SINTOMA"):
    doc = nlp.make_doc(TEXTS[1])
    start = TEXTS[1].index(mention)
    doc.ents = [doc.char_span(start, start + len(mention), label=label)]
    return [(c["name"], c["code"], round(c["logprob"], 4))
            for c in nlp.get_pipe("syncabel_linker")(doc).ents[0]._.syncabel]


def test_settings_written_and_overridden_at_load(kb_tsv, tmp_path):
    nlp = _nlp(kb_tsv, num_beams=3, n_best=3)
    linker = nlp.get_pipe("syncabel_linker")
    rerank = linker.settings.replace(mode="rerank", candidates=3, prior_weight=7.5)
    save_pipeline(nlp, tmp_path / "p", settings=rerank, meta={"step": 1})
    comp = load_config(tmp_path / "p" / "config.cfg")["components"]["syncabel_linker"]
    assert (comp["mode"], comp["candidates"], comp["prior_weight"]) == ("rerank", 3, 7.5)
    assert json.loads((tmp_path / "p" / "training.json").read_text())["step"] == 1
    assert load_pipeline(tmp_path / "p", mode="beam").get_pipe(
        "syncabel_linker").settings.mode == "beam"


def test_a_01_folder_is_migrated_and_links_as_before(kb_tsv, tmp_path):
    nlp = _nlp(kb_tsv, num_beams=3, n_best=3, length_penalty=0.0)
    expected = _links(nlp)
    save_pipeline(nlp, tmp_path / "new")
    # lay the folder out as 0.1 did: settings in cfg.json, loaders in the factory block
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "new", old)
    lin = old / "syncabel_linker"
    state = json.loads((lin / "state.json").read_text())
    (lin / "state.json").unlink()
    (lin / "fingerprint.json").write_text(json.dumps(state["fingerprint"]))
    settings = dict(nlp.get_pipe("syncabel_linker").settings.to_dict())
    for key in ("mode", "length_penalty", "max_batch_tokens", "max_mention_tokens"):
        settings.pop(key)
    settings.update(candidates=0, rerank=False, trust_remote_code=False)
    (lin / "cfg.json").write_text(json.dumps(settings))
    text = (old / "config.cfg").read_text()
    (old / "config.cfg").write_text(text.replace(
        "[components.syncabel_linker]\n",
        "[components.syncabel_linker]\nrerank = false\ntrust_remote_code = false\n"))
    migrate_pipeline(old, tmp_path / "migrated")
    migrated = spacy.load(tmp_path / "migrated")
    assert migrated.get_pipe("syncabel_linker").settings.mode == "beam"
    assert _links(migrated) == expected
    # an existing folder is replaced only with force; nothing beside it is touched
    beside = tmp_path / "migrated.migrating"
    beside.mkdir()
    (beside / "keep.txt").write_text("the user's", encoding="utf-8")
    with pytest.raises(ValueError, match="E302"):
        migrate_pipeline(old, tmp_path / "migrated")
    migrate_pipeline(old, tmp_path / "migrated", force=True)
    assert _links(spacy.load(tmp_path / "migrated")) == expected
    assert (beside / "keep.txt").read_text(encoding="utf-8") == "the user's"
    with pytest.raises(ValueError, match="E300"):  # replacing it would delete the source
        migrate_pipeline(old, tmp_path, force=True)
    assert (old / "config.cfg").exists()


def test_the_kb_languages_reach_the_initialize_loader_and_survive_a_resave(kb_tsv, tmp_path):
    """A linker trained on a UMLS KB's Spanish atoms re-initializes from the same atoms:
    `[initialize]`'s KB loader names the languages, and a later save (calibrate, assemble)
    that is not told them keeps them."""
    nlp = _nlp(kb_tsv)
    save_pipeline(nlp, tmp_path / "plain")
    plain = load_config(tmp_path / "plain" / "config.cfg", interpolate=False)
    assert "languages" not in plain["initialize"]["components"]["syncabel_linker"]["kb_loader"]
    save_pipeline(nlp, tmp_path / "p", kb_languages=["SPA", "ENG"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = spacy.load(tmp_path / "p")
    save_pipeline(again, tmp_path / "resaved")
    for name in ("p", "resaved"):
        config = load_config(tmp_path / name / "config.cfg", interpolate=False)
        loader = config["initialize"]["components"]["syncabel_linker"]["kb_loader"]
        assert loader == {"@misc": "spacy_syncabel.KBFromFile.v1", "path": "${paths.kb}",
                          "languages": ["SPA", "ENG"]}
        resolved = spacy.registry.resolve({"kb": {**loader, "path": str(kb_tsv)}})["kb"]
        assert len(resolved()) > 0  # the loader resolves with the languages it names
