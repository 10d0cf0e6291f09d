"""spaCy's contracts and untrusted input: config overrides, the error handler, bytes, moved
folders, pluggable candidate generators, remote code, long mentions."""
import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import spacy
from spacy.util import registry

from spacy_syncabel.linking.candidates import Retrieved
from spacy_syncabel.types import NIL

from .conftest import TEXTS, add_linker


@pytest.fixture(scope="module")
def nlp(kb_tsv):
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    add_linker(nlp, kb_tsv, num_beams=3, n_best=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": "SINTOMA", "pattern": p} for p in ("fiebre", "cefalea")]
                       + [{"label": "ENFERMEDAD", "pattern": "hipertensión arterial"},
                          {"label": "PROCEDIMIENTO", "pattern": "TAC"}])
    return nlp


def _links(docs):
    return [[(e.start_char, e.end_char, e.kb_id_, [c["code"] for c in e._.syncabel or []])
             for e in d.ents] for d in docs]


@pytest.fixture(scope="module")
def saved(nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "pipe"
    nlp.to_disk(path)
    return path


def test_saved_config_is_the_one_source_of_settings(saved):
    before = spacy.load(saved)
    nbest = [len(e._.syncabel) for d in before.pipe(TEXTS) for e in d.ents]
    assert max(nbest) == 3  # (fewer where beams share a code)
    assert not (saved / "syncabel_linker" / "cfg.json").exists()
    after = spacy.load(saved, config={"components.syncabel_linker.n_best": 1})
    assert after.get_pipe("syncabel_linker").settings.n_best == 1
    assert {len(e._.syncabel) for d in after.pipe(TEXTS) for e in d.ents} == {1}


def test_moved_folder_loads_and_links(nlp, saved, tmp_path):
    expected = _links(nlp.pipe(TEXTS))
    moved = tmp_path / "elsewhere" / "pipe"
    shutil.copytree(saved, moved)
    shutil.rmtree(saved.parent / "gone", ignore_errors=True)
    assert str(saved) not in (moved / "config.cfg").read_text("utf8")
    assert _links(spacy.load(moved).pipe(TEXTS)) == expected


def test_bytes_round_trip(nlp):
    linker = nlp.get_pipe("syncabel_linker")
    data = linker.to_bytes()
    other = spacy.blank("es")
    other.add_pipe("entity_ruler", source=nlp)
    fresh = other.add_pipe("syncabel_linker", config={"num_beams": 3, "n_best": 3})
    fresh.from_bytes(data)
    assert _links(other.pipe(TEXTS)) == _links(nlp.pipe(TEXTS))
    with pytest.raises(ValueError, match="E105"):
        fresh.from_bytes(b"not msgpack at all")


def test_exclude_skips_fields(nlp, tmp_path):
    nlp.get_pipe("syncabel_linker").to_disk(tmp_path / "lin", exclude=["model"])
    assert (tmp_path / "lin" / "kb").is_dir() and not (tmp_path / "lin" / "model").exists()


def test_error_handler_gets_only_the_failing_doc(nlp, monkeypatch):
    linker = nlp.get_pipe("syncabel_linker")
    engine = linker.engine
    real_link = engine.link

    def link(prompts, groups, mentions=None):
        if any("TAC" == m for m in mentions or ()):
            raise RuntimeError("boom")
        return real_link(prompts, groups, mentions)

    monkeypatch.setattr(engine, "link", link)
    failed = []
    nlp.set_error_handler(lambda name, proc, docs, e: failed.extend(d.text for d in docs))
    try:
        docs = list(nlp.pipe(TEXTS, batch_size=4))
    finally:
        nlp.set_error_handler(spacy.util.raise_error)
    assert failed == [TEXTS[3]]  # the only text with "TAC"
    assert all(e.kb_id_ for d in docs[:3] for e in d.ents)


@registry.misc("test_contracts.FixedCandidates.v1")
def fixed_candidates(name: str):
    class Fixed:
        def top(self, mentions, groups, n):
            return [[Retrieved(name, 1.0)] for _ in mentions]

        def similarity(self, mention, names, group=None):
            return [1.0 if x == name else 0.0 for x in names]

    return lambda kb, aliases: Fixed()


def test_custom_candidate_generator_is_used_by_rerank(kb_tsv):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, mode="rerank", candidates=3, candidate_generator={
        "@misc": "test_contracts.FixedCandidates.v1", "name": "pirexia"})
    nlp.initialize()
    doc = nlp.make_doc(TEXTS[0])
    doc.ents = [doc.char_span(TEXTS[0].index("fiebre"), TEXTS[0].index("fiebre") + 6,
                              label="SINTOMA")]
    doc = nlp.get_pipe("syncabel_linker")(doc)
    assert [c["name"] for c in doc.ents[0]._.syncabel] == ["pirexia"]
    assert doc.ents[0].kb_id_ == "386661006"


def test_dictionary_candidates_find_folded_names(small_kb):
    from spacy_syncabel.linking.candidates import dictionary_candidates, tfidf_candidates

    gen = dictionary_candidates(fallback=tfidf_candidates())(small_kb, [("hta", "HTA", None)])
    top = gen.top(["Hipertension Arterial", "dolores de cabeza"], ["ENFERMEDAD", "SINTOMA"], 2)
    assert top[0][0] == Retrieved("hipertensión arterial", 1.0)
    assert top[1] and top[1][0].name == "dolor de cabeza"  # from the TF-IDF fallback


def test_mining_uses_beams_whatever_the_mode(kb_tsv):
    """DPO on a calibrated (rerank) pipeline mines the same beams as a full-trie one."""
    from spacy_syncabel.prompting import encode_prompt

    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, mode="rerank", candidates=2, prior_weight=1000.0)
    nlp.initialize()
    rerank = nlp.get_pipe("syncabel_linker")
    beam = rerank.with_settings(mode="beam")
    doc = nlp.make_doc(TEXTS[1])
    doc.ents = [doc.char_span(TEXTS[1].index("cefalea"), TEXTS[1].index("cefalea") + 7,
                              label="SINTOMA")]
    prompts = [encode_prompt(rerank.tokenizer, rerank.mention_prompt(doc, doc.ents[0],
                                                                      "SINTOMA"))]
    mined = rerank.engine.mine(prompts, ["SINTOMA"], 4)
    assert mined == beam.engine.mine(prompts, ["SINTOMA"], 4)
    assert len(mined[0]) == 4  # unmerged beams, not the 2 reranked candidates


def test_saved_folder_never_runs_its_own_code(saved, tmp_path):
    folder = tmp_path / "hostile"
    shutil.copytree(saved, folder)
    model_dir = folder / "syncabel_linker" / "model"
    marker = tmp_path / "pwned"
    (model_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n",
                                       encoding="utf8")
    config = json.loads((model_dir / "config.json").read_text("utf8"))
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig",
                          "AutoModelForCausalLM": "evil.EvilModel"}
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf8")
    try:
        spacy.load(folder, config={})
    except ValueError:
        pass  # refusing to load is fine too
    assert not marker.exists()
    # pickled weights are never read, even when the safetensors file is gone
    (model_dir / "model.safetensors").unlink()
    (model_dir / "pytorch_model.bin").write_bytes(b"\x80\x04not a real pickle")
    with pytest.raises(Exception):
        spacy.load(folder)
    assert not marker.exists()


def test_invisible_entity_is_nil(nlp):
    linker = nlp.get_pipe("syncabel_linker")
    text = "fiebre \u200d\u200b\u2060 y tos"
    doc = nlp.make_doc(text)
    span = doc.char_span(7, 10, label="SINTOMA", alignment_mode="expand")
    doc.ents = [span]
    with pytest.warns(UserWarning, match="W003"):
        doc = linker(doc)
    assert doc.ents[0].kb_id_ == NIL


def test_unreachable_names_are_reported_at_initialize(kb_tsv):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, max_new_tokens=3)
    with pytest.warns(UserWarning, match="W101"):
        nlp.initialize()


LONG_MENTION_SCRIPT = textwrap.dedent("""
    import resource, sys, warnings
    import spacy, torch
    sys.path.insert(0, {root!r})
    torch.set_num_threads(1)
    from tests.conftest import add_linker
    nlp = spacy.blank("es")
    add_linker(nlp, {kb!r})
    nlp.initialize()
    texts = ["Paciente con " + "dolor abdominal " * 440 + "y fiebre."] + \\
        ["Refiere cefalea y fiebre de tres dias."] * 63
    def docs():
        for t in texts:
            d = nlp.make_doc(t)
            d.ents = [d.char_span(13, len(t) - 10, label="SINTOMA", alignment_mode="contract")]
            yield d
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = list(nlp.get_pipe("syncabel_linker").pipe(docs(), batch_size=64))
    assert len(out[0].ents[0].text) > 7000, len(out[0].ents[0].text)
    assert all(d.ents[0].kb_id_ for d in out)
    assert any("W100" in str(w.message) for w in caught)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""")


def test_one_long_mention_keeps_memory_bounded(kb_tsv, tmp_path):
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "long.py"
    script.write_text(LONG_MENTION_SCRIPT.format(root=root, kb=str(kb_tsv)), encoding="utf8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    peak_mb = int(run.stdout.strip().splitlines()[-1])
    assert peak_mb < 2048, peak_mb


def test_untrained_model_warns_and_a_trained_one_does_not(kb_tsv, tmp_path):
    from spacy_syncabel.training.pipeline_io import save_pipeline

    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv)
    with pytest.warns(UserWarning, match="W103"):
        nlp.initialize()
    save_pipeline(nlp, tmp_path / "trained")  # the training commands' writer flags the LM
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spacy.load(tmp_path / "trained")
    assert not [w for w in caught if "W103" in str(w.message)]
